package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/monitor"
)

func startLog(t *testing.T, dir string) (*tlog.Log, string) {
	t.Helper()
	l := testlog.Start(t, tlog.Config{DataDir: dir})
	return l.Log, l.URL
}

func add(t *testing.T, l *tlog.Log, url, path, content string) {
	t.Helper()
	(&testlog.Log{Log: l, URL: url}).Add(t, path, []byte(content), "2024-01-02T03:04:05Z", true)
}

func cli(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestMonitorCommand(t *testing.T) {
	dirA := t.TempDir()
	l, url := startLog(t, dirA)
	add(t, l, url, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", "try")
	policy := filepath.Join(t.TempDir(), "policy")
	os.WriteFile(policy, []byte(fmt.Sprintf("log %s %s\nquorum none\n", l.VerifierKey(), url)), 0o644)
	watch := filepath.Join(t.TempDir(), "watch")
	os.WriteFile(watch, []byte("author RJBS\n"), 0o644)
	state := t.TempDir()
	common := []string{"--policy", policy, "--state", state, "--watch", watch, "--once"}

	code, out, errOut := cli(common...)
	if code != 0 || out != "" || !strings.Contains(errOut, "audited 1 entries of localhost/cpan-tlog (checkpoint size 1): no findings") {
		t.Fatalf("clean log: exit %d, %q %q (want one summary line on stderr)", code, out, errOut)
	}
	// Without --policy it reads $CPANTLOG_POLICY, as every cpantlog tool.
	t.Setenv("CPANTLOG_POLICY", policy)
	if code, _, errOut := cli("--state", t.TempDir(), "--once"); code != 0 || !strings.Contains(errOut, "no findings") {
		t.Errorf("the policy from $CPANTLOG_POLICY: exit %d %q", code, errOut)
	}
	t.Setenv("CPANTLOG_POLICY", "")

	var mu sync.Mutex
	var posted []monitor.Finding
	hookSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var f monitor.Finding
		json.NewDecoder(r.Body).Decode(&f)
		mu.Lock()
		posted = append(posted, f)
		mu.Unlock()
	}))
	defer hookSrv.Close()
	hookOut := filepath.Join(t.TempDir(), "hook.out")
	add(t, l, url, "authors/id/R/RJ/RJBS/Test-Fatal-0.017.tar.gz", "fatal")
	code, out, errOut = cli(append(common, "--json", "--hook", "echo \"$CPANTLOG_FINDING_KIND $CPANTLOG_FINDING_PATH $CPANTLOG_FINDING_SECURITY\" >> "+hookOut, "--webhook", hookSrv.URL)...)
	if code != 1 {
		t.Fatalf("watched upload: exit %d, want 1\n%s%s", code, out, errOut)
	}
	var f monitor.Finding
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &f); err != nil || f.Kind != monitor.KindWatched || f.Path != "authors/id/R/RJ/RJBS/Test-Fatal-0.017.tar.gz" || f.Seen.Year() < 2025 {
		t.Errorf("--json output %q: %v", out, err)
	}
	if b, _ := os.ReadFile(hookOut); string(b) != "watched authors/id/R/RJ/RJBS/Test-Fatal-0.017.tar.gz 0\n" {
		t.Errorf("hook saw %q", b)
	}
	mu.Lock()
	if len(posted) != 1 || posted[0].ID != f.ID {
		t.Errorf("webhook got %+v", posted)
	}
	mu.Unlock()
	if code, out, _ := cli(common...); code != 0 || out != "" {
		t.Errorf("second run re-alerted: exit %d %q", code, out)
	}

	// A fork of the log: exit 3 and the text says SECURITY.
	dirB := t.TempDir()
	for _, name := range []string{tlog.KeyFile, tlog.VKeyFile} {
		b, _ := os.ReadFile(filepath.Join(dirA, name))
		os.WriteFile(filepath.Join(dirB, name), b, 0o600)
	}
	lb, urlB := startLog(t, dirB)
	add(t, lb, urlB, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", "other")
	add(t, lb, urlB, "authors/id/E/ET/ETHER/Other-1.tar.gz", "x")
	code, out, _ = cli(append(common, "--log", urlB)...)
	if code != 3 || !strings.Contains(out, "SECURITY checkpoint-fork") {
		t.Errorf("fork: exit %d %q", code, out)
	}

	if code, _, errOut := cli("--policy", filepath.Join(t.TempDir(), "nope"), "--once"); code != 2 || !strings.Contains(errOut, "--policy") {
		t.Errorf("missing policy: exit %d %q", code, errOut)
	}
	if code, _, _ := cli("audit-mirror", "--policy", policy, "--state", t.TempDir()); code != 2 {
		t.Errorf("audit-mirror without --mirror: exit %d", code)
	}
}
