package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/client/proxy"
	"github.com/CPAN-Security/cpan-tlog/internal/httpserver"
	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
)

// packages are the modules of the sample distributions, with their real
// versions: cpanm skips a dependency whose index version is undef.
var packages = []string{
	"Algorithm::Diff 1.201 R/RJ/RJBS/Algorithm-Diff-1.201.tar.gz",
	"CPAN::DistnameInfo 0.12 G/GB/GBARR/CPAN-DistnameInfo-0.12.tar.gz",
	"Module::Runtime 0.016 Z/ZE/ZEFRAM/Module-Runtime-0.016.tar.gz",
	"Role::Tiny 2.002004 H/HA/HAARG/Role-Tiny-2.002004.tar.gz",
	"Sub::Install 0.929 R/RJ/RJBS/Sub-Install-0.929.tar.gz",
	"Test::Fatal 0.017 R/RJ/RJBS/Test-Fatal-0.017.tar.gz",
	"Text::Diff 1.45 N/NE/NEILB/Text-Diff-1.45.tar.gz",
	"Try::Tiny 0.31 E/ET/ETHER/Try-Tiny-0.31.tar.gz",
}

const packagesPath = "modules/02packages.details.txt.gz"

// packagesIndex is a gzipped 02packages.details.txt listing lines of
// "Package version A/AB/ID/file".
func packagesIndex(lines []string) []byte {
	var idx bytes.Buffer
	fmt.Fprintf(&idx, "File:         02packages.details.txt\nURL:          http://www.perl.com/CPAN/modules/02packages.details.txt\n"+
		"Description:  Package names found in directory $CPAN/authors/id/\nColumns:      package name, version, path\n"+
		"Intended-For: Automated fetch routines, namespace documentation.\nWritten-By:   cpan-tlog tests\n"+
		"Line-Count:   %d\nLast-Updated: Tue, 24 Nov 2026 00:00:00 GMT\n\n", len(lines))
	for _, p := range lines {
		f := strings.Fields(p)
		fmt.Fprintf(&idx, "%-30s %-10s %s\n", f[0], f[1], f[2])
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(idx.Bytes())
	zw.Close()
	return gz.Bytes()
}

// buildMirror writes a CPAN mirror of the samples with a real
// 02packages.details.txt.gz and serves it on loopback.
func buildMirror(t testing.TB, smp []sampleFile) (string, string) {
	t.Helper()
	root := t.TempDir()
	for _, s := range smp {
		p := filepath.Join(root, s.path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, s.content, 0o644)
	}
	os.MkdirAll(filepath.Join(root, "modules"), 0o755)
	os.WriteFile(filepath.Join(root, packagesPath), packagesIndex(packages), 0o644)
	writeChecksums(root, smp)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(root))}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return root, "http://" + ln.Addr().String()
}

// writeChecksums writes each author directory's CHECKSUMS in the format
// CPAN::Checksums writes (CPAN.pm checks tarballs against it).
func writeChecksums(root string, smp []sampleFile) {
	dirs := map[string][]sampleFile{}
	for _, s := range smp {
		dirs[filepath.Dir(s.path)] = append(dirs[filepath.Dir(s.path)], s)
	}
	for dir, files := range dirs {
		var b strings.Builder
		b.WriteString("# CHECKSUMS file written on Tue Nov 24 00:00:00 2026 GMT by CPAN::Checksums (v2.14)\n$cksum = {\n")
		for _, f := range files {
			fmt.Fprintf(&b, "  '%s' => {\n    'cpan_path' => '%s',\n    'md5' => '%x',\n    'mtime' => '2024-01-02',\n    'sha256' => '%x',\n    'size' => %d\n  },\n",
				filepath.Base(f.path), strings.TrimPrefix(dir, "authors/id/"), md5.Sum(f.content), sha256.Sum256(f.content), len(f.content))
		}
		b.WriteString("};\n__END__\n")
		os.WriteFile(filepath.Join(root, dir, "CHECKSUMS"), []byte(b.String()), 0o644)
	}
}

func startProxy(t *testing.T, policyFile, upstream string) (string, *testlog.SyncBuffer) {
	t.Helper()
	st, _ := client.OpenState(t.TempDir())
	v, err := client.NewVerifier(mustPolicy(t, policyFile), "", "", st, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	logs := &testlog.SyncBuffer{}
	p, err := proxy.New(proxy.Config{Upstream: upstream, Hosts: proxy.DefaultHosts, Verifier: v, CacheDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go httpserver.Run(ctx, httpserver.New(p, time.Minute), ln, time.Second)
	t.Cleanup(cancel)
	return "http://" + ln.Addr().String(), logs
}

// cpanm installs module into a fresh local::lib through the given mirror,
// optionally through an http_proxy.
func cpanm(t *testing.T, mirror, httpProxy, module string) (string, string, error) {
	t.Helper()
	lib := t.TempDir()
	cmd := exec.Command("cpanm", "--mirror", mirror, "--mirror-only", "-n", "-L", lib, module)
	cmd.Env = append(os.Environ(), "PERL_CPANM_HOME="+t.TempDir(), "HOME="+t.TempDir(), "no_proxy=", "NO_PROXY=")
	cmd.Env = append(cmd.Env, "http_proxy="+httpProxy, "HTTP_PROXY="+httpProxy)
	out, err := cmd.CombinedOutput()
	return lib, string(out), err
}

// loggedSamples starts a log with every sample tarball logged and returns
// it, the samples and a policy file trusting it (no witnesses).
func loggedSamples(t *testing.T) (*testLog, []sampleFile, string) {
	t.Helper()
	smp := samples(t)
	tl := startLog(t, t.TempDir())
	for _, s := range smp {
		tl.add(t, s.path, s.content, "2024-01-02T03:04:05Z")
	}
	return tl, smp, writePolicy(t, fmt.Sprintf("log %s %s\nquorum none\n", tl.log.VerifierKey(), tl.url))
}

func TestProxyWithCpanm(t *testing.T) {
	needCpanm(t)
	tl, smp, policy := loggedSamples(t)
	root, mirrorURL := buildMirror(t, smp)
	tl.add(t, packagesPath, packagesIndex(packages), "2024-01-02T03:04:05Z")

	// Mirror mode.
	proxyURL, logs := startProxy(t, policy, mirrorURL)
	lib, out, err := cpanm(t, proxyURL, "", "Test::Fatal")
	if err != nil {
		t.Fatalf("cpanm through the proxy: %v\n%s\nproxy log:\n%s", err, out, logs)
	}
	for _, pm := range []string{"lib/perl5/Test/Fatal.pm", "lib/perl5/Try/Tiny.pm"} {
		if _, err := os.Stat(filepath.Join(lib, pm)); err != nil {
			t.Errorf("%s not installed: %v\n%s", pm, err, out)
		}
	}
	for _, p := range []string{"R/RJ/RJBS/Test-Fatal-0.017.tar.gz", "E/ET/ETHER/Try-Tiny-0.31.tar.gz"} {
		if !strings.Contains(logs.String(), "decision=verified") || !strings.Contains(logs.String(), p) {
			t.Errorf("proxy log does not show %s verified:\n%s", p, logs)
		}
	}

	// The same through http_proxy, for cpanm's plain-http mirror.
	forwardURL, flogs := startProxy(t, policy, mirrorURL)
	lib, out, err = cpanm(t, mirrorURL, forwardURL, "Test::Fatal")
	if err != nil || !strings.Contains(flogs.String(), "decision=verified") {
		t.Fatalf("cpanm through http_proxy: %v\n%s\nproxy log:\n%s", err, out, flogs)
	}
	if _, err := os.Stat(filepath.Join(lib, "lib/perl5/Try/Tiny.pm")); err != nil {
		t.Errorf("Try::Tiny not installed through http_proxy: %v", err)
	}

	// A tampered Try::Tiny upstream: it is never installed, the proxy says
	// why. (cpanm itself still finishes Test::Fatal when the machine has
	// Debian's libtry-tiny-perl, which its -L still counts as installed;
	// a tampered Test::Fatal below makes the install itself fail.)
	tt := filepath.Join(root, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz")
	tf := filepath.Join(root, "authors/id/R/RJ/RJBS/Test-Fatal-0.017.tar.gz")
	for _, target := range []string{tt, tf} {
		good, _ := os.ReadFile(target)
		bad := bytes.Clone(good)
		bad[len(bad)/2] ^= 1
		os.WriteFile(target, bad, 0o644)
		for _, mode := range []string{"mirror", "http_proxy"} {
			purl, plogs := startProxy(t, policy, mirrorURL) // a fresh cache
			var lib, out string
			var err error
			if mode == "mirror" {
				lib, out, err = cpanm(t, purl, "", "Test::Fatal")
			} else {
				lib, out, err = cpanm(t, mirrorURL, purl, "Test::Fatal")
			}
			name := filepath.Base(target) + " via " + mode
			if _, err := os.Stat(filepath.Join(lib, "lib/perl5/Try/Tiny.pm")); err == nil && target == tt {
				t.Errorf("%s: the tampered Try::Tiny was installed\n%s", name, out)
			}
			if target == tf && (err == nil || !strings.Contains(out, "Failed to fetch distribution Test-Fatal-0.017")) {
				t.Errorf("%s: cpanm did not fail: %v\n%s", name, err, out)
			}
			if target == tt && !strings.Contains(out, "Failed to fetch distribution Try-Tiny-0.31") {
				t.Errorf("%s: cpanm fetched Try::Tiny:\n%s", name, out)
			}
			if !strings.Contains(plogs.String(), "decision=refused") || !strings.Contains(plogs.String(), "does not match the log") {
				t.Errorf("%s: proxy log does not say why:\n%s", name, plogs)
			}
		}
		os.WriteFile(target, good, 0o644)
	}

	// A tarball the log never saw is refused, with a body that says what to do.
	evil := filepath.Join(root, "authors/id/E/ET/ETHER/Evil-1.0.tar.gz")
	os.WriteFile(evil, []byte("evil"), 0o644)
	resp, err := http.Get(proxyURL + "/authors/id/E/ET/ETHER/Evil-1.0.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(body), "not in the log") || !strings.Contains(string(body), "install nothing") {
		t.Errorf("unlogged tarball: %d %s", resp.StatusCode, body)
	}
	// Not an open proxy: another host is refused, CONNECT too.
	pu, _ := url.Parse(forwardURL)
	hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	resp, err = hc.Get("http://example.invalid/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(body), "not an open proxy") {
		t.Errorf("forward request to another host: %d %s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodConnect, forwardURL, nil)
	req.Host = "example.com:443"
	resp, err = http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("CONNECT: %d, want 403", resp.StatusCode)
		}
	}
	// The verified index answers If-None-Match with its sha256 with 304,
	// and If-Modified-Since (the client's clock, or an unverified
	// source's time) with the verified bytes.
	idxSum := sha256.Sum256(packagesIndex(packages))
	for h, want := range map[string]int{"If-None-Match": 304, "If-Modified-Since": 200} {
		req, _ = http.NewRequest("GET", proxyURL+"/"+packagesPath, nil)
		req.Header.Set("If-None-Match", fmt.Sprintf(`"%x"`, idxSum))
		if h == "If-Modified-Since" {
			req.Header.Del("If-None-Match")
			req.Header.Set(h, time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
		}
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s on the index: %d, want %d", h, resp.StatusCode, want)
		}
	}
}
