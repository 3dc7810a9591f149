package log

import (
	"bufio"
	"fmt"
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

// TestFloodOfIdleConnections opens more idle keep-alive connections than
// the real cpantlog-server has file descriptors (it runs under a hard
// limit of 256): the server refuses the excess cleanly with 503, keeps
// answering or refusing new clients, stays up, and takes an add as soon
// as the flood ends. Before the connection cap, the flood used up the
// descriptors and the next add panicked Tessera's POSIX driver.
func TestFloodOfIdleConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("floods a real server; skipped in -short mode")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "cpantlog-server")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/cpantlog-server").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	wrapper := filepath.Join(dir, "limited")
	os.WriteFile(wrapper, []byte("#!/bin/sh\nulimit -n 256 || exit 1\nexec "+bin+" \"$@\"\n"), 0o755)
	data := t.TempDir()
	base, cmd := startBinary(t, wrapper, data)
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	token, _ := os.ReadFile(filepath.Join(data, TokenFile))
	add := func(name string) (int, error) {
		body := fmt.Sprintf(`{"path":"authors/id/F/FL/FLOOD/%s","size":1,"sha256":"%064x","uploader":"FLOOD","time":"2024-01-01T00:00:00Z"}`, name, len(name))
		req, _ := http.NewRequest("POST", base+"/add", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := add("before.tar.gz"); err != nil || code != 200 {
		t.Fatalf("add before the flood: %d %v", code, err)
	}

	// The flood: 400 clients, each makes one request and stays idle.
	addr := strings.TrimPrefix(base, "http://")
	var conns []net.Conn
	statuses := map[string]int{}
	for range 400 {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			statuses["dial error"]++
			continue
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			statuses["read error"]++
			continue
		}
		statuses[strings.TrimSpace(line)]++
	}
	t.Logf("flood answers: %v", statuses)
	if statuses["HTTP/1.1 200 OK"] == 0 || statuses["HTTP/1.1 503 Service Unavailable"] == 0 {
		t.Errorf("want some 200s and, past the cap, clean 503s: %v", statuses)
	}
	// A new client meanwhile gets an answer, not a hang or a reset.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get(base + "/healthz")
	if err != nil {
		t.Errorf("healthz during the flood: %v", err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != 200 && resp.StatusCode != 503 {
			t.Errorf("healthz during the flood: %d", resp.StatusCode)
		}
	}
	if code, err := add("during.tar.gz"); err != nil || (code != 200 && code != 503) {
		t.Errorf("add during the flood: %d %v (want 200 or a clean 503)", code, err)
	}
	for _, c := range conns {
		c.Close()
	}
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the server died during the flood: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, err := add("after.tar.gz")
		if err == nil && code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("add after the flood: %d %v", code, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
