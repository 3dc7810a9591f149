package main

import (
	"bufio"
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

	"github.com/CPAN-Security/cpan-tlog/internal/cli"
)

// TestServeDefaultsAndGracefulShutdown runs the real binary with no flags
// but a free port, in an empty directory: it creates ./cpantlog-data with
// the key (0600), prints the verifier key, takes adds, and on SIGTERM
// publishes a checkpoint covering every acknowledged entry and exits 0.
func TestServeDefaultsAndGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "cpantlog-server")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	work := t.TempDir()
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0")
	cmd.Dir = work
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stdout)
	var banner strings.Builder
	for i := 0; i < 5 && sc.Scan(); i++ {
		banner.WriteString(sc.Text() + "\n")
	}
	go io.Copy(io.Discard, stdout)
	m := regexp.MustCompile(`serving on (http://\S+)`).FindStringSubmatch(banner.String())
	if m == nil || !strings.Contains(banner.String(), "verifier key:  localhost/cpan-tlog+") {
		t.Fatalf("banner:\n%s", banner.String())
	}
	url := m[1]
	data := filepath.Join(work, "cpantlog-data")
	if fi, err := os.Stat(filepath.Join(data, "log.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("log.key: %v %v", fi, err)
	}
	token, _ := os.ReadFile(filepath.Join(data, "ingest.token"))
	const n = 50
	for i := range n {
		body := fmt.Sprintf(`{"path":"authors/id/A/AB/ABC/F-%d.tar.gz","size":%d,"sha256":"%064x","uploader":"ABC","time":"2024-01-02T03:04:05Z"}`, i, i, i)
		req, _ := http.NewRequest("POST", url+"/add", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("add %d: %v %v", i, err, resp)
		}
		resp.Body.Close()
	}
	// The collector's default (serveGCPercent), GOGC unset: its metric.
	if os.Getenv("GOGC") == "" {
		resp, err := http.Get(url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("\ngo_gc_gogc_percent %d\n", serveGCPercent); !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %q: serve did not set its GOGC", strings.TrimSpace(want))
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v, want 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit 30s after SIGTERM")
	}
	cp, err := os.ReadFile(filepath.Join(data, "tree", "checkpoint"))
	if err != nil || !strings.Contains(string(cp), fmt.Sprintf("\n%d\n", n)) {
		t.Errorf("checkpoint after shutdown does not cover all %d entries:\n%s", n, cp)
	}
	// reindex works on the stopped log.
	out, err := exec.Command(bin, "reindex", "--data", data).CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("%d entries", n)) {
		t.Errorf("reindex: %v\n%s", err, out)
	}
	// keygen refuses to overwrite.
	if out, err := exec.Command(bin, "keygen", "--data", data).CombinedOutput(); err == nil || !strings.Contains(string(out), "already exists") {
		t.Errorf("keygen over an existing key: %v\n%s", err, out)
	}
	if out, _ := exec.Command(bin, "serve", "-h").CombinedOutput(); !strings.Contains(string(out), "--policy") && !strings.Contains(string(out), "-policy") {
		t.Errorf("serve -h does not explain the flags:\n%s", out)
	}
}

// TestKeygenRefusesBadOrigin: 'cpantlog-server keygen --origin' and a
// first 'serve --origin' refuse what C2SP signed-note does not allow as a
// key name, with a usage error (exit 2) that says why and that nothing
// was written, and write nothing.
func TestKeygenRefusesBadOrigin(t *testing.T) {
	for _, origin := range []string{"a+b/log", "a b/log", ""} {
		dir := filepath.Join(t.TempDir(), "data")
		runs := map[string]error{"keygen": keygen([]string{"--data", dir, "--origin", origin})}
		if origin != "" { // serve's empty --origin is the default one
			runs["serve"] = serve([]string{"--data", dir, "--origin", origin, "--listen", "127.0.0.1:0"})
		}
		for cmd, err := range runs {
			if cli.ExitCode(err, 1) != cli.ExitUsage || !strings.Contains(fmt.Sprint(err), "signed-note") || !strings.Contains(fmt.Sprint(err), "nothing was written") {
				t.Errorf("%s --origin %q: %v (exit %d), want a usage error citing signed-note", cmd, origin, err, cli.ExitCode(err, 1))
			}
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("--origin %q: %s was written (%v)", origin, dir, err)
		}
	}
}
