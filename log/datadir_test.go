package log_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/client"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/monitor"
	"github.com/CPAN-Security/cpan-tlog/witness"
)

// lockedBuffer is a log sink shared by the log's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func openLog(t *testing.T, cfg tlog.Config) (*tlog.Log, error) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	cfg.CheckpointInterval = 100 * time.Millisecond
	l, err := tlog.Open(context.Background(), cfg)
	if err == nil {
		t.Cleanup(func() { l.Shutdown(context.Background()) })
	}
	return l, err
}

// listing is what a directory holds, to show a refusal wrote nothing.
func listing(t *testing.T, dir string) string {
	t.Helper()
	var names []string
	filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		names = append(names, p)
		return nil
	})
	return strings.Join(names, "\n")
}

// A data directory that is another tool's, or holds files no log writes,
// is refused with the reason and its absolute path, and nothing is
// written in it; so is an --origin other than the stored key's.
func TestDataDirNotALogRefused(t *testing.T) {
	witnessDir := t.TempDir()
	if _, err := witness.Keygen(witnessDir, "witness.example"); err != nil {
		t.Fatal(err)
	}
	monitorDir := t.TempDir()
	_, vkey, err := note.GenerateKey(rand.Reader, "localhost/cpan-tlog")
	if err != nil {
		t.Fatal(err)
	}
	p, err := client.ParsePolicy([]byte("log " + vkey + " http://127.0.0.1:1\nquorum none\n"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := monitor.New(monitor.Config{Policy: p, StateDir: monitorDir, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	otherDir := t.TempDir()
	os.WriteFile(filepath.Join(otherDir, "notes.txt"), []byte("my notes"), 0o644)
	os.Mkdir(filepath.Join(otherDir, "photos"), 0o755)

	for _, c := range []struct{ name, dir, want string }{
		{"witness", witnessDir, "is a witness's state directory (cpantlog-witness)"},
		{"monitor", monitorDir, "is a monitor's state directory (cpantlog-monitor)"},
		{"other files", otherDir, "is not empty and holds no log"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := listing(t, c.dir)
			_, err := openLog(t, tlog.Config{DataDir: c.dir})
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.dir) || !strings.Contains(err.Error(), "nothing was written") {
				t.Fatalf("Open(%s): %v, want %q naming the directory", c.name, err, c.want)
			}
			if after := listing(t, c.dir); after != before {
				t.Errorf("the refused start wrote into %s:\n%s\nwas\n%s", c.dir, after, before)
			}
			r, err := tlog.CheckData(context.Background(), tlog.Config{DataDir: c.dir})
			if err != nil || !r.Failed() || !strings.Contains(r.String(), c.want) {
				t.Errorf("check-data on %s: %v\n%s", c.name, err, r)
			}
		})
	}

	t.Run("origin", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := tlog.Keygen(dir, "cpan-tlog.example.org/log"); err != nil {
			t.Fatal(err)
		}
		_, err := openLog(t, tlog.Config{DataDir: dir, Origin: "cpan-tlog.example.org/log2"})
		if err == nil || !strings.Contains(err.Error(), `--origin "cpan-tlog.example.org/log2" does not match`) || !strings.Contains(err.Error(), `"cpan-tlog.example.org/log"`) || !strings.Contains(err.Error(), filepath.Join(dir, tlog.KeyFile)) {
			t.Fatalf("Open with another --origin: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, tlog.TreeDir)); err == nil {
			t.Error("the refused start created the tree")
		}
	})
}

// A new log says so in one line naming the directory (absolute, also for
// a relative --data) and the origin; a restart does not say it again.
func TestNewLogSaysWhere(t *testing.T) {
	wd := t.TempDir()
	t.Chdir(wd)
	var out lockedBuffer
	logger := slog.New(slog.NewTextHandler(&out, nil))
	l, err := openLog(t, tlog.Config{DataDir: "cpantlog-data", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	l.Shutdown(context.Background())
	abs := filepath.Join(wd, "cpantlog-data")
	want := "creating a new log localhost/cpan-tlog in " + abs
	if n := strings.Count(out.String(), want); n != 1 {
		t.Fatalf("the first start logged %q %d times, want once:\n%s", want, n, out.String())
	}
	out.mu.Lock()
	out.b.Reset()
	out.mu.Unlock()
	l, err = openLog(t, tlog.Config{DataDir: "cpantlog-data", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	l.Shutdown(context.Background())
	if strings.Contains(out.String(), "creating a new log") {
		t.Errorf("a restart said it created a log:\n%s", out.String())
	}
	// A directory with only keygen's keys, or an empty one, is a log to be.
	dir := t.TempDir()
	if _, err := tlog.Keygen(dir, "cpan-tlog.example.org/log"); err != nil {
		t.Fatal(err)
	}
	if _, err := openLog(t, tlog.Config{DataDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}); err != nil {
		t.Errorf("a directory holding keygen's keys: %v", err)
	}
}
