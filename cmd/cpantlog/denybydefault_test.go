package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hostileMirror answers every request with body (and extra headers), the
// way a compromised mirror or CDN would, except for the paths in files.
func hostileMirror(t *testing.T, body []byte, headers map[string]string, files map[string][]byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range headers {
			w.Header().Set(k, v)
		}
		if b, ok := files[strings.TrimPrefix(r.URL.Path, "/")]; ok {
			w.Write(b)
			return
		}
		if loc := headers["Location"]; loc != "" {
			w.WriteHeader(http.StatusFound)
		}
		w.Write(body)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// evilDist is a real distribution tarball whose Makefile.PL writes marker:
// if cpanm ever runs it, the marker file exists.
func evilDist(t *testing.T, name, marker string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	files := map[string]string{
		name + "/Makefile.PL":        fmt.Sprintf("open my $f, '>', %q or die; print $f qq{pwned\\n}; close $f;\nuse ExtUtils::MakeMaker; WriteMakefile(NAME => 'Evil::Module', VERSION => '1.0');\n", marker),
		name + "/lib/Evil/Module.pm": "package Evil::Module; our $VERSION = '1.0'; 1;\n",
		name + "/META.json":          `{"name":"Evil-Module","version":"1.0","meta-spec":{"version":2},"abstract":"x","author":["x"],"license":["perl_5"],"dynamic_config":0,"release_status":"stable"}`,
	}
	for n, c := range files {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(c)), ModTime: time.Unix(1700000000, 0)})
		tw.Write([]byte(c))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// requestForms are the path tricks of the adversarial review: each must be
// refused (never 200 with the mirror's bytes), in mirror and forward mode.
var requestForms = []string{
	"/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz",
	"/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz/",
	"/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz%2F",
	"/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz%2f",
	"/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz%00",
	"/authors/id/E/ET/ETHER/CHECKSUMS",
	"/authors/id/CHECKSUMS",
	"/authors/id/E/ET/CHECKSUMS",
	"/authors/evil/Evil-1.0.tar.gz",
	"/authors/id/E/ET/ETHER/../../../../evil/Evil-Module-1.0.tar.gz",
	"/authors/id/E/ET/ETHER/%2e%2e/%2e%2e/%2e%2e/%2e%2e/evil/Evil-Module-1.0.tar.gz",
	"/authors/id/E/ET/ETHER/./Try-Tiny-0.31.tar.gz",
	"/authors/id/E/ET/ETHER//Try-Tiny-0.31.tar.gz",
	"/authors/id/E/ET/ETHER%5CTry-Tiny-0.31.tar.gz",
	"/authors/id/e/et/ether/Try-Tiny-0.31.tar.gz",
	"/AUTHORS/ID/E/ET/ETHER/Try-Tiny-0.31.tar.gz",
	"/authors/id/E/ET/ETHER/Try-Tiny-0.31%E2%80%8B.tar.gz",
	"/authors/id/E/ET/ETHER/",
	"/modules/02packages.details.txt.gz",
	"/modules/02packages.details.txt.gz/",
	"/modules/03modlist.data",
	"/authors/01mailrc.txt.gz",
	"/index.html",
	"/",
	"//authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz",
}

// TestProxyDeniesByDefault starts the real log, a hostile mirror and the
// real proxy, and asks for every request form above in both modes: no
// answer carries a byte that did not verify.
func TestProxyDeniesByDefault(t *testing.T) {
	tl, smp, policy := loggedSamples(t)
	tl.add(t, packagesPath, packagesIndex(packages), "2024-01-02T03:04:05Z")
	evil := evilDist(t, "Evil-Module-1.0", filepath.Join(t.TempDir(), "pwned"))
	mirror := hostileMirror(t, evil, nil, nil)
	proxyURL, logs := startProxy(t, policy, mirror)
	pu, _ := url.Parse(proxyURL)
	forward := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu), DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	direct := &http.Client{Transport: &http.Transport{DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	for _, form := range requestForms {
		for _, mode := range []string{"mirror", "forward"} {
			var resp *http.Response
			var err error
			if mode == "mirror" {
				resp, err = direct.Get(proxyURL + form)
			} else {
				resp, err = forward.Get("http://www.cpan.org" + form)
			}
			if err != nil {
				t.Errorf("%s %s: %v", mode, form, err)
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || bytes.Contains(body, evil[:64]) {
				t.Errorf("%s %s: %d with %d bytes: the proxy served what it did not verify", mode, form, resp.StatusCode, len(body))
			}
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s: %d, want 403 (%s)", mode, form, resp.StatusCode, body)
			}
		}
	}
	// CPAN.pm's module list is the proxy's own empty one, never the mirror's.
	resp, err := direct.Get(proxyURL + "/modules/03modlist.data.gz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	zr, zerr := gzip.NewReader(bytes.NewReader(body))
	var text []byte
	if zerr == nil {
		text, _ = io.ReadAll(zr)
	}
	if resp.StatusCode != 200 || bytes.Contains(body, evil[:64]) || !bytes.Contains(text, []byte("sub data { {} }")) {
		t.Errorf("03modlist: %d %q", resp.StatusCode, text)
	}
	if strings.Contains(logs.String(), "decision=passthrough") || !strings.Contains(logs.String(), "decision=refused") {
		t.Errorf("proxy log:\n%s", logs)
	}

	// A mirror that redirects: the redirect is never relayed.
	redirecting := hostileMirror(t, nil, map[string]string{"Location": "http://evil.example/Evil-1.0.tar.gz"}, nil)
	rURL, _ := startProxy(t, policy, redirecting)
	for _, form := range []string{"/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", "/" + packagesPath, "/authors/id/E/ET/ETHER/CHECKSUMS"} {
		resp, err := direct.Get(rURL + form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Location") != "" || resp.StatusCode/100 == 3 || resp.StatusCode == 200 {
			t.Errorf("redirecting mirror, %s: %d Location %q", form, resp.StatusCode, resp.Header.Get("Location"))
		}
	}

	// A mirror that labels its files Content-Encoding: gzip (as many
	// servers do for .gz files): the bytes as served are hashed, so the
	// genuine files verify and are served unchanged.
	files := map[string][]byte{packagesPath: packagesIndex(packages)}
	for _, s := range smp {
		files[s.path] = s.content
	}
	files["authors/id/E/ET/ETHER/CHECKSUMS"] = []byte("# CHECKSUMS file written by CPAN::Checksums\n$cksum = {\n  'Try-Tiny-0.31.tar.gz' => {\n    'sha256' => '3300d31d8a4075b26d8f46ce864a1d913e0e8467ceeba6655d5d2b2e206c11be',\n    'size' => 35784\n  }\n};\n__END__\n")
	gzMirror := hostileMirror(t, []byte("nothing here"), map[string]string{"Content-Encoding": "gzip"}, files)
	gURL, glogs := startProxy(t, policy, gzMirror)
	for p, want := range files {
		resp, err := direct.Get(gURL + "/" + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(body, want) {
			t.Errorf("Content-Encoding mirror, %s: %d, %d bytes (want 200 and the file's %d bytes)\n%s", p, resp.StatusCode, len(body), len(want), glogs)
		}
	}
}

// TestProxyHostileIndexWithCpanm: cpanm led by a hostile 02packages to
// path tricks never runs a tampered Makefile.PL, whether the hostile index
// is refused (not logged) or, as if PAUSE itself were compromised, logged.
func TestProxyHostileIndexWithCpanm(t *testing.T) {
	needCpanm(t)
	tl, _, policy := loggedSamples(t)
	marker := filepath.Join(t.TempDir(), "pwned")
	evil := evilDist(t, "Evil-Module-1.0", marker)
	tricks := []string{
		"E/ET/ETHER/Try-Tiny-0.31.tar.gz/",
		"E/ET/ETHER/CHECKSUMS",
		"E/ET/ETHER/../../../../evil/Evil-Module-1.0.tar.gz",
	}
	for i, trick := range tricks {
		index := packagesIndex([]string{"Evil::Module 1.0 " + trick})
		mirror := hostileMirror(t, evil, nil, map[string][]byte{packagesPath: index})
		for _, logged := range []bool{false, true} {
			if logged {
				// Each version is newer than the last, so none is stale.
				tl.add(t, packagesPath, index, fmt.Sprintf("2024-01-0%dT00:00:00Z", i+3))
			}
			for _, backend := range [][]string{nil, {"--no-lwp"}} {
				purl, plogs := startProxy(t, policy, mirror)
				args := append([]string{"--mirror", purl, "--mirror-only", "-n", "-L", t.TempDir()}, backend...)
				cmd := exec.Command("cpanm", append(args, "Evil::Module")...)
				cmd.Env = append(os.Environ(), "PERL_CPANM_HOME="+t.TempDir(), "HOME="+t.TempDir(), "http_proxy=", "HTTP_PROXY=")
				out, err := cmd.CombinedOutput()
				name := fmt.Sprintf("%s (index logged: %v, %v)", trick, logged, backend)
				if _, serr := os.Stat(marker); serr == nil {
					t.Fatalf("%s: cpanm ran the tampered Makefile.PL\n%s\nproxy log:\n%s", name, out, plogs)
				}
				if err == nil {
					t.Errorf("%s: cpanm succeeded\n%s", name, out)
				}
				if !strings.Contains(plogs.String(), "decision=refused") {
					t.Errorf("%s: the proxy refused nothing:\n%s", name, plogs)
				}
			}
		}
	}
}
