package indexfiles

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Attack: a data directory (a crafted backup, a shared mount) holding,
// under index-files/, a symlink or a hard link named like a version to
// log.key, or a FIFO. GET /index-files/<sha256> served the private key
// as the version's bytes (check-data checks only the versions the tree
// logs, so an unlogged name passed it), and a FIFO hung every request
// for it, and check-data, for ever. A stored version is a regular file
// that is gzip (put keeps every version so): anything else is refused.
func TestIndexFilesPlantedEntries(t *testing.T) {
	dir := t.TempDir()
	secret := "PRIVATE+KEY+localhost/cpan-tlog+120a9fd2+AQBdt8QaooA3rnqYIypWBj+cSVUJEBQn0+o6MVbK2xhq\n"
	key := filepath.Join(dir, "log.key") // the log's private key, beside index-files/
	if err := os.WriteFile(key, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	s := InDir(filepath.Join(dir, Dir))
	name := func(i int) string {
		h := sha256.Sum256([]byte{byte(i)})
		sum := hex.EncodeToString(h[:])
		if err := os.MkdirAll(filepath.Dir(s.name(sum)), 0o755); err != nil {
			t.Fatal(err)
		}
		return sum
	}
	symlink, hardlink, fifo, gzSymlink := name(1), name(2), name(3), name(4)
	if err := os.Symlink(key, s.name(symlink)); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(key, s.name(hardlink)); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(s.name(fifo), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(key, s.name(gzSymlink)+".gz"); err != nil {
		t.Fatal(err)
	}
	for what, sum := range map[string]string{"symlink": symlink, "hard link": hardlink, "FIFO": fifo, "symlink .gz": gzSymlink} {
		done := make(chan string, 1)
		go func() {
			f, err := s.Open(context.Background(), sum)
			if err != nil {
				done <- ""
				return
			}
			defer f.Close()
			b, _ := io.ReadAll(f)
			done <- string(b)
		}()
		select {
		case got := <-done:
			if strings.Contains(got, "PRIVATE") {
				t.Errorf("a %s under index-files/ serves log.key as a version", what)
			}
		case <-time.After(5 * time.Second):
			if w, err := os.OpenFile(s.name(fifo), os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
			t.Errorf("a %s under index-files/ hangs its reader", what)
		}
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
		dir := b.TempDir()
		s := InDir(dir)
		for _, v := range [][]byte{gzb.Bytes(), append(bytes.Clone(txt.Bytes()), fmt.Sprintf("# %d\n", i)...)} {
			if _, err := s.Put(b.Context(), sha256.Sum256(v), bytes.NewReader(v)); err != nil {
				b.Fatal(err)
			}
		}
		kept = 0
		filepath.Walk(dir, func(_ string, fi os.FileInfo, _ error) error {
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
