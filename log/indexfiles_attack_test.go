package log

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	key := filepath.Join(dir, KeyFile)
	if err := os.WriteFile(key, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	s := indexFiles{dir: filepath.Join(dir, IndexFilesDir)}
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
			f, err := s.open(context.Background(), sum)
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
