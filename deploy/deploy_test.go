// Package deploy holds the operator's files; its tests check them.
package deploy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
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

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
	"github.com/CPAN-Security/cpan-tlog/witness"
)

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestNginxServesTheLog: Debian's nginx accepts the shipped config
// (nginx -t) and, serving a real POSIX log from disk with the API proxied,
// gives a client everything it needs to verify a tarball, with the cache
// headers the config promises.
func TestNginxServesTheLog(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("nginx missing in CI: .ci/run installs Debian's nginx-light")
		}
		t.Skip("nginx not installed (Debian: nginx-light); .ci/run installs it")
	}
	// A real log with the sample tarballs.
	data := t.TempDir()
	tl := testlog.Start(t, tlog.Config{DataDir: data})
	l := tl.Log
	api := strings.TrimPrefix(tl.URL, "http://")
	tarball, _ := os.ReadFile("../testdata/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz")
	const path = "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz"
	body := fmt.Sprintf(`{"path":%q,"size":%d,"sha256":"%x","uploader":"ETHER","time":"2021-01-05T12:00:00Z"}`, path, len(tarball), sha256.Sum256(tarball))
	req, _ := http.NewRequest("POST", "http://"+api+"/add?wait=1", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+l.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("add: %v %v", err, resp)
	}
	resp.Body.Close()
	// Enough entries for a full tile and bundle.
	var batch []*entry.Entry
	for i := range 300 {
		batch = append(batch, &entry.Entry{Kind: entry.Upload, Path: fmt.Sprintf("authors/id/S/SY/SYNTH/S-%d.tar.gz", i), Size: uint64(i), Uploader: "SYNTH", Time: time.Unix(1700000000, 0).UTC()})
	}
	if _, errs := l.AddBatch(context.Background(), batch); errs[0] != nil {
		t.Fatal(errs[0])
	}
	for {
		cp, err := l.Reader().ReadCheckpoint(context.Background())
		if err == nil && strings.Contains(string(cp), "\n301\n") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The shipped config, pointed at this log's tree, ports and a private prefix.
	conf, err := os.ReadFile("nginx/cpan-tlog.conf")
	if err != nil {
		t.Fatal(err)
	}
	web := freePort(t)
	site := strings.NewReplacer(
		"listen 127.0.0.1:8081;", "listen "+web+";",
		"root /var/lib/cpantlog/tree;", "root "+filepath.Join(data, tlog.TreeDir)+";",
		"proxy_pass http://127.0.0.1:8080;", "proxy_pass http://"+api+";",
	).Replace(string(conf))
	base := startNginx(t, nginx, site)

	// Cache headers as promised.
	for p, want := range map[string]string{
		"/checkpoint":           "no-cache",
		"/tile/0/000.p/1":       "max-age=60",
		"/tile/entries/000.p/1": "max-age=60",
	} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != map[string]string{"no-cache": "no-cache", "max-age=60": "public, max-age=60"}[want] {
			t.Errorf("GET %s: %d, Cache-Control %q", p, resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("GET %s from disk: X-Content-Type-Options %q, Content-Security-Policy %q", p, resp.Header.Get("X-Content-Type-Options"), resp.Header.Get("Content-Security-Policy"))
		}
	}
	// Only the read API is public: writes and /metrics are not proxied.
	for _, r := range []struct{ method, path string }{
		{"POST", "/add"}, {"GET", "/add"}, {"GET", "/metrics"}, {"POST", "/metrics"},
		{"PUT", fmt.Sprintf("/index-files/%x", sha256.Sum256([]byte("x")))}, {"POST", "/lookup"}, {"DELETE", "/checkpoint"},
	} {
		req, _ := http.NewRequest(r.method, base+r.path, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+l.Token())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden && !(r.path == "/checkpoint" && resp.StatusCode == http.StatusMethodNotAllowed) {
			t.Errorf("%s %s through nginx (with the token): %d, want 403 (writes and metrics stay on the server's loopback)", r.method, r.path, resp.StatusCode)
		}
	}
	// The client verifies through nginx: lookup proxied, tiles from disk.
	p, _ := client.ParsePolicy([]byte(fmt.Sprintf("log %s %s\nquorum none\n", l.VerifierKey(), base)))
	st, _ := client.OpenState(t.TempDir())
	v, err := client.NewVerifier(p, "", "", st, "")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "Try-Tiny-0.31.tar.gz")
	os.WriteFile(f, tarball, 0o644)
	file, _ := client.HashFile(f, path)
	res, err := v.VerifyFile(context.Background(), file)
	if err != nil {
		t.Fatalf("verify through nginx: %v", err)
	}
	if res.Index != 0 || res.Checkpoint.Size != 301 {
		t.Errorf("verified %+v", res)
	}
}

// startNginx runs Debian's nginx with site (a server block, as the
// shipped examples) in a private prefix until the test ends, after nginx
// -t accepted it, and returns its base URL. site listens on
// 127.0.0.1:PORT as its first listen line says.
func startNginx(t *testing.T, nginx, site string) string {
	t.Helper()
	prefix := t.TempDir()
	os.WriteFile(filepath.Join(prefix, "site.conf"), []byte(site), 0o644)
	main := fmt.Sprintf(`user root;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
daemon off;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/site.conf;
}
`, prefix)
	mainConf := filepath.Join(prefix, "nginx.conf")
	os.WriteFile(mainConf, []byte(main), 0o644)
	if out, err := exec.Command(nginx, "-t", "-c", mainConf, "-p", prefix).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t rejects the shipped config: %v\n%s", err, out)
	}
	cmd := exec.Command(nginx, "-c", mainConf, "-p", prefix)
	cmd.Stderr = os.Stderr
	// Its own process group: killing the master alone left its worker
	// running for hours after the tests.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopGroup(t, cmd) })
	addr := strings.TrimSuffix(strings.Fields(site[strings.Index(site, "listen ")+len("listen "):])[0], ";")
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if i > 100 {
			t.Fatal("nginx did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "http://" + addr
}

// stopGroup ends a command started with Setpgid and every process of its
// group (nginx's workers), and fails the test if any is still there.
func stopGroup(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	pgid := cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	for deadline := time.Now().Add(5 * time.Second); syscall.Kill(-pgid, 0) == nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			syscall.Kill(-pgid, syscall.SIGKILL)
			t.Errorf("processes of group %d (%s) still running after it was stopped", pgid, cmd.Path)
			return
		}
	}
}

// TestNginxServesTheWitness: Debian's nginx accepts the shipped witness
// config, and a log whose policy names the witness at nginx's address
// gets its checkpoints cosigned through it; the witness's latest
// checkpoint is readable there; a body over the witness's bound is
// refused by nginx; /metrics, /healthz and anything else are not served.
func TestNginxServesTheWitness(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("nginx missing in CI: .ci/run installs Debian's nginx-light")
		}
		t.Skip("nginx not installed (Debian: nginx-light); .ci/run installs it")
	}
	const origin = "log.example.org/cpan"
	data := t.TempDir()
	vkey, err := tlog.Keygen(data, origin)
	if err != nil {
		t.Fatal(err)
	}
	w := testlog.StartWitness(t, "witness1.example.net", vkey)

	conf, err := os.ReadFile("nginx/cpantlog-witness.conf")
	if err != nil {
		t.Fatal(err)
	}
	web := freePort(t)
	site := strings.NewReplacer(
		"listen 127.0.0.1:8082;", "listen "+web+";",
		"proxy_pass http://127.0.0.1:7380;", "proxy_pass "+w.URL+";",
	).Replace(string(conf))
	if strings.Count(site, w.URL) < 2 || !strings.Contains(site, "listen "+web+";") {
		t.Fatalf("the shipped config no longer has the address lines this test replaces:\n%s", site)
	}
	base := startNginx(t, nginx, site)

	// The log asks the witness through nginx, and publishes only what it
	// cosigned (the policy's quorum).
	policy := fmt.Sprintf("log %s http://127.0.0.1:1\nwitness w1 %s %s\nquorum w1\n", vkey, w.VKey, base)
	tl := testlog.Start(t, tlog.Config{DataDir: data, WitnessPolicy: []byte(policy)})
	tarball := mustRead(t, "../testdata/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz")
	tl.Add(t, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", tarball, "2021-01-05T12:00:00Z", true)
	cp, err := tl.Reader().ReadCheckpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cp), "\n— witness1.example.net ") {
		t.Fatalf("the published checkpoint carries no cosignature of the witness behind nginx:\n%s", cp)
	}

	get := func(method, path string, body []byte) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	id := fmt.Sprintf("/%x/checkpoint", sha256.Sum256([]byte(origin)))
	if code, body := get("GET", id, nil); code != 200 || !strings.Contains(body, "— witness1.example.net ") || !strings.HasPrefix(body, origin+"\n") {
		t.Errorf("GET %s through nginx: %d\n%s", id, code, body)
	}
	// Over the witness's bound: nginx refuses it before the witness reads it.
	if code, body := get("POST", "/add-checkpoint", bytes.Repeat([]byte("x"), witness.MaxRequestSize+1)); code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "413 Request Entity Too Large</h1>") {
		t.Errorf("POST /add-checkpoint of %d bytes through nginx: %d, want nginx's 413\n%s", witness.MaxRequestSize+1, code, body)
	}
	// A request for another log within the bound reaches the witness,
	// which refuses it.
	if code, body := get("POST", "/add-checkpoint", []byte("old 0\n\nother.example/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n")); code != http.StatusNotFound || !strings.Contains(body, "unknown log origin") {
		t.Errorf("POST /add-checkpoint (another log) through nginx: %d %s, want the witness's 404", code, body)
	}
	for _, r := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/metrics", 404}, {"GET", "/healthz", 404}, {"GET", "/", 404},
		{"GET", "/add-checkpoint", 403}, {"POST", id, 403},
		{"GET", "/../metrics", 400}, {"GET", "/%2e%2e/metrics", 400}, {"GET", "/x/../metrics", 404},
	} {
		if code, _ := get(r.method, r.path, nil); code != r.want {
			t.Errorf("%s %s through nginx: %d, want %d", r.method, r.path, code, r.want)
		}
	}
}
