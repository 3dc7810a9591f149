package main

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	"github.com/CPAN-Security/cpan-tlog/log/entry"

	tlog "github.com/CPAN-Security/cpan-tlog/log"
)

// serveWithLastModified serves root like a mirror whose every answer says
// Last-Modified: lm, and which answers If-Modified-Since against it.
func serveWithLastModified(t *testing.T, root string, lm time.Time) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(r.URL.Path, "/"))))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "", lm, f)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func get(t *testing.T, url string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestProxyNeverAnswers304FromUnverifiedTimes: the proxy's validators for
// an index file are its logged time and sha256, not the mirror's
// Last-Modified: a client holding an old 02packages gets the newest
// verified one, whatever times the mirror or the client's copy carry.
func TestProxyNeverAnswers304FromUnverifiedTimes(t *testing.T) {
	tl, smp, policy := loggedSamples(t)
	genuine := packagesIndex(packages)
	loggedAt := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	tl.add(t, packagesPath, genuine, loggedAt.Format(entry.TimeFormat))
	root, _ := buildMirror(t, smp)
	purl, _ := startProxy(t, policy, serveWithLastModified(t, root, time.Unix(0, 0)))
	sum := sha256.Sum256(genuine)
	for _, ims := range []time.Time{time.Now().Add(-30 * 24 * time.Hour), time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)} {
		resp, body := get(t, purl+"/"+packagesPath, map[string]string{"If-Modified-Since": ims.UTC().Format(http.TimeFormat)})
		if resp.StatusCode != 200 || sha256.Sum256(body) != sum {
			t.Errorf("If-Modified-Since %s: %d with %d bytes, want 200 with the verified 02packages", ims.Format(time.RFC3339), resp.StatusCode, len(body))
		}
		if lm := resp.Header.Get("Last-Modified"); lm != loggedAt.Format(http.TimeFormat) {
			t.Errorf("Last-Modified %q, want the logged time %q", lm, loggedAt.Format(http.TimeFormat))
		}
		if et := resp.Header.Get("ETag"); et != `"`+hex.EncodeToString(sum[:])+`"` {
			t.Errorf("ETag %q, want the sha256", et)
		}
	}
	// The exact bytes, named by their sha256, may be answered with 304.
	resp, _ := get(t, purl+"/"+packagesPath, map[string]string{"If-None-Match": `"` + hex.EncodeToString(sum[:]) + `"`})
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the verified sha256: %d, want 304", resp.StatusCode)
	}
	resp, _ = get(t, purl+"/"+packagesPath, map[string]string{"If-None-Match": `"` + strings.Repeat("0", 64) + `"`})
	if resp.StatusCode != 200 {
		t.Errorf("If-None-Match with another sha256: %d, want 200", resp.StatusCode)
	}
}

// TestReplayedFutureIndexVersionGoesStale: a log that once accepted an
// index version with a 2099 time (its clock was wrong) must not keep that
// version fresh for ever: freshness follows the order of entries, so once
// its successor was logged more than --max-index-lag ago a replay of it is
// refused. With a mirror proof (no log) a future time is refused outright.
func TestReplayedFutureIndexVersionGoesStale(t *testing.T) {
	smp := samples(t)
	dir := t.TempDir()
	wrongClock := startLogWith(t, tlog.Config{DataDir: dir, Now: func() time.Time { return time.Date(2099, 1, 2, 0, 0, 0, 0, time.UTC) }})
	replayed := packagesIndex(packages[:4])
	wrongClock.add(t, packagesPath, replayed, "2099-01-01T00:00:00Z")
	wrongClock.stop()

	tl := startLog(t, dir)
	for _, s := range smp {
		tl.add(t, s.path, s.content, "2024-01-02T03:04:05Z")
	}
	policy := writePolicy(t, "log "+tl.log.VerifierKey()+" "+tl.url+"\nquorum none\n")
	root, mirrorURL := buildMirror(t, smp)
	os.WriteFile(filepath.Join(root, packagesPath), replayed, 0o644)

	// Superseded an hour ago: within the lag, still served.
	tl.add(t, packagesPath, packagesIndex(packages[:5]), time.Now().Add(-time.Hour).UTC().Format(entry.TimeFormat))
	purl, plogs := startProxy(t, policy, mirrorURL)
	if resp, _ := get(t, purl+"/"+packagesPath, nil); resp.StatusCode != 200 {
		t.Errorf("a version superseded an hour ago: %d, want 200 (within --max-index-lag)\n%s", resp.StatusCode, plogs)
	}
	// A newer version logged with a time two days ago does not make the
	// 2099 version "newer": the order of the log does.
	dir2 := t.TempDir()
	tl2 := startLogWith(t, tlog.Config{DataDir: dir2, Now: func() time.Time { return time.Date(2099, 1, 2, 0, 0, 0, 0, time.UTC) }})
	tl2.add(t, packagesPath, replayed, "2099-01-01T00:00:00Z")
	tl2.stop()
	tl2 = startLog(t, dir2)
	tl2.add(t, packagesPath, packagesIndex(packages), time.Now().Add(-48*time.Hour).UTC().Format(entry.TimeFormat))
	for _, s := range smp {
		tl2.add(t, s.path, s.content, "2024-01-02T03:04:05Z")
	}
	policy2 := writePolicy(t, "log "+tl2.log.VerifierKey()+" "+tl2.url+"\nquorum none\n")
	purl, plogs = startProxy(t, policy2, mirrorURL)
	if resp, body := get(t, purl+"/"+packagesPath, nil); resp.StatusCode != 403 || !strings.Contains(string(body), "is stale") {
		t.Errorf("the 2099 version replayed after its successor was logged two days ago: %d %s\n%s", resp.StatusCode, body, plogs)
	}

	// Offline, from the mirror's proof: a future time is never fresh, and
	// with the log down that is "could not check", with the reason.
	proofOf2099 := fetch(t, tl2.url+"/proof?index=0")
	dst := filepath.Join(root, cpan.ProofPath(packagesPath, sha256.Sum256(replayed)))
	os.MkdirAll(filepath.Dir(dst), 0o755)
	os.WriteFile(dst, proofOf2099, 0o644)
	tl2.stop()
	purl, plogs = startProxy(t, policy2, mirrorURL)
	if resp, body := get(t, purl+"/"+packagesPath, nil); resp.StatusCode != 503 || !strings.Contains(string(body), "in the future") {
		t.Errorf("the 2099 version with its mirror proof, log down: %d %s\n%s", resp.StatusCode, body, plogs)
	}
}

// TestReplaceableFileReplayWithMirrorProof: PAUSE lets a .readme be
// replaced, so a valid mirror proof of an older version is how a replay
// looks. It is not enough: the log is asked (and refuses the old
// version), and with the log down the answer is "could not check".
func TestReplaceableFileReplayWithMirrorProof(t *testing.T) {
	smp := samples(t)
	tl := startLog(t, t.TempDir())
	const meta = "authors/id/E/ET/ETHER/Try-Tiny-0.31.readme"
	oldMeta, newMeta := []byte(`{"version":"old"}`), []byte(`{"version":"new"}`)
	tl.add(t, meta, oldMeta, "2024-01-02T03:04:05Z")
	tl.add(t, meta, newMeta, "2024-02-02T03:04:05Z")
	policy := writePolicy(t, "log "+tl.log.VerifierKey()+" "+tl.url+"\nquorum none\n")
	root, mirrorURL := buildMirror(t, smp)
	os.WriteFile(filepath.Join(root, meta), oldMeta, 0o644)
	dst := filepath.Join(root, cpan.ProofPath(meta, sha256.Sum256(oldMeta)))
	os.MkdirAll(filepath.Dir(dst), 0o755)
	os.WriteFile(dst, fetch(t, tl.url+"/proof?index=0"), 0o644)

	purl, plogs := startProxy(t, policy, mirrorURL)
	if resp, body := get(t, purl+"/"+meta, nil); resp.StatusCode != 403 || !strings.Contains(string(body), "does not match the log") {
		t.Errorf("an older .readme with its valid mirror proof: %d %s, want 403\n%s", resp.StatusCode, body, plogs)
	}
	os.WriteFile(filepath.Join(root, meta), newMeta, 0o644)
	if resp, _ := get(t, purl+"/"+meta, nil); resp.StatusCode != 200 {
		t.Errorf("the newest .readme: %d, want 200\n%s", resp.StatusCode, plogs)
	}
	tl.stop()
	os.WriteFile(filepath.Join(root, meta), oldMeta, 0o644)
	purl, plogs = startProxy(t, policy, mirrorURL)
	if resp, body := get(t, purl+"/"+meta, nil); resp.StatusCode != 503 {
		t.Errorf("an older .readme with its mirror proof, log down: %d %s, want 503 (could not check)\n%s", resp.StatusCode, body, plogs)
	}
}

// TestProxyFromLocalTree: --upstream may be a local CPAN tree; it is
// verified like any mirror (deny by default, tampered files refused,
// nothing outside the tree reachable).
func TestProxyFromLocalTree(t *testing.T) {
	tl, smp, policy := loggedSamples(t)
	tl.add(t, packagesPath, packagesIndex(packages), time.Now().UTC().Format(entry.TimeFormat))
	root, _ := buildMirror(t, smp)
	bad := filepath.Join(root, smp[0].path)
	b, _ := os.ReadFile(bad)
	b[len(b)/2] ^= 1
	os.WriteFile(bad, b, 0o644)
	purl, plogs := startProxy(t, policy, root)
	for _, s := range smp[1:] {
		if resp, body := get(t, purl+"/"+s.path, nil); resp.StatusCode != 200 || sha256.Sum256(body) != sha256.Sum256(s.content) {
			t.Errorf("%s from the local tree: %d\n%s", s.path, resp.StatusCode, plogs)
		}
	}
	if resp, _ := get(t, purl+"/"+packagesPath, nil); resp.StatusCode != 200 {
		t.Errorf("02packages from the local tree: %d\n%s", resp.StatusCode, plogs)
	}
	if resp, _ := get(t, purl+"/"+smp[0].path, nil); resp.StatusCode != 403 {
		t.Errorf("a tampered file in the local tree: %d, want 403", resp.StatusCode)
	}
	if resp, _ := get(t, purl+"/authors/id/E/ET/ETHER/Nope-1.0.tar.gz", nil); resp.StatusCode != 404 {
		t.Errorf("a file not in the tree: %d, want 404", resp.StatusCode)
	}
	if resp, _ := get(t, purl+"/authors/id/E/ET/ETHER/../../../../../etc/passwd", nil); resp.StatusCode != 403 && resp.StatusCode != 404 && resp.StatusCode != 400 {
		t.Errorf("a path out of the tree: %d", resp.StatusCode)
	}
}
