package log

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Attack: a data directory (a crafted backup, a shared mount) with a FIFO,
// or a symlink to /dev/zero, in place of a proof file under proofs/. GET
// /tlog/proofs/... read it with os.ReadFile: the FIFO hung each request
// for it for ever, and /dev/zero was read without end into memory. A
// proof file is now read only as a regular file, not through a symlink,
// and bounded.
func TestProofTreePlantedFiles(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	rel := "tlog/proofs/authors/id/A/AB/ABC/"
	root := filepath.Join(dir, ProofsDir, filepath.FromSlash(rel))
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(root, "F-1.tar.gz.tlog-proof")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("mkfifo:", err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(root, "F-2.tar.gz.tlog-proof")); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for _, name := range []string{"F-1.tar.gz.tlog-proof", "F-2.tar.gz.tlog-proof"} {
		resp, err := client.Get(s.url + "/" + rel + name)
		if err != nil {
			// Unblock the handler so that the server can stop.
			if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
			t.Fatalf("GET of a planted %s: %v", name, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("a planted %s was served", name)
		}
	}
}
