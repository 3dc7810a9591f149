package log_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
)

func httpDo(t testing.TB, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The key rotation of deploy/README.md, whole: a new log under a new
// origin takes over (back-filled with what the old one logged, plus what
// comes next); the old log is frozen, serving reads and proofs as they
// were and refusing adds with the new log's address; a proof the old log
// gave still verifies with 'cpantlog verify' under a policy carrying both
// logs; a monitor per log follows each, and the old log's monitor finds
// nothing on its round after the freeze.
func TestKeyRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cpantlog")
	}
	bin := filepath.Join(t.TempDir(), "cpantlog")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/cpantlog").CombinedOutput(); err != nil {
		t.Fatalf("build cpantlog: %v\n%s", err, out)
	}
	const oldOrigin, newOrigin = "cpan-tlog.example.org/log", "cpan-tlog.example.org/log2"
	dirOld := filepath.Join(t.TempDir(), "old")
	a := testlog.Start(t, tlog.Config{DataDir: dirOld, Origin: oldOrigin, Logger: quiet()})
	tryTiny := "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz"
	logMirror(t, a, tryTiny)
	waitProofs(t, dirOld, 3)
	oldVKey, oldURL := a.VerifierKey(), a.URL
	oldState := t.TempDir()
	if f := audit(t, oldVKey, oldURL, oldState); len(f) != 0 {
		t.Fatalf("the old log's monitor found %+v", f)
	}
	_, cpBefore := httpDo(t, "GET", oldURL+"/checkpoint", "", "")

	// 1. The new log, under a new origin, back-filled and going on.
	dirNew := filepath.Join(t.TempDir(), "new")
	if _, err := tlog.Keygen(dirNew, newOrigin); err != nil {
		t.Fatal(err)
	}
	b := testlog.Start(t, tlog.Config{DataDir: dirNew, Logger: quiet()})
	logMirror(t, b, tryTiny, "authors/id/R/RJ/RJBS/Test-Fatal-0.017.tar.gz")

	// 2. The old log frozen: stopped, and served read-only for good.
	a.Stop()
	f := testlog.Start(t, tlog.Config{DataDir: dirOld, Frozen: true, Successor: b.URL, Logger: quiet()})
	if f.VerifierKey() != oldVKey {
		t.Fatalf("the frozen log has key %s, want %s", f.VerifierKey(), oldVKey)
	}
	if code, cp := httpDo(t, "GET", f.URL+"/checkpoint", "", ""); code != 200 || cp != cpBefore {
		t.Errorf("the frozen log's checkpoint: %d\n%s\nwant\n%s", code, cp, cpBefore)
	}
	token, _ := os.ReadFile(filepath.Join(dirOld, tlog.TokenFile))
	add := `{"path":"authors/id/R/RJ/RJBS/Test-Fatal-0.017.tar.gz","size":1,"sha256":"` + strings.Repeat("a", 64) + `","uploader":"RJBS","time":"2024-01-02T03:04:05Z"}`
	if code, body := httpDo(t, "POST", f.URL+"/add", strings.TrimSpace(string(token)), add); code != 405 || !strings.Contains(body, "this log is frozen") || !strings.Contains(body, b.URL) {
		t.Errorf("an add to the frozen log: %d %s", code, body)
	}
	if code, body := httpDo(t, "PUT", f.URL+"/index-files/"+strings.Repeat("a", 64), strings.TrimSpace(string(token)), "x"); code != 405 || !strings.Contains(body, "frozen") {
		t.Errorf("an index file PUT to the frozen log: %d %s", code, body)
	}
	if code, body := httpDo(t, "GET", f.URL+"/tlog/proofs/"+tryTiny+".tlog-proof", "", ""); code != 200 || !strings.Contains(body, "c2sp.org/tlog-proof@v1") {
		t.Errorf("the frozen log's proof tree: %d %s", code, body)
	}

	// 3. Clients' policies carry both logs; an old proof still verifies.
	policy := filepath.Join(t.TempDir(), "policy")
	os.WriteFile(policy, fmt.Appendf(nil, "log %s %s\nlog %s %s\nquorum none\n", oldVKey, f.URL, b.VerifierKey(), b.URL), 0o644)
	file := filepath.Join(t.TempDir(), "Try-Tiny-0.31.tar.gz")
	content, _ := os.ReadFile(filepath.Join("../testdata", tryTiny))
	os.WriteFile(file, content, 0o644)
	oldProof := filepath.Join(dirOld, tlog.ProofsDir, "tlog", "proofs", filepath.FromSlash(tryTiny)+".tlog-proof")
	cpantlog := func(args ...string) (int, string) {
		cmd := exec.Command(bin, append([]string{"verify", "--policy", policy, "--state", t.TempDir(), "--cache", ""}, args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return cmd.ProcessState.ExitCode(), fmt.Sprint(out.String(), err)
	}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"the old log's proof, offline", []string{"--origin", oldOrigin, "--proof", oldProof, "--path", tryTiny, file}},
		{"the old log's proof, offline, no --origin", []string{"--proof", oldProof, "--path", tryTiny, file}},
		{"online, no --origin", []string{"--path", tryTiny, file}},
		{"the frozen log, online", []string{"--origin", oldOrigin, "--path", tryTiny, file}},
		{"the new log, online", []string{"--origin", newOrigin, "--path", tryTiny, file}},
	} {
		if code, out := cpantlog(c.args...); code != 0 || !strings.Contains(out, "verified") {
			t.Errorf("cpantlog verify, %s: exit %d\n%s", c.name, code, out)
		}
	}
	// A policy that dropped the old log refuses its proofs: the old line
	// stays in clients' policies for as long as old proofs are in use.
	os.WriteFile(policy, fmt.Appendf(nil, "log %s %s\nquorum none\n", b.VerifierKey(), b.URL), 0o644)
	if code, out := cpantlog("--proof", oldProof, "--path", tryTiny, file); code != 1 {
		t.Errorf("the old log's proof under a policy naming only the new log: exit %d, want 1 (refused)\n%s", code, out)
	}

	// 4. A monitor per log: the old log's next round after the freeze
	// finds nothing; the new log's monitor audits it from the start.
	if f := audit(t, oldVKey, f.URL, oldState); len(f) != 0 {
		t.Errorf("the old log's monitor after the freeze found %+v", f)
	}
	if f := audit(t, b.VerifierKey(), b.URL, t.TempDir()); len(f) != 0 {
		t.Errorf("the new log's monitor found %+v", f)
	}
}
