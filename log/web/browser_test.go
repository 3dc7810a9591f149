package web

import (
	"context"
	"crypto/rand"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
)

// chromium runs headless Chromium (Debian's package) on url, letting the
// page's scripts run, and returns the DOM; with shot it also saves a
// screenshot there.
func chromium(t *testing.T, url, shot string) string {
	t.Helper()
	return chromiumAt(t, url, shot, 1280, 900)
}

// chromiumAt is chromium with a window of width × height CSS pixels.
func chromiumAt(t *testing.T, url, shot string, width, height int) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium missing in CI: .ci/run installs Debian's chromium")
		}
		t.Skip("chromium not installed (Debian: chromium); .ci/run installs it")
	}
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=15000", fmt.Sprintf("--window-size=%d,%d", width, height), "--hide-scrollbars"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append(args, "--dump-dom", url)...).Output()
	if err != nil {
		t.Fatalf("chromium %s: %v", url, err)
	}
	if shot != "" {
		exec.CommandContext(ctx, bin, append(args, "--screenshot="+shot, url)...).Run()
	}
	return string(out)
}

// artifacts is where screenshots go: $CPANTLOG_ARTIFACTS, or a temp dir.
func artifacts(t testing.TB) string {
	if d := os.Getenv("CPANTLOG_ARTIFACTS"); d != "" {
		os.MkdirAll(d, 0o755)
		return d
	}
	return t.TempDir()
}

// TestBrowserVerifies drives a real headless browser: search for
// Try-Tiny, open its entry and see the browser verify the checkpoint
// signature and the inclusion proof with WebCrypto; then tamper with a
// hash tile on disk and see the same page say what failed.
func TestBrowserVerifies(t *testing.T) {
	tl, srv := explorer(t)
	out := artifacts(t)

	dom := chromium(t, srv.URL+"/search?q=Try-Tiny", filepath.Join(out, "dist-Try-Tiny.png"))
	m := regexp.MustCompile(`href="/entry/(\d+)"`).FindStringSubmatch(dom)
	if !strings.Contains(dom, "Distribution Try-Tiny") || m == nil {
		t.Fatalf("search for Try-Tiny did not land on its distribution page:\n%.2000s", dom)
	}
	entryURL := srv.URL + "/entry/" + m[1]
	dom = chromium(t, entryURL, filepath.Join(out, "entry-verified.png"))
	if !strings.Contains(dom, `class="ok"`) || !strings.Contains(dom, "Verified in your browser") {
		t.Fatalf("entry page did not verify in the browser:\n%.3000s", dom)
	}

	// A tampered hash tile: the proofs the log serves no longer lead to its
	// signed root, and the browser notices.
	tile := filepath.Join(tl.Dir, tlog.TreeDir, "tile", "0", "000.p", "9")
	b, err := os.ReadFile(tile)
	if err != nil {
		t.Fatal(err)
	}
	rand.Read(b)
	if err := os.WriteFile(tile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	dom = chromium(t, entryURL, filepath.Join(out, "entry-tampered.png"))
	if !strings.Contains(dom, `class="bad"`) || !strings.Contains(dom, "FAILED") || !strings.Contains(dom, "does not lead to the checkpoint") {
		t.Errorf("entry page with a tampered tile:\n%.3000s", dom)
	}
	t.Logf("screenshots in %s", out)
}

// TestExplorerFitsAPhoneAndADesktop: every kind of page fits a 390 px
// phone and a 1280 px desktop without scrolling sideways (the page says so
// itself, measured in the browser), with screenshots of each
// ($CPANTLOG_ARTIFACTS keeps them).
func TestExplorerFitsAPhoneAndADesktop(t *testing.T) {
	tl, srv := explorer(t)
	recs, _ := tl.Index().ByPath("authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz")
	out := artifacts(t)
	pages := map[string]string{
		"home": "/", "dist": "/dist/Try-Tiny", "author": "/author/RJBS", "entry": fmt.Sprintf("/entry/%d", recs[0].Index),
		"search-prefix": "/search?q=Te", "index-files": "/index-files",
	}
	for name, p := range pages {
		for _, size := range [][2]int{{390, 844}, {1280, 900}} {
			shot := filepath.Join(out, fmt.Sprintf("%s-%d.png", name, size[0]))
			dom := chromiumAt(t, srv.URL+p, shot, size[0], size[1])
			if !strings.Contains(dom, `data-fits="true"`) {
				t.Errorf("%s at %d px does not fit its window (data-fits is not true)", name, size[0])
			}
			f, err := os.Open(shot)
			if err != nil {
				t.Errorf("no screenshot of %s at %d px: %v", name, size[0], err)
				continue
			}
			cfg, err := png.DecodeConfig(f)
			f.Close()
			if err != nil || cfg.Width != size[0] {
				t.Errorf("screenshot of %s at %d px: %v, width %d", name, size[0], err, cfg.Width)
			}
		}
	}
}

// TestBrowserChecksTheWitnessQuorum: with the log's witness policy, the
// entry page's script checks the witness's cosignature too and says so;
// under a policy whose quorum the checkpoint does not meet, it fails.
func TestBrowserChecksTheWitnessQuorum(t *testing.T) {
	logDir := t.TempDir()
	logVKey, err := tlog.Keygen(logDir, tlog.DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	w1 := testlog.StartWitness(t, "w1.example", logVKey)
	w2 := testlog.StartWitness(t, "w2.example", logVKey)
	policy := fmt.Sprintf("log %s\nwitness w1 %s %s\ngroup g any w1\nquorum g\n", logVKey, w1.VKey, w1.URL)
	tl := testlog.Start(t, tlog.Config{DataDir: logDir, WitnessPolicy: []byte(policy)})
	b, _ := os.ReadFile("../../testdata/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz")
	tl.Add(t, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", b, "2024-01-02T03:04:05Z", true)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if n, _ := tl.Index().Size(); n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("index did not catch up")
		}
	}
	serve := func(policy string) string {
		ex, err := New(tl.Log, []byte(policy), "")
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		ex.Register(mux)
		mux.Handle("/", tl.Log.Handler())
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	dom := chromium(t, serve(policy)+"/entry/0", "")
	if !strings.Contains(dom, `class="ok"`) || !strings.Contains(dom, "the cosignatures of w1 (Ed25519 cosignature/v1, key "+keyID(w1.VKey)+"), which meet the log's witness policy (quorum g)") ||
		!strings.Contains(dom, "checked against the log key "+keyID(logVKey)) {
		t.Errorf("entry page under the log's policy:\n%.3000s", dom)
	}
	// A policy that also wants w2, which never cosigned this log.
	both := fmt.Sprintf("log %s\nwitness w1 %s %s\nwitness w2 %s %s\ngroup g all w1 w2\nquorum g\n", logVKey, w1.VKey, w1.URL, w2.VKey, w2.URL)
	dom = chromium(t, serve(both)+"/entry/0", "")
	if !strings.Contains(dom, `class="bad"`) || !strings.Contains(dom, "not cosigned by the log's witness quorum g (cosigned by: w1)") {
		t.Errorf("entry page under a quorum the checkpoint does not meet:\n%.3000s", dom)
	}
}
