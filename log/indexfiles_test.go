package log

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIndexFiles: the log keeps every index file version's bytes,
// content-addressed; a .gz as it is, another compressed; served back byte
// for byte; writes need the token and bytes that match the name.
func TestIndexFiles(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("File: 02packages.details.txt\n\nTry::Tiny 0.31 E/ET/ETHER/Try-Tiny-0.31.tar.gz\n"))
	zw.Close()
	plain := []byte(strings.Repeat("Try::Tiny 0.31 E/ET/ETHER/Try-Tiny-0.31.tar.gz\n", 1000))
	put := func(sum [32]byte, body []byte, token string) int {
		code, _, _ := s.do("PUT", fmt.Sprintf("/index-files/%x", sum), token, string(body))
		return code
	}
	get := func(path string) (int, []byte) {
		code, b, _ := s.do("GET", path, "", "")
		return code, b
	}
	if code := put(sha256.Sum256(plain), plain, ""); code != 401 {
		t.Errorf("PUT without the token: %d, want 401", code)
	}
	if code := put(sha256.Sum256(plain), gz.Bytes(), s.log.Token()); code != 400 {
		t.Errorf("PUT of other bytes than the name says: %d, want 400", code)
	}
	for _, v := range [][]byte{gz.Bytes(), plain} {
		sum := sha256.Sum256(v)
		if code := put(sum, v, s.log.Token()); code != 201 {
			t.Fatalf("PUT: %d, want 201", code)
		}
		code, b := get(fmt.Sprintf("/index-files/%x", sum))
		if code != 200 || !bytes.Equal(b, v) {
			t.Errorf("GET: %d, %d bytes, want the %d bytes stored", code, len(b), len(v))
		}
	}
	stored, _ := filepath.Glob(filepath.Join(dir, IndexFilesDir, "*", "*"))
	var sizes int64
	for _, f := range stored {
		st, _ := os.Stat(f)
		sizes += st.Size()
	}
	if len(stored) != 2 || sizes >= int64(len(plain)) {
		t.Errorf("stored %v, %d bytes: want two files, the plain one compressed", stored, sizes)
	}
	if code, _ := get(fmt.Sprintf("/index-files/%x", sha256.Sum256([]byte("never stored")))); code != 404 {
		t.Errorf("GET of a version never stored: %d, want 404", code)
	}
	if code, _ := get("/index-files/ABC"); code != 404 {
		t.Errorf("GET of a malformed name: %d, want 404", code)
	}
}

// BenchmarkIndexFileVersion stores one version of a real-size 02packages
// (270,000 packages, as CPAN has) in both forms PAUSE publishes, .gz and
// .txt, and reports what the log keeps per version.
func BenchmarkIndexFileVersion(b *testing.B) {
	var txt bytes.Buffer
	txt.WriteString("File:         02packages.details.txt\nLine-Count:   270000\n\n")
	for i := range 270000 {
		a := fmt.Sprintf("AUTHOR%d", i%14000)
		fmt.Fprintf(&txt, "%-30s %-8s %s/%s/%s/Dist-%d-%d.%d.tar.gz\n", fmt.Sprintf("Name%d::Space%d::Mod%d", i%7919, i%131, i), fmt.Sprintf("%d.%03d", i%9, i%1000), a[:1], a[:2], a, i%50000, i%7, i%100)
	}
	var gzb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gzb, gzip.BestCompression)
	zw.Write(txt.Bytes())
	zw.Close()
	b.ReportAllocs()
	var kept int64
	for i := 0; b.Loop(); i++ {
		s := indexFiles{dir: b.TempDir()}
		for _, v := range [][]byte{gzb.Bytes(), append(bytes.Clone(txt.Bytes()), fmt.Sprintf("# %d\n", i)...)} {
			if _, err := s.put(b.Context(), sha256.Sum256(v), bytes.NewReader(v)); err != nil {
				b.Fatal(err)
			}
		}
		kept = 0
		filepath.Walk(s.dir, func(_ string, fi os.FileInfo, _ error) error {
			if fi != nil && !fi.IsDir() {
				kept += fi.Size()
			}
			return nil
		})
	}
	b.ReportMetric(float64(gzb.Len()), "gz-bytes")
	b.ReportMetric(float64(txt.Len()), "txt-bytes")
	b.ReportMetric(float64(kept), "kept-bytes/version")
}
