package witness

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/internal/confline"
)

// Bounds on a c2sp.org/tlog-list the witness reads. The public witness
// network's largest profile so far ("100qps-40klogs") lists 40,000 logs
// of about 200 bytes each; an ML-DSA-44 vkey is about 1,800 bytes.
const (
	MaxLogListSize  = 32 << 20 // bytes in one list
	MaxLogListLine  = 8 << 10  // bytes in one line, before trimming
	MaxLogListLogs  = 100_000  // logs in one list, and logs learned from lists
	LogListHeader   = "logs/v0"
	maxLogListQPD   = 1<<31 - 1
	maxErrorTextLen = 120
)

// ListLog is one log of a c2sp.org/tlog-list.
type ListLog struct {
	VKey   string // the log's verifier key, as listed
	Origin string // its origin line: the origin line if listed, else the key's name
	// Verifier checks the log's signatures; nil when the key is well formed
	// but of a type this witness cannot verify (KeyType says which).
	Verifier note.Verifier
	KeyType  byte
	QPD      uint32 // add-checkpoint requests per day the log may make
	Contact  string
	Line     int // the line of its vkey
}

// keyTypeEd25519 is signed-note's Ed25519 key type, the one logs sign with.
const keyTypeEd25519 = 0x01

// ParseLogList reads a c2sp.org/tlog-list (logs/v0): lines end at 0x0A,
// leading and trailing spaces and tabs are removed, blank lines and lines
// starting with '#' are skipped; the first other line is "logs/v0", and
// every log follows as the strict sequence "vkey VKEY", optionally
// "origin ORIGIN", "qpd QPD", "contact CONTACT".
//
// Beyond the spec's rules it refuses what it cannot hold safely: a list
// larger than MaxLogListSize, a line longer than MaxLogListLine, more than
// MaxLogListLogs logs, invalid UTF-8 or control characters outside
// comments. A CR before a line's LF is dropped, as transparency-dev's
// parsers do, so a list saved with CRLF line ends still reads. Every error
// names its line (a *confline.Error); a list with an error yields no logs.
func ParseLogList(b []byte) ([]ListLog, error) {
	if len(b) > MaxLogListSize {
		return nil, fmt.Errorf("tlog-list: %d bytes, more than the %d this witness reads", len(b), MaxLogListSize)
	}
	const (
		wantHeader = iota
		wantVKey
		wantOriginOrQPD
		wantQPD
		wantContact
	)
	state := wantHeader
	var logs []ListLog
	var cur ListLog
	origins := map[string]int{} // origin -> line of its vkey
	n := 0
	fail := func(raw []byte, format string, args ...any) error {
		text := strings.ToValidUTF8(string(trimSpaceTab(bytes.TrimSuffix(raw, []byte("\r")))), "\uFFFD")
		if len(text) > maxErrorTextLen {
			text = strings.ToValidUTF8(text[:maxErrorTextLen], "") + "…"
		}
		return &confline.Error{File: "tlog-list", Line: n, Text: text, Err: fmt.Errorf(format, args...)}
	}
	for rest := b; len(rest) > 0; {
		var raw []byte
		raw, rest, _ = bytes.Cut(rest, []byte("\n"))
		n++
		if len(raw) > MaxLogListLine {
			return nil, fail(raw, "line is %d bytes, more than the %d allowed", len(raw), MaxLogListLine)
		}
		line := trimSpaceTab(bytes.TrimSuffix(raw, []byte("\r")))
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if !utf8.Valid(line) {
			return nil, fail(raw, "not valid UTF-8")
		}
		if i := bytes.IndexFunc(line, func(r rune) bool { return r != '\t' && (r < 0x20 || r == 0x7f) }); i >= 0 {
			return nil, fail(raw, "control character 0x%02x", line[i])
		}
		key, value := splitKeyValue(string(line))
		if state == wantHeader {
			if string(line) != LogListHeader {
				return nil, fail(raw, "the first line that is not blank or a comment must be %q", LogListHeader)
			}
			state = wantVKey
			continue
		}
		want := [...]string{wantVKey: "vkey", wantOriginOrQPD: "origin or qpd", wantQPD: "qpd", wantContact: "contact"}[state]
		switch key {
		case LogListHeader:
			return nil, fail(raw, "a second %q header", LogListHeader)
		case "vkey", "origin", "qpd", "contact":
		default:
			return nil, fail(raw, "unknown keyword %q (want %s)", key, want)
		}
		if key != want && !(state == wantOriginOrQPD && (key == "origin" || key == "qpd")) {
			return nil, fail(raw, "want a %s line here, found %q (a log's lines are vkey, [origin], qpd, contact, in that order)", want, key)
		}
		if value == "" {
			return nil, fail(raw, "%s has no value", key)
		}
		switch key {
		case "vkey":
			if len(logs) == MaxLogListLogs {
				return nil, fail(raw, "more than %d logs", MaxLogListLogs)
			}
			v, typ, err := parseLogVKey(value)
			if err != nil {
				return nil, fail(raw, "vkey: %v", err)
			}
			cur = ListLog{VKey: value, Verifier: v, KeyType: typ, Line: n, Origin: keyName(value)}
			state = wantOriginOrQPD
		case "origin":
			cur.Origin = value
			state = wantQPD
		case "qpd":
			q, err := parseQPD(value)
			if err != nil {
				return nil, fail(raw, "qpd: %v", err)
			}
			cur.QPD = q
			state = wantContact
		case "contact":
			cur.Contact = value
			if prev, dup := origins[cur.Origin]; dup {
				return nil, &confline.Error{File: "tlog-list", Line: cur.Line, Text: cur.VKey,
					Err: fmt.Errorf("origin %q is also the origin of the log on line %d; two logs must not share an origin", cur.Origin, prev)}
			}
			origins[cur.Origin] = cur.Line
			logs = append(logs, cur)
			state = wantVKey
		}
	}
	switch state {
	case wantHeader:
		return nil, fmt.Errorf("tlog-list: no %q header (the list is empty or all comments)", LogListHeader)
	case wantVKey:
		return logs, nil
	default:
		return nil, &confline.Error{File: "tlog-list", Line: cur.Line, Text: cur.VKey, Err: errors.New("the list ends before this log's qpd and contact lines")}
	}
}

// trimSpaceTab removes leading and trailing spaces and tabs, and only
// those, as tlog-list says.
func trimSpaceTab(b []byte) []byte { return bytes.Trim(b, " \t") }

// splitKeyValue splits a trimmed line at its first space or tab; the value
// is the rest, without the spaces and tabs that separate it.
func splitKeyValue(line string) (key, value string) {
	i := strings.IndexAny(line, " \t")
	if i < 0 {
		return line, ""
	}
	return line[:i], strings.TrimLeft(line[i:], " \t")
}

// parseQPD reads tlog-list's QPD: a decimal of 0-9 only, no leading zero,
// in [1, 2^31).
func parseQPD(s string) (uint32, error) {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a decimal number of digits 0-9 only", s)
		}
	}
	if s[0] == '0' {
		return 0, fmt.Errorf("%q: must be at least 1, with no leading zero", s)
	}
	q, err := strconv.ParseUint(s, 10, 32)
	if err != nil || q > maxLogListQPD {
		return 0, fmt.Errorf("%q: must be less than 2^31", s)
	}
	return uint32(q), nil
}

func keyName(vkey string) string {
	name, _, _ := strings.Cut(vkey, "+")
	return name
}

// parseLogVKey checks a signed-note verifier key (name+hash+base64 of
// type||key, the hash being the first 4 bytes of SHA-256(name||0x0A||
// type||key)) and returns a verifier for an Ed25519 key, or nil and the
// type of a well-formed key of another type.
func parseLogVKey(vkey string) (note.Verifier, byte, error) {
	name, rest, ok1 := strings.Cut(vkey, "+")
	hash16, key64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 {
		return nil, 0, errors.New("want NAME+HASH+KEY")
	}
	if err := client.CheckKeyName(name); err != nil {
		return nil, 0, err
	}
	hash, err := strconv.ParseUint(hash16, 16, 32)
	if len(hash16) != 8 || err != nil {
		return nil, 0, fmt.Errorf("key hash %q is not 8 hex digits", hash16)
	}
	key, err := base64.StdEncoding.Strict().DecodeString(key64)
	if err != nil || len(key) < 2 {
		return nil, 0, errors.New("key is not base64 of a type byte and a public key")
	}
	h := sha256.Sum256(append([]byte(name+"\n"), key...))
	if binary.BigEndian.Uint32(h[:4]) != uint32(hash) {
		return nil, 0, fmt.Errorf("key hash %s does not match the key (want %08x)", hash16, binary.BigEndian.Uint32(h[:4]))
	}
	if key[0] != keyTypeEd25519 {
		return nil, key[0], nil
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, 0, err
	}
	return v, key[0], nil
}

// MarshalLogList writes logs as a tlog-list (logs/v0) that ParseLogList
// reads back, with an origin line only where it differs from the key's
// name, after the comment lines in header.
func MarshalLogList(header []string, logs []ListLog) []byte {
	var b bytes.Buffer
	for _, h := range header {
		b.WriteString("# " + h + "\n")
	}
	b.WriteString(LogListHeader + "\n")
	for _, l := range logs {
		b.WriteString("\nvkey " + l.VKey + "\n")
		if l.Origin != keyName(l.VKey) {
			b.WriteString("origin " + l.Origin + "\n")
		}
		fmt.Fprintf(&b, "qpd %d\ncontact %s\n", l.QPD, l.Contact)
	}
	return b.Bytes()
}
