package log

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Attack: a restored data directory (a crafted backup, a shared mount)
// with a FIFO in place of Tessera's tree/.state/treeState, of the
// checkpoint, or of an entry bundle. check-data read each with
// os.ReadFile, which waits on a FIFO for a writer: it hung for ever
// instead of refusing (exit 1) or saying it could not check (exit 2).
func TestCheckDataFIFOInTree(t *testing.T) {
	for _, rel := range []string{".state/treeState", "checkpoint", "tile/entries/000.p/1"} {
		t.Run(rel, func(t *testing.T) {
			dir := t.TempDir()
			s := startServer(t, dir)
			if code, b := s.add(`{"path":"authors/id/A/AB/ABC/F-1.tar.gz","size":1,"sha256":"` + sha64(1) + `","uploader":"ABC","time":"2024-01-02T03:04:05Z"}`); code != 200 {
				t.Fatalf("add: %d %s", code, b)
			}
			waitPublished(t, dir, 1)
			s.stop()
			p := filepath.Join(dir, TreeDir, filepath.FromSlash(rel))
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Skip("mkfifo:", err)
			}
			done := make(chan struct{})
			go func() {
				r, err := CheckData(context.Background(), Config{DataDir: dir})
				if err == nil && !r.Failed() {
					t.Errorf("check-data passes a FIFO in place of tree/%s:\n%s", rel, r)
				}
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				if w, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					w.Close()
				}
				<-done
				t.Fatalf("check-data hangs on a FIFO in place of tree/%s", rel)
			}
		})
	}
}

func sha64(i int) string {
	const hexd = "0123456789abcdef"
	b := make([]byte, 64)
	for j := range b {
		b[j] = '0'
	}
	b[63] = hexd[i%16]
	return string(b)
}

// waitPublished waits until the tree's checkpoint has at least n entries.
func waitPublished(t *testing.T, dir string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(dir, TreeDir, "checkpoint")); err == nil {
			var origin string
			var size int
			if _, err := fmt.Sscan(string(b), &origin, &size); err == nil && size >= n {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no checkpoint of %d entries", n)
}
