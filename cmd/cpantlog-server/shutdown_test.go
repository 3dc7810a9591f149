package main

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
)

// running is a cpantlog-server process started by a test.
type running struct {
	cmd    *exec.Cmd
	url    string
	stderr *testlog.SyncBuffer
	exited chan error
}

func startServe(t *testing.T, bin string, args ...string) *running {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0", "--no-explorer"}, args...)...)
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	r := &running{cmd: cmd, stderr: &testlog.SyncBuffer{}, exited: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	copied := make(chan struct{})
	go func() { io.Copy(r.stderr, stderr); close(copied) }()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if m := regexp.MustCompile(`serving on (http://\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			r.url = m[1]
			break
		}
	}
	go io.Copy(io.Discard, stdout)
	go func() { <-copied; r.exited <- cmd.Wait() }()
	if r.url == "" {
		t.Fatalf("the server did not start:\n%s", r.stderr.String())
	}
	return r
}

// waitFor polls the server's stderr for text.
func (r *running) waitFor(t *testing.T, text string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(r.stderr.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("stderr lacks %q after %s:\n%s", text, within, r.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exit waits for the process to end and returns its exit status.
func (r *running) exit(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case err := <-r.exited:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(within):
		t.Fatalf("still running %s later:\n%s", within, r.stderr.String())
		return -1
	}
}

func (r *running) add(t *testing.T, token string, i int) int {
	t.Helper()
	body := fmt.Sprintf(`{"path":"authors/id/A/AB/ABC/S-%d.tar.gz","size":%d,"sha256":"%064x","uploader":"ABC","time":"2024-01-02T03:04:05Z"}`, i, i, i)
	req, _ := http.NewRequest("POST", r.url+"/add", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestServeShutdownWithARefusingWitness runs the real binary with a
// policy whose one witness (our witness package on loopback) has another
// key for the log's origin. On SIGINT the server says what it waits for
// and its bound, and stops as soon as the witness refuses again (not
// after the minute of the shutdown bound), exit 1, naming the witness.
// On a second SIGINT it stops at once, exit 130; every entry
// acknowledged before is in the log after a restart.
func TestServeShutdownWithARefusingWitness(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "cpantlog-server")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	_, wrongVKey, err := note.GenerateKey(rand.Reader, tlog.DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	w := testlog.StartWitness(t, "w1.example", wrongVKey)
	policy := filepath.Join(t.TempDir(), "policy")
	if err := os.WriteFile(policy, []byte(fmt.Sprintf("witness w1 %s %s\nquorum w1\n", w.VKey, w.URL)), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("first interrupt", func(t *testing.T) {
		data := t.TempDir()
		s := startServe(t, bin, "--data", data, "--policy", policy, "--checkpoint-interval", "1s")
		token := readToken(t, data)
		if code := s.add(t, token, 0); code != 200 {
			t.Fatalf("add: %d", code)
		}
		s.waitFor(t, `msg="witness refuses the log's checkpoints" witness=w1`, 10*time.Second)
		start := time.Now()
		s.cmd.Process.Signal(syscall.SIGINT)
		s.waitFor(t, "shutting down: waiting for a checkpoint cosigned by the witness quorum covering the 1 entries no published checkpoint covers", 5*time.Second)
		s.waitFor(t, "(up to 1m0s); a second interrupt stops at once", time.Second)
		if code := s.exit(t, 20*time.Second); code != 1 {
			t.Errorf("exit %d after SIGINT with the quorum out of reach, want 1:\n%s", code, s.stderr.String())
		}
		if took := time.Since(start); took > 20*time.Second {
			t.Errorf("shutdown took %s", took)
		}
		if !strings.Contains(s.stderr.String(), "no checkpoint covering every acknowledged entry could be published (the witness quorum cannot be met: witness w1 refusing (403") {
			t.Errorf("the last word does not say why:\n%s", s.stderr.String())
		}
	})

	t.Run("second interrupt", func(t *testing.T) {
		data := t.TempDir()
		// A long interval: the first shutdown would wait for the next
		// publication; the second interrupt comes long before it.
		s := startServe(t, bin, "--data", data, "--policy", policy, "--checkpoint-interval", "10s")
		token := readToken(t, data)
		const n = 20
		for i := range n {
			if code := s.add(t, token, i); code != 200 {
				t.Fatalf("add %d: %d", i, code)
			}
		}
		s.cmd.Process.Signal(syscall.SIGINT)
		s.waitFor(t, "shutting down: waiting for", 5*time.Second)
		start := time.Now()
		s.cmd.Process.Signal(syscall.SIGINT)
		if code := s.exit(t, 5*time.Second); code != 130 {
			t.Errorf("exit %d after a second SIGINT, want 130:\n%s", code, s.stderr.String())
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("a second interrupt took %s to stop the server", took)
		}
		if !strings.Contains(s.stderr.String(), "interrupt again: stopping now, without waiting for a checkpoint; every acknowledged entry is stored") {
			t.Errorf("the second interrupt is not explained:\n%s", s.stderr.String())
		}
		// Restarted without witnesses: every acknowledged entry is there.
		s = startServe(t, bin, "--data", data, "--checkpoint-interval", "100ms")
		for i := range n {
			resp, err := http.Get(fmt.Sprintf("%s/lookup?path=authors/id/A/AB/ABC/S-%d.tar.gz", s.url, i))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("entry %d, acknowledged before the second interrupt: lookup %d after a restart", i, resp.StatusCode)
			}
		}
		// and published by the restarted log.
		deadline := time.Now().Add(10 * time.Second)
		for {
			cp, _ := os.ReadFile(filepath.Join(data, "tree", "checkpoint"))
			if strings.Contains(string(cp), fmt.Sprintf("\n%d\n", n)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no checkpoint of the %d entries after a restart:\n%s", n, cp)
			}
			time.Sleep(50 * time.Millisecond)
		}
		s.cmd.Process.Signal(syscall.SIGTERM)
		if code := s.exit(t, 30*time.Second); code != 0 {
			t.Errorf("exit %d after SIGTERM with no witness, want 0:\n%s", code, s.stderr.String())
		}
	})
}

func readToken(t *testing.T, data string) string {
	t.Helper()
	tokens, err := tlog.ReadTokenFile(filepath.Join(data, tlog.TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return tokens[0].Value
}

// TestServeReloadsTokensOnSIGHUP: the real binary re-reads its token file
// on SIGHUP (and stays up): the new token is taken, the retired one 401.
func TestServeReloadsTokensOnSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "cpantlog-server")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	data := t.TempDir()
	s := startServe(t, bin, "--data", data, "--checkpoint-interval", "100ms")
	old := readToken(t, data)
	if code := s.add(t, old, 0); code != 200 {
		t.Fatalf("add: %d", code)
	}
	const fresh = "pause-token-0123456789abcdef"
	file := filepath.Join(data, tlog.TokenFile)
	if err := os.WriteFile(file+".new", []byte("pause "+fresh+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(file+".new", file); err != nil {
		t.Fatal(err)
	}
	s.cmd.Process.Signal(syscall.SIGHUP)
	s.waitFor(t, `msg="ingest tokens reloaded" why=SIGHUP`, 5*time.Second)
	if code := s.add(t, fresh, 1); code != 200 {
		t.Errorf("the new token after SIGHUP: %d", code)
	}
	if code := s.add(t, old, 2); code != 401 {
		t.Errorf("the retired token after SIGHUP: %d, want 401", code)
	}
	// Info lines are buffered (internal/linebuf): the add's line follows
	// within the interval, not before the response.
	s.waitFor(t, "msg=add outcome=logged token=pause", 5*time.Second)
	s.cmd.Process.Signal(syscall.SIGTERM)
	if code := s.exit(t, 30*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
}
