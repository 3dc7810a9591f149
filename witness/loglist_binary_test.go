package witness

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLogListBinary runs the real cpantlog-witness with --log-list and a
// --config of no log: it witnesses the list's log, takes a log added to the list on
// SIGHUP and keeps the one the list dropped; restarted with the list gone,
// and then with only a --config, it still witnesses both, from the state
// it had.
func TestLogListBinary(t *testing.T) {
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
	a := newFakeLog(t, 20)
	b := namedLog(t, "b.example/log", 20)
	c := namedLog(t, "c.example/log", 20)
	list := filepath.Join(t.TempDir(), "log-list")
	writeFile(t, list, "logs/v0\n"+listEntry(a.vkey, "", 86400, "a@example"))

	var stderr syncBuffer
	start := func(args ...string) (string, *exec.Cmd) {
		t.Helper()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		cmd := exec.Command(bin, append([]string{"serve", "--data", dir, "--listen", addr}, args...)...)
		cmd.Stdout, cmd.Stderr = io.Discard, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return "http://" + addr, cmd
	}
	// post retries until the answer is want or 10 s passed, and returns
	// the last answer.
	post := func(url string, body []byte, want int) (int, string) {
		t.Helper()
		code, text := 0, ""
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			resp, err := http.Post(url+"/add-checkpoint", "text/plain", bytes.NewReader(body))
			if err != nil {
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if code, text = resp.StatusCode, string(b); code == want {
				break
			}
		}
		return code, text
	}
	stop := func(cmd *exec.Cmd) {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}

	// As the shipped unit runs it: --config always, here with no log line.
	empty := filepath.Join(t.TempDir(), "witness.config")
	writeFile(t, empty, "# logs come from the list\n")
	url, cmd := start("--config", empty, "--log-list", list)
	if code, text := post(url, a.request(t, 0, 5), 200); code != 200 {
		t.Fatalf("the list's log: %d %s", code, text)
	}
	writeFile(t, list, "logs/v0\n"+listEntry(b.vkey, "", 24, "b@example"))
	cmd.Process.Signal(syscall.SIGHUP)
	if code, text := post(url, requestFor(t, b, "b.example/log", 0, 5), 200); code != 200 {
		t.Fatalf("a log added to the list, after SIGHUP: %d %s", code, text)
	}
	if code, text := post(url, a.request(t, 5, 8), 200); code != 200 {
		t.Fatalf("the log the list dropped: %d %s", code, text)
	}
	stop(cmd)

	// Restart with the list gone.
	os.Remove(list)
	url, cmd = start("--log-list", list)
	if code, text := post(url, a.request(t, 8, 10), 200); code != 200 {
		t.Fatalf("after a restart without the list: %d %s", code, text)
	}
	if code, text := post(url, requestFor(t, b, "b.example/log", 5, 6), 200); code != 200 {
		t.Fatalf("after a restart without the list: %d %s", code, text)
	}
	if code, text := post(url, a.request(t, 0, 11), 409); code != 409 || text != "10\n" {
		t.Errorf("from size 0 after the restart: %d %q, want 409 \"10\\n\"", code, text)
	}
	stop(cmd)
	if got := stderr.lines("level=WARN", "unchanged", "outcome=unreachable"); len(got) == 0 {
		t.Errorf("no WARN for the missing list:\n%s", strings.Join(stderr.lines(""), "\n"))
	}

	// Restart with a config file only: the learned logs are still there.
	config := filepath.Join(t.TempDir(), "config")
	writeFile(t, config, "log "+c.vkey+"\n")
	url, cmd = start("--config", config)
	for _, r := range []struct {
		name string
		body []byte
	}{{"a", a.request(t, 10, 12)}, {"b", requestFor(t, b, "b.example/log", 6, 7)}, {"c", requestFor(t, c, "c.example/log", 0, 3)}} {
		if code, text := post(url, r.body, 200); code != 200 {
			t.Errorf("log %s with --config only: %d %s", r.name, code, text)
		}
	}
	stop(cmd)

	out, err := exec.Command(bin, "serve", "--data", dir, "--config", empty).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "lists no log") {
		t.Errorf("serve with a config of no log and no --log-list: %v %s", err, out)
	}
	out, err = exec.Command(bin, "serve", "--data", dir).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "--config or --log-list is required") {
		t.Errorf("serve with neither --config nor --log-list: %v %s", err, out)
	}
}
