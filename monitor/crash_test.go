package monitor

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestKilledMidAuditReportsEachFindingOnce kills the real cpantlog-monitor
// with SIGKILL in the middle of its first audit, several times, then lets
// it finish: every finding of the log is reported, each exactly once
// across all the runs; with paths checked as entries come, and in bulk at
// the end of the audit (--bulk-audit), where a rewrite's first upload and
// the rewrite itself may be audited by different runs.
func TestKilledMidAuditReportsEachFindingOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a real monitor")
	}
	bin := filepath.Join(t.TempDir(), "cpantlog-monitor")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/cpantlog-monitor").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, bulk := range []string{"0", "1000"} {
		t.Run("bulk-audit="+bulk, func(t *testing.T) { killMidAudit(t, bin, bulk) })
	}
}

func killMidAudit(t *testing.T, bin, bulkAudit string) {
	const n = 60_000
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	leaves := make([][]byte, n)
	want := map[string]bool{}
	for i := range leaves {
		k, content := i, fmt.Sprint(i)
		if i%1000 == 500 {
			// Rewrites the path of 400 entries before, with another uploader
			// than the one watched.
			k, content = i-400, "rewritten"
			want[fmt.Sprintf("%s:%d", KindPathRewritten, i)] = true
		}
		id := fmt.Sprintf("SYNTH%d", k%1000)
		leaves[i] = mkUpload(t, fmt.Sprintf("authors/id/S/SY/%s/Synthetic-Dist-%d-1.0.tar.gz", id, k), id, content, t0.Add(time.Duration(i)*time.Second), nil)
		if i%1000 == 7 {
			want[fmt.Sprintf("%s:%d", KindWatched, i)] = true
		}
	}
	logURL, _, vkey, _ := craftedLog(t, leaves, nil, "")
	// A slow log (3 ms a request, about half a second for the whole audit):
	// the monitor is fast enough to finish before the kills otherwise.
	upstream, _ := url.Parse(logURL)
	rp := httputil.NewSingleHostReverseProxy(upstream)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(3 * time.Millisecond)
		rp.ServeHTTP(w, r)
	}))
	defer slow.Close()
	dir := t.TempDir()
	policy, watch, state := filepath.Join(dir, "policy"), filepath.Join(dir, "watch"), filepath.Join(dir, "state")
	os.WriteFile(policy, []byte(fmt.Sprintf("log %s %s\nquorum none\n", vkey, slow.URL)), 0o644)
	os.WriteFile(watch, []byte("author SYNTH7\n"), 0o644)

	seen := map[string]int{}
	run := func(kill time.Duration) (finished bool) {
		cmd := exec.Command(bin, "--once", "--json", "--policy", policy, "--state", state, "--watch", watch, "--listen", "", "--no-witness-peers", "--bulk-audit", bulkAudit)
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = nil
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				var f Finding
				if json.Unmarshal(sc.Bytes(), &f) == nil {
					seen[f.ID]++
				}
			}
			close(done)
		}()
		timer := time.AfterFunc(kill, func() { cmd.Process.Signal(syscall.SIGKILL) })
		// Every line the monitor wrote is read before Wait, which closes
		// the pipe: on a loaded machine the reader lags, and Wait first
		// lost lines still in the pipe (a finding "reported 0 times").
		<-done
		err := cmd.Wait()
		timer.Stop()
		// 1 findings, 3 security findings (path-rewritten is one): the
		// round finished; a killed run has no exit code.
		code := cmd.ProcessState.ExitCode()
		return err == nil || code == 1 || code == 3
	}
	kills := 0
	for _, after := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond} {
		if !run(after) {
			kills++
		}
	}
	if !run(5 * time.Minute) {
		t.Fatal("the last run did not finish")
	}
	if kills == 0 {
		t.Error("no run was killed mid-audit: the test proved nothing")
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("finding %s reported %d times, want once", id, seen[id])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("%d distinct findings reported, want %d", len(seen), len(want))
	}
	t.Logf("%d runs killed mid-audit; %d findings, each reported once", kills, len(want))
}
