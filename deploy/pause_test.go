package deploy

import (
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// notify runs deploy/pause/cpantlog-notify with Debian's perl.
func notify(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command("perl", append([]string{"pause/cpantlog-notify"}, args...)...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// TestPauseNotify: the script PAUSE runs logs an upload, an index version
// and a deletion on a real server, retries through 503s, says why the log
// refused something, and tells an unreachable log apart (exit 75).
func TestPauseNotify(t *testing.T) {
	if _, err := exec.LookPath("perl"); err != nil {
		t.Skip("perl not installed")
	}
	tl := testlog.Start(t, tlog.Config{DataDir: t.TempDir()})
	// A front that answers 503 to every other request, to exercise retries.
	target, _ := url.Parse(tl.URL)
	var calls atomic.Int32
	rp := httputil.NewSingleHostReverseProxy(target)
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1)%2 == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer flaky.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte(tl.Token()+"\n"), 0o600)
	tarball := "../testdata/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz"
	const path = "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz"
	index := filepath.Join(t.TempDir(), "02packages.details.txt.gz")
	os.WriteFile(index, []byte("an index version"), 0o644)
	common := []string{"--log", flaky.URL, "--token-file", tokenFile}

	code, out := notify(t, append(common, "upload", path, tarball, "--time", "2021-01-05T12:00:00Z")...)
	if code != 0 || !strings.Contains(out, "logged: "+path+" at index 0") || !strings.Contains(out, "attempt 1: 503") {
		t.Fatalf("upload: exit %d\n%s", code, out)
	}
	code, out = notify(t, append(common, "index", "modules/02packages.details.txt.gz", index)...)
	if code != 0 || !strings.Contains(out, "logged: modules/02packages.details.txt.gz") {
		t.Fatalf("index: exit %d\n%s", code, out)
	}
	code, out = notify(t, append(common, "delete", path, "--time", "2022-01-01T00:00:00Z")...)
	if code != 0 || !strings.Contains(out, "logged: "+path) {
		t.Fatalf("delete: exit %d\n%s", code, out)
	}
	want := sha256.Sum256(mustRead(t, tarball))
	recs, _ := tl.History(path)
	if len(recs) != 2 || recs[0].Entry.Kind != entry.Upload || recs[0].Entry.SHA256 != want || recs[0].Entry.Uploader != "ETHER" || recs[1].Entry.Kind != entry.Delete {
		t.Errorf("history of %s: %+v", path, recs)
	}
	if recs, _ := tl.History("modules/02packages.details.txt.gz"); len(recs) != 1 || recs[0].Entry.SHA256 != sha256.Sum256([]byte("an index version")) {
		t.Errorf("index history: %+v", recs)
	}

	// Refusals: another file at a logged path, a wrong token, bad usage.
	other := filepath.Join(t.TempDir(), "other.tar.gz")
	os.WriteFile(other, []byte("not the same file"), 0o644)
	code, out = notify(t, "--log", tl.URL, "--token-file", tokenFile, "upload", "authors/id/R/RJ/RJBS/Sub-Install-0.929.tar.gz", other)
	if code != 0 {
		t.Fatalf("second upload: exit %d %s", code, out)
	}
	code, out = notify(t, "--log", tl.URL, "--token-file", tokenFile, "upload", "authors/id/R/RJ/RJBS/Sub-Install-0.929.tar.gz", tarball)
	if code != 1 || !strings.Contains(out, "409") || !strings.Contains(out, "already logged") {
		t.Errorf("conflicting upload: exit %d\n%s", code, out)
	}
	badToken := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(badToken, []byte("nope"), 0o600)
	if code, out = notify(t, "--log", tl.URL, "--token-file", badToken, "delete", path, "--time", "2022-01-01T00:00:00Z"); code != 1 || !strings.Contains(out, "401") {
		t.Errorf("wrong token: exit %d\n%s", code, out)
	}
	if code, out = notify(t, "--log", tl.URL, "--token-file", tokenFile, "upload", path); code != 2 || !strings.Contains(out, "Usage") {
		t.Errorf("missing FILE: exit %d\n%s", code, out)
	}
	// Unreachable: every retry fails, exit 75.
	if code, out = notify(t, "--log", "http://"+freePort(t), "--token-file", tokenFile, "--retries", "1", "delete", path, "--time", "2022-01-01T00:00:00Z"); code != 75 || !strings.Contains(out, "could not be reached") {
		t.Errorf("unreachable log: exit %d\n%s", code, out)
	}
}

// TestPauseNotifyEdges: what a log's front or the network can do to the
// script: a redirect (HTTP::Tiny would turn the POST into a GET), a 200
// that is not the log's answer, an answer dripping a byte a second, an
// endless body; and what a rerun after a lost answer sends.
func TestPauseNotifyEdges(t *testing.T) {
	if _, err := exec.LookPath("perl"); err != nil {
		t.Skip("perl not installed")
	}
	tl := testlog.Start(t, tlog.Config{DataDir: t.TempDir()})
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte(tl.Token()+"\n"), 0o600)
	tarball := "../testdata/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz"
	const path = "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz"
	front := func(h http.HandlerFunc) string {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	redirect := front(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, tl.URL+"/lookup?path="+path, http.StatusSeeOther)
	})
	portal := front(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>Welcome</html>")) })
	drip := front(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		for range 60 {
			if _, err := w.Write([]byte(" ")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(time.Second)
		}
	})
	endless := front(func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("x", 1<<16))
		for range 1600 { // 100 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	run := func(log string, args ...string) (int, string, time.Duration) {
		start := time.Now()
		code, out := notify(t, append([]string{"--log", log, "--token-file", tokenFile, "--retries", "0", "--timeout", "3"}, args...)...)
		return code, out, time.Since(start)
	}
	upload := []string{"upload", path, tarball, "--time", "2021-01-05T12:00:00Z"}
	if code, out, _ := run(redirect, upload...); code != 2 || !strings.Contains(out, "redirect") || strings.Contains(out, "logged:") {
		t.Errorf("redirect: exit %d\n%s", code, out)
	}
	if code, out, _ := run(portal, upload...); code != 75 || !strings.Contains(out, "JSON") || strings.Contains(out, "logged:") {
		t.Errorf("a 200 that is not the log's answer: exit %d\n%s", code, out)
	}
	if code, out, took := run(drip, upload...); code != 75 || took > 20*time.Second {
		t.Errorf("an answer dripping a byte a second: exit %d after %s, want 75 within the 3 s deadline\n%s", code, took, out)
	}
	if code, out, _ := run(endless, upload...); code != 75 || !strings.Contains(out, "exceeds the maximum") {
		t.Errorf("an endless answer: exit %d\n%s", code, out)
	}

	// A rerun: the default time is the file's, so the same command sends
	// the same entry; another time for the same file is recognised too.
	mtime := time.Date(2021, 1, 5, 12, 0, 0, 0, time.UTC)
	local := filepath.Join(t.TempDir(), "Try-Tiny-0.31.tar.gz")
	os.WriteFile(local, mustRead(t, tarball), 0o644)
	os.Chtimes(local, mtime, mtime)
	for range 2 {
		if code, out, _ := run(tl.URL, "upload", path, local); code != 0 || !strings.Contains(out, "logged: "+path+" at index 0") {
			t.Errorf("upload with the file's time: exit %d\n%s", code, out)
		}
	}
	if recs, _ := tl.History(path); len(recs) != 1 || !recs[0].Entry.Time.Equal(mtime) {
		t.Errorf("history: %+v, want one entry at the file's mtime", recs)
	}
	if code, out, _ := run(tl.URL, "upload", path, local, "--time", "2021-01-06T00:00:00Z"); code != 0 || !strings.Contains(out, "already logged") {
		t.Errorf("the same file with another time: exit %d\n%s", code, out)
	}
	if code, out, _ := run(tl.URL, "delete", path); code != 2 || !strings.Contains(out, "--time") {
		t.Errorf("delete without --time: exit %d\n%s", code, out)
	}
	// A token file others can read is refused.
	open := filepath.Join(t.TempDir(), "token")
	os.WriteFile(open, []byte(tl.Token()), 0o644)
	if code, out := notify(t, "--log", tl.URL, "--token-file", open, "upload", path, local); code != 2 || !strings.Contains(out, "chmod 600") {
		t.Errorf("token file mode 0644: exit %d\n%s", code, out)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
