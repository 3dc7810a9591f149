package witness

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/CPAN-Security/cpan-tlog/internal/confline"
)

// Two logs of the public witness network's staging list
// (transparency-dev/witness-network, lists/staging/log-list-10qps-4klogs.1).
const (
	sigsumVKey = "sigsum.org/v1/tree/1643169b32bef33a3f54f8a353b87c475d19b6223cbb106390d10a29978e1cba+57f71a6a+AUfkgWBtisunR6awU9bC0ZFgX7EiF11BChICqRQwq845"
	rekorVKey  = "log2025-alpha3.rekor.sigstage.dev+d3d3a70c+AZQ93VXPMmj9uZj7U/7CefQ9yy8RgYFv6mKzOseipjqp"
)

// vkeyOfType is a well-formed vkey for name with a key of type typ.
func vkeyOfType(name string, typ byte, key []byte) string {
	k := append([]byte{typ}, key...)
	h := sha256.Sum256(append([]byte(name+"\n"), k...))
	return fmt.Sprintf("%s+%08x+%s", name, h[:4], base64.StdEncoding.EncodeToString(k))
}

func TestParseLogListValid(t *testing.T) {
	mldsa := vkeyOfType("pq.example/log", 0x06, make([]byte, 1312))
	type want struct {
		origin, vkey, contact string
		qpd                   uint32
		line                  int
		verifier              bool
	}
	for _, tc := range []struct {
		name, list string
		want       []want
	}{
		{"header only", "logs/v0\n", nil},
		{"header without newline", "logs/v0", nil},
		{"the staging list's shape", `#
# This is an experimental list where witnesses can discover logs.
#
logs/v0

vkey ` + sigsumVKey + `
qpd 8640
contact services@mullvad.net | https://serviceberry.tlog.stagemole.eu/about

vkey ` + rekorVKey + `
qpd 86400
contact infra-dev (at) sigstore.dev
`, []want{
			{"sigsum.org/v1/tree/1643169b32bef33a3f54f8a353b87c475d19b6223cbb106390d10a29978e1cba", sigsumVKey, "services@mullvad.net | https://serviceberry.tlog.stagemole.eu/about", 8640, 6, true},
			{"log2025-alpha3.rekor.sigstage.dev", rekorVKey, "infra-dev (at) sigstore.dev", 86400, 10, true},
		}},
		// The spec's example: an origin line, indented lines, tabs.
		{"origin line, tabs and indentation", "  logs/v0  \n\n# bar's log\n\tvkey " + rekorVKey + "\t\n origin something-not-equal-to-vkey-keyname\n\tqpd 24\n\tcontact sysadmin (at) bar.org\n",
			[]want{{"something-not-equal-to-vkey-keyname", rekorVKey, "sysadmin (at) bar.org", 24, 4, true}}},
		{"tab separates keyword and value", "logs/v0\nvkey\t" + rekorVKey + "\nqpd\t\t1\ncontact \t x\n",
			[]want{{"log2025-alpha3.rekor.sigstage.dev", rekorVKey, "x", 1, 2, true}}},
		{"CRLF line ends", "logs/v0\r\nvkey " + rekorVKey + "\r\nqpd 2147483647\r\ncontact a@b\r\n",
			[]want{{"log2025-alpha3.rekor.sigstage.dev", rekorVKey, "a@b", 2147483647, 2, true}}},
		{"'#' inside a contact is not a comment", "logs/v0\nvkey " + rekorVKey + "\nqpd 1\ncontact #ops on irc # really\n",
			[]want{{"log2025-alpha3.rekor.sigstage.dev", rekorVKey, "#ops on irc # really", 1, 2, true}}},
		{"origin with spaces inside", "logs/v0\nvkey " + rekorVKey + "\norigin a b  c\nqpd 1\ncontact x\n",
			[]want{{"a b  c", rekorVKey, "x", 1, 2, true}}},
		{"a comment may hold anything", "logs/v0\n# \xff\x00\x1b\nvkey " + rekorVKey + "\nqpd 1\ncontact x\n",
			[]want{{"log2025-alpha3.rekor.sigstage.dev", rekorVKey, "x", 1, 3, true}}},
		{"a key type the witness cannot verify is listed, without a verifier", "logs/v0\nvkey " + mldsa + "\nqpd 1\ncontact x\n",
			[]want{{"pq.example/log", mldsa, "x", 1, 2, false}}},
		{"one key, two origins", "logs/v0\nvkey " + rekorVKey + "\nqpd 1\ncontact x\nvkey " + rekorVKey + "\norigin other\nqpd 2\ncontact y\n",
			[]want{{"log2025-alpha3.rekor.sigstage.dev", rekorVKey, "x", 1, 2, true}, {"other", rekorVKey, "y", 2, 5, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs, err := ParseLogList([]byte(tc.list))
			if err != nil {
				t.Fatal(err)
			}
			var got []want
			for _, l := range logs {
				got = append(got, want{l.Origin, l.VKey, l.Contact, l.QPD, l.Line, l.Verifier != nil})
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			// What MarshalLogList writes reads back the same.
			again, err := ParseLogList(MarshalLogList([]string{"round trip"}, logs))
			if err != nil || len(again) != len(logs) {
				t.Fatalf("round trip: %v", err)
			}
			for i := range logs {
				if a, b := again[i], logs[i]; a.Origin != b.Origin || a.VKey != b.VKey || a.QPD != b.QPD || a.Contact != b.Contact {
					t.Errorf("round trip: %+v, want %+v", a, b)
				}
			}
		})
	}
}

func TestParseLogListMalformed(t *testing.T) {
	const k = rekorVKey
	log := "vkey " + k + "\nqpd 1\ncontact x\n"
	badHash := strings.Replace(k, "+d3d3a70c+", "+d3d3a70d+", 1)
	longHash := strings.Replace(k, "+d3d3a70c+", "+d3d3a70c0+", 1)
	badB64 := strings.TrimSuffix(k, "qpjqp") + "qpjq!"
	for _, tc := range []struct {
		name, list string
		line       int // 0: the error names no line
		want       string
	}{
		// Header (tlog-list "Header").
		{"empty", "", 0, "no \"logs/v0\" header"},
		{"only comments and blanks", "# a\n\n   \n\t# b\n", 0, "no \"logs/v0\" header"},
		{"a log before the header", log, 1, "must be \"logs/v0\""},
		{"another version", "logs/v1\n" + log, 1, "must be \"logs/v0\""},
		{"header with more on its line", "logs/v0 extra\n" + log, 1, "must be \"logs/v0\""},
		{"header upper case", "LOGS/V0\n" + log, 1, "must be \"logs/v0\""},
		{"a second header", "logs/v0\n" + log + "logs/v0\n", 5, "second"},
		// Keywords and their strict order (tlog-list "List of logs").
		{"unknown keyword", "logs/v0\nurl https://example.org\n", 2, "unknown keyword \"url\""},
		{"keyword upper case", "logs/v0\nVKEY " + k + "\nqpd 1\ncontact x\n", 2, "unknown keyword \"VKEY\""},
		{"qpd before vkey", "logs/v0\nqpd 1\n", 2, "want a vkey line"},
		{"contact before vkey", "logs/v0\ncontact x\n", 2, "want a vkey line"},
		{"origin before vkey", "logs/v0\norigin o\n" + log, 2, "want a vkey line"},
		{"two vkeys for one log", "logs/v0\nvkey " + k + "\nvkey " + k + "\nqpd 1\ncontact x\n", 3, "want a origin or qpd line"},
		{"contact before qpd", "logs/v0\nvkey " + k + "\ncontact x\nqpd 1\n", 3, "want a origin or qpd line"},
		{"origin after qpd", "logs/v0\nvkey " + k + "\nqpd 1\norigin o\ncontact x\n", 4, "want a contact line"},
		{"two origins", "logs/v0\nvkey " + k + "\norigin a\norigin b\nqpd 1\ncontact x\n", 4, "want a qpd line"},
		{"two qpds", "logs/v0\nvkey " + k + "\nqpd 1\nqpd 2\ncontact x\n", 4, "want a contact line"},
		{"two contacts", "logs/v0\n" + log + "contact y\n", 5, "want a vkey line"},
		{"ends after vkey", "logs/v0\n" + log + "vkey " + k + "\n", 5, "ends before"},
		{"ends after origin", "logs/v0\nvkey " + k + "\norigin o\n", 2, "ends before"},
		{"ends after qpd", "logs/v0\nvkey " + k + "\nqpd 1\n", 2, "ends before"},
		// Values.
		{"vkey without value", "logs/v0\nvkey\nqpd 1\ncontact x\n", 2, "vkey has no value"},
		{"origin without value", "logs/v0\nvkey " + k + "\norigin \t\nqpd 1\ncontact x\n", 3, "origin has no value"},
		{"qpd without value", "logs/v0\nvkey " + k + "\nqpd\ncontact x\n", 3, "qpd has no value"},
		{"contact without value", "logs/v0\nvkey " + k + "\nqpd 1\ncontact\n", 4, "contact has no value"},
		// VKEY (signed-note verifier keys).
		{"vkey of two parts", "logs/v0\nvkey a+b\nqpd 1\ncontact x\n", 2, "NAME+HASH+KEY"},
		{"vkey with a space", "logs/v0\nvkey " + strings.Replace(k, "+", " +", 1) + "\nqpd 1\ncontact x\n", 2, "space"},
		{"vkey with an empty name", "logs/v0\nvkey " + k[strings.IndexByte(k, '+'):] + "\nqpd 1\ncontact x\n", 2, "empty"},
		{"vkey hash does not match", "logs/v0\nvkey " + badHash + "\nqpd 1\ncontact x\n", 2, "does not match"},
		{"vkey hash of 9 digits", "logs/v0\nvkey " + longHash + "\nqpd 1\ncontact x\n", 2, "8 hex"},
		{"vkey hash not hex", "logs/v0\nvkey " + strings.Replace(k, "+d3d3a70c+", "+d3d3a7zc+", 1) + "\nqpd 1\ncontact x\n", 2, "8 hex"},
		{"vkey key not base64", "logs/v0\nvkey " + badB64 + "\nqpd 1\ncontact x\n", 2, "base64"},
		{"vkey key of one byte", "logs/v0\nvkey " + vkeyOfType("a", 0x01, nil) + "\nqpd 1\ncontact x\n", 2, "base64"},
		{"Ed25519 vkey of 31 bytes", "logs/v0\nvkey " + vkeyOfType("a", 0x01, make([]byte, 31)) + "\nqpd 1\ncontact x\n", 2, "vkey"},
		// QPD: [1, 2^31), digits 0-9 only, no leading zero.
		{"qpd 0", "logs/v0\nvkey " + k + "\nqpd 0\ncontact x\n", 3, "at least 1"},
		{"qpd leading zero", "logs/v0\nvkey " + k + "\nqpd 024\ncontact x\n", 3, "leading zero"},
		{"qpd 2^31", "logs/v0\nvkey " + k + "\nqpd 2147483648\ncontact x\n", 3, "less than 2^31"},
		{"qpd 2^64", "logs/v0\nvkey " + k + "\nqpd 18446744073709551616\ncontact x\n", 3, "less than 2^31"},
		{"qpd negative", "logs/v0\nvkey " + k + "\nqpd -1\ncontact x\n", 3, "digits 0-9"},
		{"qpd plus", "logs/v0\nvkey " + k + "\nqpd +1\ncontact x\n", 3, "digits 0-9"},
		{"qpd fraction", "logs/v0\nvkey " + k + "\nqpd 1.5\ncontact x\n", 3, "digits 0-9"},
		{"qpd exponent", "logs/v0\nvkey " + k + "\nqpd 1e3\ncontact x\n", 3, "digits 0-9"},
		{"qpd hex", "logs/v0\nvkey " + k + "\nqpd 0x10\ncontact x\n", 3, "digits 0-9"},
		{"qpd two numbers", "logs/v0\nvkey " + k + "\nqpd 1 2\ncontact x\n", 3, "digits 0-9"},
		{"qpd fullwidth digits", "logs/v0\nvkey " + k + "\nqpd １２\ncontact x\n", 3, "digits 0-9"},
		// Two logs MUST NOT share the same origin.
		{"same key twice", "logs/v0\n" + log + log, 5, "two logs must not share an origin"},
		{"origin line equal to another log's key name", "logs/v0\n" + log + "vkey " + sigsumVKey + "\norigin log2025-alpha3.rekor.sigstage.dev\nqpd 1\ncontact y\n", 5, "line 2"},
		{"two equal origin lines", "logs/v0\nvkey " + k + "\norigin o\nqpd 1\ncontact x\nvkey " + sigsumVKey + "\norigin o\nqpd 1\ncontact y\n", 6, "share an origin"},
		// Text.
		{"invalid UTF-8", "logs/v0\nvkey " + k + "\nqpd 1\ncontact \xff\xfe\n", 4, "UTF-8"},
		{"NUL", "logs/v0\nvkey " + k + "\nqpd 1\ncontact a\x00b\n", 4, "control character 0x00"},
		{"escape", "logs/v0\nvkey " + k + "\norigin a\x1b[31m\nqpd 1\ncontact x\n", 3, "control character 0x1b"},
		{"DEL", "logs/v0\nvkey " + k + "\nqpd 1\ncontact a\x7f\n", 4, "control character 0x7f"},
		{"CR inside a line", "logs/v0\nvkey " + k + "\nqpd 1\r2\ncontact x\n", 3, "control character 0x0d"},
		{"vertical tab is not trimmed", "logs/v0\nvkey " + k + "\nqpd 1\ncontact x\x0b\n", 4, "control character 0x0b"},
		// Bounds.
		{"line too long", "logs/v0\nvkey " + k + "\nqpd 1\ncontact " + strings.Repeat("x", MaxLogListLine) + "\n", 4, "more than the 8192"},
		{"comment too long", "logs/v0\n#" + strings.Repeat("x", MaxLogListLine) + "\n", 2, "more than the 8192"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs, err := ParseLogList([]byte(tc.list))
			if err == nil {
				t.Fatalf("parsed: %+v", logs)
			}
			if logs != nil {
				t.Errorf("a list with an error yielded %d logs", len(logs))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
			var le *confline.Error
			switch {
			case tc.line == 0 && errors.As(err, &le):
				t.Errorf("error names line %d, want none", le.Line)
			case tc.line != 0 && (!errors.As(err, &le) || le.Line != tc.line):
				t.Errorf("error %q, want it to name line %d", err, tc.line)
			case tc.line != 0 && !strings.Contains(err.Error(), fmt.Sprintf("tlog-list line %d ", tc.line)):
				t.Errorf("error %q does not say its line", err)
			}
			if len(err.Error()) > 600 {
				t.Errorf("error of %d bytes: a long line is quoted whole", len(err.Error()))
			}
		})
	}
}

func TestParseLogListBounds(t *testing.T) {
	log := "vkey " + rekorVKey + "\norigin o%d\nqpd 1\ncontact x\n"
	var b strings.Builder
	b.WriteString("logs/v0\n")
	for i := range MaxLogListLogs {
		fmt.Fprintf(&b, log, i)
	}
	full := b.String()
	logs, err := ParseLogList([]byte(full))
	if err != nil || len(logs) != MaxLogListLogs {
		t.Fatalf("%d logs (the bound): %d, %v", MaxLogListLogs, len(logs), err)
	}
	_, err = ParseLogList([]byte(full + fmt.Sprintf(log, MaxLogListLogs)))
	var le *confline.Error
	if !errors.As(err, &le) || le.Line != 4*MaxLogListLogs+2 || !strings.Contains(err.Error(), "more than 100000 logs") {
		t.Errorf("%d logs: %v", MaxLogListLogs+1, err)
	}
	big := []byte("logs/v0\n" + strings.Repeat("#\n", (MaxLogListSize-8)/2))
	if len(big) != MaxLogListSize {
		t.Fatalf("test list of %d bytes", len(big))
	}
	if _, err := ParseLogList(big); err != nil {
		t.Errorf("a list of %d bytes: %v", len(big), err)
	}
	if _, err := ParseLogList(append(big, '\n')); err == nil || !strings.Contains(err.Error(), "more than the 33554432") {
		t.Errorf("a list of %d bytes: %v", len(big)+1, err)
	}
}

// FuzzParseLogList: the parser never panics; what it accepts keeps its
// rules (unique origins, qpd in range, bounded) and reads back the same
// after MarshalLogList.
func FuzzParseLogList(f *testing.F) {
	f.Add([]byte("logs/v0\nvkey " + rekorVKey + "\norigin o\nqpd 24\ncontact x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		logs, err := ParseLogList(b)
		if err != nil {
			if logs != nil {
				t.Fatal("logs and an error")
			}
			return
		}
		if len(logs) > MaxLogListLogs {
			t.Fatalf("%d logs", len(logs))
		}
		seen := map[string]bool{}
		for _, l := range logs {
			if seen[l.Origin] || l.Origin == "" || l.QPD < 1 || l.QPD >= 1<<31 || l.Contact == "" {
				t.Fatalf("accepted %+v", l)
			}
			seen[l.Origin] = true
			if l.Verifier != nil && (l.Verifier.Name() != keyName(l.VKey) || l.KeyType != keyTypeEd25519) {
				t.Fatalf("verifier %q for %q", l.Verifier.Name(), l.VKey)
			}
		}
		again, err := ParseLogList(MarshalLogList(nil, logs))
		if err != nil || len(again) != len(logs) {
			t.Fatalf("round trip: %v", err)
		}
		for i := range logs {
			if a, b := again[i], logs[i]; a.Origin != b.Origin || a.VKey != b.VKey || a.QPD != b.QPD || a.Contact != b.Contact {
				t.Fatalf("round trip: %+v, want %+v", a, b)
			}
		}
	})
}

// TestParseLogListWitnessNetwork reads the public witness network's
// testing list as published (transparency-dev/witness-network,
// lists/testing/log-list.1), kept as a fuzz seed: eleven Ed25519 logs.
func TestParseLogListWitnessNetwork(t *testing.T) {
	b, err := os.ReadFile("testdata/fuzz/FuzzParseLogList/witness-network-testing")
	if err != nil {
		t.Fatal(err)
	}
	_, quoted, _ := strings.Cut(strings.TrimSpace(string(b)), "[]byte(")
	list, err := strconv.Unquote(strings.TrimSuffix(quoted, ")"))
	if err != nil {
		t.Fatal(err)
	}
	logs, err := ParseLogList([]byte(list))
	if err != nil || len(logs) != 11 {
		t.Fatalf("%d logs, %v", len(logs), err)
	}
	for _, l := range logs {
		if l.Verifier == nil || l.Origin != l.Verifier.Name() {
			t.Errorf("%+v", l)
		}
	}
	if l := logs[9]; l.Origin != "markovianprotocol.com/log" || l.QPD != 24 || l.Contact != "hello@markovianprotocol.com" {
		t.Errorf("%+v", l)
	}
}
