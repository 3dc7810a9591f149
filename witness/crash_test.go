package witness

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	flog "github.com/transparency-dev/formats/log"
)

// TestSIGKILLNeverGoesBack kills the real cpantlog-witness binary with
// SIGKILL in the middle of a stream of add-checkpoint requests, five
// times, and checks after each restart that its state is no older than the
// last cosignature it returned.
func TestSIGKILLNeverGoesBack(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a binary; skipped in -short mode")
	}
	bin := filepath.Join(t.TempDir(), "cpantlog-witness")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/cpantlog-witness").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	const maxSize = 20000
	l := newFakeLog(t, maxSize)
	dir := t.TempDir()
	if _, err := Keygen(dir, "w1.example"); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "config")
	os.WriteFile(config, []byte("log "+l.vkey+"\n"), 0o644)

	start := func() (string, *exec.Cmd) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		cmd := exec.Command(bin, "serve", "--data", dir, "--config", config, "--listen", addr, "--rate", "100000")
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for range 100 {
			if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
				resp.Body.Close()
				return "http://" + addr, cmd
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatal("witness did not start")
		return "", nil
	}
	latest := func(url string) uint64 {
		resp, err := http.Get(url + "/" + OriginID(origin) + "/checkpoint")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == 404 {
			return 0
		}
		b, _ := io.ReadAll(resp.Body)
		text, _, _ := bytes.Cut(b, []byte("\n\n"))
		var c flog.Checkpoint
		if _, err := c.Unmarshal(append(text, '\n')); err != nil {
			t.Fatalf("stored checkpoint: %v\n%s", err, b)
		}
		return c.Size
	}

	var acked uint64 // the largest size the witness returned a cosignature for
	r := rand.New(rand.NewPCG(7, 7))
	for round := range 5 {
		url, cmd := start()
		if got := latest(url); got < acked {
			t.Fatalf("round %d: after SIGKILL the witness holds size %d, but it had cosigned %d", round, got, acked)
		}
		cur := latest(url)
		done := make(chan struct{})
		steps := rand.New(rand.NewPCG(uint64(round), 1))
		go func() {
			defer close(done)
			client := &http.Client{Timeout: 5 * time.Second}
			for cur < maxSize {
				next := min(maxSize, cur+1+steps.Uint64N(5))
				resp, err := client.Post(url+"/add-checkpoint", "text/plain", bytes.NewReader(l.request(t, cur, next)))
				if err != nil {
					return // killed
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case 200:
					if !strings.HasPrefix(string(body), "\u2014 w1.example ") {
						t.Errorf("200 without a cosignature: %q", body)
						return
					}
					cur, acked = next, next
				default:
					t.Errorf("add %d→%d: %d %s", cur, next, resp.StatusCode, body)
					return
				}
			}
		}()
		time.Sleep(time.Duration(50+r.IntN(250)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		<-done
		if t.Failed() {
			return
		}
		t.Logf("round %d: killed after cosigning size %d", round, acked)
	}
	url, cmd := start()
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if got := latest(url); got < acked {
		t.Fatalf("final: holds %d, had cosigned %d", got, acked)
	}
	if acked == 0 {
		t.Fatal("no cosignature was ever returned")
	}
}

// TestSIGHUPReloadKeepsState: the real binary reloads its config on
// SIGHUP, starts serving a newly listed log, and keeps the state of the
// logs it already witnessed.
func TestSIGHUPReloadKeepsState(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "cpantlog-witness")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/cpantlog-witness").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	if _, err := Keygen(dir, "w1.example"); err != nil {
		t.Fatal(err)
	}
	l := newFakeLog(t, 10)
	other := newFakeLog(t, 10)
	config := filepath.Join(dir, "config")
	os.WriteFile(config, []byte("log "+l.vkey+"\n"), 0o644)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "serve", "--data", dir, "--config", config, "--listen", addr)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	post := func(body []byte) int {
		for range 100 {
			resp, err := http.Post("http://"+addr+"/add-checkpoint", "text/plain", bytes.NewReader(body))
			if err != nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		t.Fatal("witness not reachable")
		return 0
	}
	if c := post(l.request(t, 0, 5)); c != 200 {
		t.Fatalf("first log: %d", c)
	}
	if c := post(other.request(t, 0, 5)); c != 403 {
		t.Fatalf("second log before reload: %d, want 403 (same origin, unknown key)", c)
	}
	os.WriteFile(config, []byte("log "+l.vkey+"\nlog "+other.vkey+"\n"), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(5 * time.Second)
	for post(l.request(t, 5, 7)) != 200 {
		if time.Now().After(deadline) {
			t.Fatal("first log's state was lost across SIGHUP (old size 5 no longer accepted)")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The second key is now trusted for the same origin: its checkpoint of
	// the same size with another root is a fork of what was cosigned.
	forked := (&Request{OldSize: 7, Checkpoint: other.checkpointWithRoot(t, 7, hashes(1)[0])}).Marshal()
	if c := post(forked); c != 422 {
		t.Errorf("second key after reload: %d, want 422 (conflicts with the state kept; C2SP tlog-witness)", c)
	}
}
