package web

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// leafSeen is what the page's readLeaf made of a leaf.
type leafSeen struct {
	OK                       bool
	Kind, Path, Size, SHA256 string
	Message                  string
}

// TestBrowserReadsLeavesAsTheLogDoes: the page's readLeaf parses a v1
// entry as log/entry.Parse does: a table of malformed leaves it must
// refuse, and seeded random mutations of valid leaves, each accepted by
// both with the same fields or refused by both.
func TestBrowserReadsLeavesAsTheLogDoes(t *testing.T) {
	when := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	sum := sha256.Sum256([]byte("x")) // its hex has letters
	upload, _ := (&entry.Entry{Kind: entry.Upload, Path: "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", Size: 35784, SHA256: sum, Uploader: "ETHER", Time: when}).Marshal()
	index, _ := (&entry.Entry{Kind: entry.Index, Path: "modules/02packages.details.txt.gz", Size: 7, SHA256: sum, Time: when}).Marshal()
	del, _ := (&entry.Entry{Kind: entry.Delete, Path: "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", Time: when}).Marshal()
	up := string(upload)
	hexSum := hex.EncodeToString(sum[:])
	valid := []string{up, string(index), string(del)}
	malformed := map[string]string{
		"empty":                "",
		"no final newline":     strings.TrimSuffix(up, "\n"),
		"another version":      strings.Replace(up, "cpan-tlog/v1 ", "cpan-tlog/v2 ", 1),
		"unknown kind":         strings.Replace(up, "v1 upload", "v1 uplod", 1),
		"size leading zero":    strings.Replace(up, "size 35784", "size 035784", 1),
		"size with a sign":     strings.Replace(up, "size 35784", "size +35784", 1),
		"size negative":        strings.Replace(up, "size 35784", "size -35784", 1),
		"size exponent":        strings.Replace(up, "size 35784", "size 3e4", 1),
		"size space":           strings.Replace(up, "size 35784", "size  35784", 1),
		"size past uint64":     strings.Replace(up, "size 35784", "size 18446744073709551616", 1),
		"size empty":           strings.Replace(up, "size 35784", "size ", 1),
		"sha256 upper case":    strings.Replace(up, hexSum, strings.ToUpper(hexSum), 1),
		"sha256 short":         strings.Replace(up, hexSum, hexSum[:63], 1),
		"sha256 long":          strings.Replace(up, hexSum, hexSum+"0", 1),
		"sha256 before size":   strings.Replace(strings.Replace(up, "size 35784\n", "", 1), "uploader", "size 35784\nuploader", 1),
		"no path":              strings.Replace(up, "path authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz\n", "", 1),
		"empty path":           strings.Replace(up, "path authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", "path ", 1),
		"CRLF":                 strings.ReplaceAll(up, "\n", "\r\n"),
		"invalid UTF-8 path":   strings.Replace(up, "Try-Tiny", "Try-\xffTiny", 1),
		"longer than 8192":     strings.Replace(up, "path authors/id/E/ET/ETHER/", "path authors/id/E/ET/ETHER/"+strings.Repeat("x", 8192), 1),
		"leading blank line":   "\n" + up,
		"index without sha256": strings.Replace(string(index), "sha256 "+hexSum+"\n", "", 1),
	}
	var leaves []string
	var names []string
	for name, l := range malformed {
		names = append(names, name)
		leaves = append(leaves, l)
	}
	nMalformed := len(leaves)
	leaves = append(leaves, valid...)
	// Seeded random mutations of the valid leaves.
	rng := rand.New(rand.NewPCG(40, 2))
	alphabet := []byte("0159afAF \n+-./:\xff\xc3\r")
	for range 1500 {
		b := []byte(valid[rng.IntN(len(valid))])
		for range 1 + rng.IntN(3) {
			i := rng.IntN(len(b))
			switch rng.IntN(3) {
			case 0:
				b[i] = alphabet[rng.IntN(len(alphabet))]
			case 1:
				b = append(b[:i], b[i+1:]...)
			case 2:
				b = append(b[:i], append([]byte{alphabet[rng.IntN(len(alphabet))]}, b[i:]...)...)
			}
			if len(b) == 0 {
				break
			}
		}
		leaves = append(leaves, string(b))
	}
	b64 := make([]string, len(leaves))
	for i, l := range leaves {
		b64[i] = base64.StdEncoding.EncodeToString([]byte(l))
	}
	_, srv := explorer(t)
	res := drive(t, true, step{Goto: srv.URL + "/", Leaves: b64})
	got := res[0].Leaves
	if len(got) != len(leaves) {
		t.Fatalf("%d answers for %d leaves", len(got), len(leaves))
	}
	for i := range nMalformed {
		if got[i].OK {
			t.Errorf("%s: readLeaf accepts %q", names[i], leaves[i])
		}
		if _, err := entry.Parse([]byte(leaves[i])); err == nil {
			t.Errorf("%s: the table's malformed leaf is one entry.Parse accepts", names[i])
		}
	}
	accepted := 0
	for i := nMalformed; i < len(leaves); i++ {
		e, err := entry.Parse([]byte(leaves[i]))
		if err != nil {
			if got[i].OK {
				t.Errorf("leaf %q: readLeaf accepts it, entry.Parse refuses it: %v", leaves[i], err)
			}
			continue
		}
		accepted++
		want := leafSeen{OK: true, Kind: string(e.Kind), Path: e.Path}
		if e.Kind != entry.Delete {
			want.Size, want.SHA256 = strconv.FormatUint(e.Size, 10), hex.EncodeToString(e.SHA256[:])
		}
		if g := got[i]; g.OK != want.OK || g.Kind != want.Kind || g.Path != want.Path || g.Size != want.Size || g.SHA256 != want.SHA256 {
			t.Errorf("leaf %q: readLeaf gives %+v, entry.Parse %+v", leaves[i], g, want)
		}
	}
	if accepted < len(valid) {
		t.Errorf("only %d leaves were valid", accepted)
	}
	t.Logf("%d malformed, %d random leaves; entry.Parse accepted %d", nMalformed, len(leaves)-nMalformed, accepted)
}

// TestBrowserPlaysTheEntryVectors: the page's readLeaf gives each entry of
// testdata/vectors-entries.jsonl (written from log/entry's tables, played
// by the Perl verifier too) the verdict log/entry.Parse gives: one verdict
// in Go, Perl and the browser.
func TestBrowserPlaysTheEntryVectors(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/vectors-entries.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	type vec struct {
		Name  string `json:"name"`
		Entry string `json:"entry"`
		Valid bool   `json:"valid"`
	}
	var vs []vec
	var b64 []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var v vec
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
		b64 = append(b64, base64.StdEncoding.EncodeToString([]byte(v.Entry)))
	}
	if len(vs) < 50 {
		t.Fatalf("%d entry vectors", len(vs))
	}
	_, srv := explorer(t)
	got := drive(t, true, step{Goto: srv.URL + "/", Leaves: b64})[0].Leaves
	if len(got) != len(vs) {
		t.Fatalf("%d answers for %d entries", len(got), len(vs))
	}
	for i, v := range vs {
		if got[i].OK != v.Valid {
			t.Errorf("%s: the page says valid=%v, log/entry.Parse %v", v.Name, got[i].OK, v.Valid)
		}
	}
}
