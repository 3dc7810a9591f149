package tlogproof

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
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

// TestSizeBound: a proof whose checkpoint carries 16 signatures of 5 kB
// (C2SP signed-note: verifiers MUST accept at least 16, and post-quantum
// ones reach nearly 5 kB) parses; so does one of exactly MaxSize bytes;
// one byte more is refused, by Parse and by Marshal.
func TestSizeBound(t *testing.T) {
	line := func(i, nameLen int) string {
		name := fmt.Sprintf("pq%02d.example/", i)
		name += strings.Repeat("n", nameLen-len(name))
		return "\u2014 " + name + " " + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{byte(i)}, 4+5000)) + "\n"
	}
	p := sample()
	for i := range 16 {
		p.Checkpoint = append(p.Checkpoint, line(i, 256)...)
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatalf("16 signatures of 5 kB: %v", err)
	}
	if _, err := Parse(b); err != nil {
		t.Fatalf("16 signatures of 5 kB (%d bytes): %v", len(b), err)
	}
	// At the bound: the last line's name and signature take up the rest.
	sized := func(n int) ([]byte, *Proof) {
		q := sample()
		base, _ := q.Marshal()
		for i := 0; n-len(base) >= 6700+15; i++ {
			q.Checkpoint = append(q.Checkpoint, line(i, 16)...)
			base, _ = q.Marshal()
		}
		r := n - len(base)
		b64 := 4 * ((r - 7) / 4)
		q.Checkpoint = append(q.Checkpoint, "\u2014 "+strings.Repeat("p", r-6-b64)+" "+strings.Repeat("A", b64)+"\n"...)
		out := append(base, q.Checkpoint[len(q.Checkpoint)-r:]...)
		if len(out) != n {
			t.Fatalf("built %d bytes, want %d", len(out), n)
		}
		return out, q
	}
	at, q := sized(MaxSize)
	if _, err := Parse(at); err != nil {
		t.Errorf("a proof of exactly MaxSize (%d) bytes: %v", MaxSize, err)
	}
	if _, err := q.Marshal(); err != nil {
		t.Errorf("Marshal at MaxSize: %v", err)
	}
	past, q := sized(MaxSize + 1)
	if _, err := Parse(past); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "more than") {
		t.Errorf("one byte past MaxSize: %v, want malformed", err)
	}
	if _, err := q.Marshal(); err == nil {
		t.Error("Marshal one byte past MaxSize succeeded")
	}
}
