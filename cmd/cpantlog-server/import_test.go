//go:build unix

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/internal/cli"
)

// TestImportInterruptedSaysHowToResume: Ctrl-C (a real SIGINT, sent to
// this process) in the middle of an import ends it with "import
// interrupted: N files logged so far; run the same command again to
// resume ..." and exit status 130, not "context canceled" and 1; running
// it again skips those N and logs the rest.
func TestImportInterruptedSaysHowToResume(t *testing.T) {
	mirror := t.TempDir()
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	const total, bad = 2000, 700 // imported oldest first, 512 a batch: the bad file is in the second
	badDir := filepath.Join(mirror, "authors", "id", "B", "BA", "BAD")
	for i := range total {
		p := filepath.Join(mirror, "authors", "id", "S", "SY", fmt.Sprintf("SYNTH%d", i%7), fmt.Sprintf("Synth-%d.tar.gz", i))
		if i == bad {
			p = filepath.Join(badDir, "Bad-1.0.tar.gz")
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(fmt.Sprint(i)), 0o644); err != nil {
			t.Fatal(err)
		}
		mtime := base.Add(time.Duration(i) * time.Second)
		os.Chtimes(p, mtime, mtime)
	}
	// Its CHECKSUMS disagrees: the import says so in the log, and then
	// the user presses Ctrl-C.
	checksums := filepath.Join(badDir, "CHECKSUMS")
	os.WriteFile(checksums, []byte("$cksum = {\n  'Bad-1.0.tar.gz' => {\n    'size' => 1\n  },\n};\n"), 0o644)
	data := filepath.Join(t.TempDir(), "data")
	args := []string{"--data", data, "--mirror", mirror}

	var stdout bytes.Buffer
	stderr := &interruptOn{pattern: []byte(`msg="import: not logged"`)}
	err := importRun(args, &stdout, stderr)
	if !stderr.sent() {
		t.Fatalf("the import never reached the bad file: %v\n%s", err, stderr.String())
	}
	line := errorLine("import", err)
	m := regexp.MustCompile(`^import interrupted: (\d+) files logged so far; run the same command again to resume \(files already logged are skipped\)$`).FindStringSubmatch(line)
	if m == nil || cli.ExitCode(err, 1) != 130 {
		t.Fatalf("interrupted import says %q, exit %d; want how to resume and 130\nstdout: %s", line, cli.ExitCode(err, 1), stdout.String())
	}
	n, _ := strconv.Atoi(m[1])
	if n < 512 || n >= total-1 {
		t.Errorf("%d files logged before the interruption; want the first batch (512) at least, not all", n)
	}
	if want := fmt.Sprintf("import: %d files, %d logged, 0 already logged", total, n); !bytes.Contains(stdout.Bytes(), []byte(want)) {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}

	// Run again, the CHECKSUMS mended: what was logged is skipped.
	os.Remove(checksums)
	stdout.Reset()
	if err := importRun(args, &stdout, io.Discard); err != nil {
		t.Fatalf("the second run: %v\n%s", err, stdout.String())
	}
	if want := fmt.Sprintf("import: %d files, %d logged, %d already logged, 0 failed\n", total, total-n, n); stdout.String() != want {
		t.Errorf("the second run: %q, want %q", stdout.String(), want)
	}

	// A signal other than SIGINT: its own status.
	if got := cli.ExitCode(interruptionFor(t, syscall.SIGTERM), 1); got != 143 {
		t.Errorf("interrupted by SIGTERM: exit %d, want 143", got)
	}
	if errorLine("import", nil) != "" || errorLine("import", fmt.Errorf("disk full")) != "cpantlog-server import: disk full" {
		t.Error("errorLine")
	}
}

// interruptionFor is the error of an import that sig stopped.
func interruptionFor(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	ctx, stop := notifyContext(t.Context(), sig)
	defer stop()
	syscall.Kill(os.Getpid(), sig)
	<-ctx.Done()
	if ie := interruption(ctx, 3); ie != nil {
		return ie
	}
	t.Fatalf("no interruption after %v", sig)
	return nil
}

// interruptOn collects what is written to it and, the first time it holds
// pattern, sends SIGINT to this process, as Ctrl-C would.
type interruptOn struct {
	pattern []byte
	mu      sync.Mutex
	buf     bytes.Buffer
	done    bool
}

func (w *interruptOn) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.done && bytes.Contains(w.buf.Bytes(), w.pattern) {
		w.done = true
		syscall.Kill(os.Getpid(), syscall.SIGINT)
	}
	return len(p), nil
}

func (w *interruptOn) sent() bool     { w.mu.Lock(); defer w.mu.Unlock(); return w.done }
func (w *interruptOn) String() string { w.mu.Lock(); defer w.mu.Unlock(); return w.buf.String() }
