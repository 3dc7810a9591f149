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
