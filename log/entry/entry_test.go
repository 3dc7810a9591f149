package entry

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const tryTiny = "cpan-tlog/v1 upload\n" +
	"path authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz\n" +
	"size 35784\n" +
	"sha256 3300d31d8a4075b26d8f46ce864a1d913e0e8467ceeba6655d5d2b2e206c11be\n" +
	"uploader ETHER\n" +
	"time 2021-01-05T12:00:00Z\n"

const withSigstore = "cpan-tlog/v1 upload\n" +
	"path authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz.sigstore.json\n" +
	"size 4242\n" +
	"sha256 00000000000000000000000000000000000000000000000000000000000000aa\n" +
	"uploader ETHER\n" +
	"time 2021-01-05T12:00:01Z\n" +
	"sigstore-artifact-sha256 3300d31d8a4075b26d8f46ce864a1d913e0e8467ceeba6655d5d2b2e206c11be\n" +
	"sigstore-issuer https://token.actions.githubusercontent.com\n" +
	"sigstore-san https://github.com/p5sagit/Try-Tiny/.github/workflows/release.yml@refs/tags/v0.31\n" +
	"sigstore-source-repo https://github.com/p5sagit/Try-Tiny\n" +
	"sigstore-rekor-index 12345\n"

// rekorLog is the key ID of Sigstore's public-good Rekor v1 log
// (rekor.sigstore.dev), as its trusted_root.json lists it.
const rekorLog = "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"

// withRekorLog names the Rekor log its index counts in.
const withRekorLog = withSigstore + "sigstore-rekor-log " + rekorLog + "\n"

const deletion = "cpan-tlog/v1 delete\n" +
	"path authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz\n" +
	"time 2022-02-01T00:00:00Z\n"

const indexVersion = "cpan-tlog/v1 index\n" +
	"path modules/02packages.details.txt.gz\n" +
	"size 2519871\n" +
	"sha256 0f2a9c1d4e3b5a6978c0d1e2f3a4b5c6d7e8f90112233445566778899aabbccd\n" +
	"time 2026-11-24T10:00:00Z\n"

func mustHex(s string) (h [32]byte) {
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		panic(err)
	}
	return h
}

func TestDesignExample(t *testing.T) {
	e := &Entry{
		Kind:     Upload,
		Path:     "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz",
		Size:     35784,
		SHA256:   mustHex("3300d31d8a4075b26d8f46ce864a1d913e0e8467ceeba6655d5d2b2e206c11be"),
		Uploader: "ETHER",
		Time:     time.Date(2021, 1, 5, 12, 0, 0, 0, time.UTC),
	}
	got, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != tryTiny {
		t.Errorf("Marshal:\n%s\nwant DESIGN.md's example:\n%s", got, tryTiny)
	}
	back, err := Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(e, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, leaf := range []string{tryTiny, withSigstore, withRekorLog, deletion, indexVersion} {
		e, err := Parse([]byte(leaf))
		if err != nil {
			t.Fatalf("Parse(%q): %v", leaf, err)
		}
		b, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != leaf {
			t.Errorf("round trip changed the leaf:\n%q\n%q", leaf, b)
		}
	}
	e, _ := Parse([]byte(withSigstore))
	if e.Sigstore == nil || e.Sigstore.RekorIndex == nil || *e.Sigstore.RekorIndex != 12345 || e.Sigstore.BuildConfig != "" {
		t.Errorf("sigstore fields: %+v", e.Sigstore)
	}
	if e, _ := Parse([]byte(withRekorLog)); e == nil || e.Sigstore.RekorLog != rekorLog {
		t.Errorf("sigstore-rekor-log: %+v", e)
	}
}

func TestParseRejects(t *testing.T) {
	for name, leaf := range rejected() {
		t.Run(name, func(t *testing.T) {
			e, err := Parse([]byte(leaf))
			if err == nil {
				t.Fatalf("Parse accepted %q as %+v", leaf, e)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
}

// rejected holds entries Parse must refuse, by what is wrong with them;
// they are shared with the Perl verifier (testdata/vectors-entries.jsonl).
func rejected() map[string]string {
	r := strings.NewReplacer
	return map[string]string{
		"empty":                          "",
		"no final newline":               strings.TrimSuffix(tryTiny, "\n"),
		"CRLF":                           r("\n", "\r\n").Replace(tryTiny),
		"extra blank line":               tryTiny + "\n",
		"trailing space":                 r("ETHER\n", "ETHER \n").Replace(tryTiny),
		"two spaces":                     r("size 35784", "size  35784").Replace(tryTiny),
		"tab":                            r("size 35784", "size\t35784").Replace(tryTiny),
		"v2 header":                      r("cpan-tlog/v1", "cpan-tlog/v2").Replace(tryTiny),
		"unknown kind":                   r("upload", "uplaod").Replace(tryTiny),
		"upper-case hex":                 r("3300d31d", "3300D31D").Replace(tryTiny),
		"short hex":                      r("3300d31d", "3300d31").Replace(tryTiny),
		"non-hex":                        r("3300d31d", "3300d31g").Replace(tryTiny),
		"leading zero size":              r("size 35784", "size 035784").Replace(tryTiny),
		"negative size":                  r("size 35784", "size -1").Replace(tryTiny),
		"plus size":                      r("size 35784", "size +1").Replace(tryTiny),
		"huge size":                      r("size 35784", "size 99999999999999999999").Replace(tryTiny),
		"swapped lines":                  r("size 35784\nsha256", "sha256").Replace(tryTiny),
		"missing uploader":               r("uploader ETHER\n", "").Replace(tryTiny),
		"lower-case uploader":            r("uploader ETHER", "uploader ether").Replace(tryTiny),
		"time with offset":               r("12:00:00Z", "12:00:00+00:00").Replace(tryTiny),
		"time with fraction":             r("12:00:00Z", "12:00:00.5Z").Replace(tryTiny),
		"time without seconds":           r("12:00:00Z", "12:00Z").Replace(tryTiny),
		"bad path":                       r("authors/id/E/ET/ETHER/", "authors/id/E/ET/ETHER/../").Replace(tryTiny),
		"path of other author":           r("authors/id/E/ET/ETHER/", "authors/id/E/EX/ETHER/").Replace(tryTiny),
		"duplicate line":                 tryTiny + "uploader ETHER\n",
		"unknown extra line":             tryTiny + "note hello\n",
		"delete with size":               r("path authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz\n", "path authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz\nsize 1\n").Replace(deletion),
		"delete with sigstore":           deletion + "sigstore-issuer x\n",
		"sigstore out of order":          r("sigstore-issuer https://token.actions.githubusercontent.com\nsigstore-san https://github.com/p5sagit/Try-Tiny/.github/workflows/release.yml@refs/tags/v0.31\n", "sigstore-san https://github.com/p5sagit/Try-Tiny/.github/workflows/release.yml@refs/tags/v0.31\nsigstore-issuer https://token.actions.githubusercontent.com\n").Replace(withSigstore),
		"sigstore missing san":           r("sigstore-san https://github.com/p5sagit/Try-Tiny/.github/workflows/release.yml@refs/tags/v0.31\n", "").Replace(withSigstore),
		"sigstore optional twice":        withSigstore + "sigstore-rekor-index 12346\n",
		"sigstore optional out of order": r("sigstore-rekor-index 12345\n", "").Replace(withSigstore) + "sigstore-rekor-index 1\nsigstore-build-config x\n",
		"sigstore value with space":      r("sigstore-issuer https://token", "sigstore-issuer https:// token").Replace(withSigstore),
		"sigstore rekor leading zero":    r("12345", "012345").Replace(withSigstore),
		"rekor log without index":        r("sigstore-rekor-index 12345\n", "sigstore-rekor-log "+rekorLog+"\n").Replace(withSigstore),
		"rekor log before index":         r("sigstore-rekor-index 12345\n", "sigstore-rekor-log "+rekorLog+"\nsigstore-rekor-index 12345\n").Replace(withSigstore),
		"rekor log upper-case":           withSigstore + "sigstore-rekor-log " + strings.ToUpper(rekorLog) + "\n",
		"rekor log odd length":           withSigstore + "sigstore-rekor-log " + rekorLog[1:] + "\n",
		"rekor log not hex":              withSigstore + "sigstore-rekor-log rekor.sigstore.dev\n",
		"rekor log too long":             withSigstore + "sigstore-rekor-log " + strings.Repeat("ab", 65) + "\n",
		"rekor log empty":                withSigstore + "sigstore-rekor-log \n",
		"rekor log twice":                withSigstore + "sigstore-rekor-log " + rekorLog + "\nsigstore-rekor-log " + rekorLog + "\n",
		"oversized":                      tryTiny + strings.Repeat("x", MaxSize),
		"NUL":                            r("ETHER\n", "ETHER\x00\n").Replace(tryTiny),
		"index of a tarball path":        r("modules/02packages.details.txt.gz", "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz").Replace(indexVersion),
		"index of another modules file":  r("02packages.details", "03modlist.data").Replace(indexVersion),
		"index with uploader":            r("time ", "uploader ETHER\ntime ").Replace(indexVersion),
		"index without sha256":           r("sha256 0f2a9c1d4e3b5a6978c0d1e2f3a4b5c6d7e8f90112233445566778899aabbccd\n", "").Replace(indexVersion),
		"index with sigstore":            indexVersion + "sigstore-issuer x\n",
		"upload of an index path":        r("authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", "modules/02packages.details.txt.gz").Replace(tryTiny),
		"look-alike path (U+200B)":       r("Try-Tiny-0.31", "Try-Tiny-0.31\u200b").Replace(tryTiny),
		"look-alike path (U+202E)":       r("Try-Tiny-0.31", "Try-Tiny\u202e-0.31").Replace(tryTiny),
	}
}

func TestMarshalRejects(t *testing.T) {
	good := func() *Entry {
		e, err := Parse([]byte(tryTiny))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	for name, mutate := range map[string]func(*Entry){
		"local time":      func(e *Entry) { e.Time = e.Time.In(time.FixedZone("X", 3600)) },
		"nanoseconds":     func(e *Entry) { e.Time = e.Time.Add(time.Millisecond) },
		"zero time":       func(e *Entry) { e.Time = time.Time{} },
		"no uploader":     func(e *Entry) { e.Uploader = "" },
		"bad kind":        func(e *Entry) { e.Kind = "rename" },
		"delete + size":   func(e *Entry) { e.Kind = Delete },
		"newline in path": func(e *Entry) { e.Path += "\nsize 1" },
	} {
		e := good()
		mutate(e)
		if b, err := e.Marshal(); err == nil {
			t.Errorf("%s: Marshal accepted it:\n%s", name, b)
		}
	}
}

// FuzzParse checks Parse's promise: whatever it accepts, Marshal gives back
// byte for byte. Seeds live in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, s := range []string{tryTiny, withSigstore, deletion, indexVersion} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, leaf []byte) {
		e, err := Parse(leaf)
		if err != nil {
			return
		}
		b, err := e.Marshal()
		if err != nil {
			t.Fatalf("Parse accepted %q but Marshal fails: %v", leaf, err)
		}
		if !bytes.Equal(b, leaf) {
			t.Fatalf("Parse(%q) re-encodes as %q", leaf, b)
		}
	})
}

// BenchmarkParseString is the strict parse a monitor runs on every entry
// of the log (a quarter of a first audit's CPU at 10M entries).
func BenchmarkParseString(b *testing.B) {
	for _, c := range []struct{ name, leaf string }{{"upload", tryTiny}, {"sigstore", withSigstore}, {"delete", deletion}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseString(c.leaf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
