package tlogproof

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const checkpoint = "localhost/cpan-tlog\n8\nsFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=\n\n\u2014 localhost/cpan-tlog hI2DJwAAAA==\n\u2014 w1.example mJirIkljBBBB==\n"

func sample() *Proof {
	h := func(s string) []byte { x := sha256.Sum256([]byte(s)); return x[:] }
	return &Proof{
		Extra:          []byte("cpan-tlog/v1 upload\npath x\n"),
		Index:          5,
		InclusionProof: [][]byte{h("a"), h("b"), h("c")},
		Checkpoint:     []byte(checkpoint),
	}
}

func TestRoundTrip(t *testing.T) {
	for _, p := range []*Proof{
		sample(),
		{Index: 0, Checkpoint: []byte(checkpoint)},
		{Index: 1 << 62, InclusionProof: sample().InclusionProof[:1], Checkpoint: []byte(checkpoint)},
	} {
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(b)
		if err != nil {
			t.Fatalf("Parse(%q): %v", b, err)
		}
		if diff := cmp.Diff(p, back); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
		again, _ := back.Marshal()
		if !bytes.Equal(again, b) {
			t.Errorf("re-encoding differs:\n%q\n%q", b, again)
		}
	}
}

func TestSpecShape(t *testing.T) {
	b, err := sample().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	if lines[0] != "c2sp.org/tlog-proof@v1" || !strings.HasPrefix(lines[1], "extra ") || lines[2] != "index 5" || lines[6] != "" || lines[7] != "localhost/cpan-tlog" {
		t.Errorf("layout differs from c2sp.org/tlog-proof:\n%s", b)
	}
}

func TestParseRejects(t *testing.T) {
	good, _ := sample().Marshal()
	g := string(good)
	lines := strings.Split(g, "\n")
	r := func(old, new string) string { return strings.Replace(g, old, new, 1) }
	cases := map[string]string{
		"empty":                  "",
		"wrong header":           r("tlog-proof@v1", "tlog-proof@v2"),
		"no blank line":          strings.Replace(g, "\n\n", "\n", 1),
		"truncated checkpoint":   g[:len(g)-10],
		"no checkpoint":          strings.SplitAfter(g, "\n\n")[0],
		"index leading zero":     r("index 5", "index 05"),
		"index negative":         r("index 5", "index -5"),
		"index missing":          r("index 5\n", ""),
		"index twice":            r("index 5\n", "index 5\nindex 5\n"),
		"extra after index":      strings.Join(append([]string{lines[0], lines[2], lines[1]}, lines[3:]...), "\n"),
		"extra not base64":       r("extra ", "extra !"),
		"extra empty":            r(lines[1], "extra "),
		"hash short":             r(lines[3], lines[3][:40]),
		"hash not canonical":     r(lines[3], strings.TrimSuffix(lines[3], "=")+"A"),
		"hash with space":        r(lines[3], " "+lines[3]),
		"reordered sections":     strings.Join(append([]string{lines[0], lines[1], lines[3], lines[2]}, lines[4:]...), "\n"),
		"CRLF":                   strings.ReplaceAll(g, "\n", "\r\n"),
		"64 hashes":              r(lines[3]+"\n", strings.Repeat(lines[3]+"\n", 64)),
		"signature without dash": r("\u2014 w1", "- w1"),
		"checkpoint two lines":   r("8\n", ""),
		"oversized":              g + strings.Repeat("\u2014 x\n", MaxSize/4),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := Parse([]byte(in))
			if err == nil {
				t.Fatalf("accepted %q as %+v", in, p)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
}

// FuzzParse checks that whatever Parse accepts re-encodes byte for byte.
// Seeds live in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	good, _ := sample().Marshal()
	f.Add(good)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		again, err := p.Marshal()
		if err != nil {
			t.Fatalf("Parse accepted %q, Marshal refuses: %v", b, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("Parse(%q) re-encodes as %q", b, again)
		}
	})
}
