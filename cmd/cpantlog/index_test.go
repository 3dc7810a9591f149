package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func needCpanm(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("cpanm"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("cpanm missing in CI: .ci/run installs Debian's cpanminus")
		}
		t.Skip("cpanm not installed (Debian: cpanminus); .ci/run installs it")
	}
}

func installed(lib, pm string) bool {
	_, err := os.Stat(filepath.Join(lib, "lib/perl5", pm))
	return err == nil
}

// TestProxyVerifiesTheIndex: the attack of a rewritten 02packages (a
// popular package pointed at another, genuinely logged, tarball) and of a
// stale one fails; the genuine index installs.
func TestProxyVerifiesTheIndex(t *testing.T) {
	needCpanm(t)
	tl, smp, policy := loggedSamples(t)
	genuine := packagesIndex(packages)
	tl.add(t, packagesPath, genuine, "2026-11-20T00:00:00Z")
	root, mirrorURL := buildMirror(t, smp)
	idx := filepath.Join(root, packagesPath)

	// A rewritten index: Test::Fatal points at Sub-Install.
	var rewritten []string
	for _, p := range packages {
		rewritten = append(rewritten, strings.Replace(p, "Test::Fatal 0.017 R/RJ/RJBS/Test-Fatal-0.017.tar.gz", "Test::Fatal 0.929 R/RJ/RJBS/Sub-Install-0.929.tar.gz", 1))
	}
	os.WriteFile(idx, packagesIndex(rewritten), 0o644)
	purl, plogs := startProxy(t, policy, mirrorURL)
	lib, out, err := cpanm(t, purl, "", "Test::Fatal")
	if err == nil || installed(lib, "Sub/Install.pm") || installed(lib, "Test/Fatal.pm") {
		t.Errorf("rewritten index: cpanm installed something (err %v)\n%s", err, out)
	}
	if !strings.Contains(plogs.String(), "decision=refused") || !strings.Contains(plogs.String(), "is not a version of that path in the log") {
		t.Errorf("rewritten index: the proxy does not say why:\n%s", plogs)
	}

	// A stale index: genuine, but the log has a version two days newer.
	os.WriteFile(idx, genuine, 0o644)
	tl.add(t, packagesPath, packagesIndex(append([]string{"Acme::Newer 1.0 R/RJ/RJBS/Sub-Install-0.929.tar.gz"}, packages...)), "2026-11-22T00:00:00Z")
	purl, plogs = startProxy(t, policy, mirrorURL)
	lib, out, err = cpanm(t, purl, "", "Test::Fatal")
	if err == nil || installed(lib, "Test/Fatal.pm") {
		t.Errorf("stale index: cpanm installed Test::Fatal\n%s", out)
	}
	if !strings.Contains(plogs.String(), "is stale") || !strings.Contains(plogs.String(), "--max-index-lag") {
		t.Errorf("stale index: the proxy does not say why:\n%s", plogs)
	}

	// The newest genuine index installs.
	os.WriteFile(idx, packagesIndex(append([]string{"Acme::Newer 1.0 R/RJ/RJBS/Sub-Install-0.929.tar.gz"}, packages...)), 0o644)
	purl, plogs = startProxy(t, policy, mirrorURL)
	lib, out, err = cpanm(t, purl, "", "Test::Fatal")
	if err != nil || !installed(lib, "Test/Fatal.pm") {
		t.Errorf("genuine index: %v\n%s\nproxy log:\n%s", err, out, plogs)
	}
}

// TestCpanmDefaultFlowThroughProxy: cpanm with no --mirror (cpanmetadb,
// then www.cpan.org) through http_proxy resolves with the proxy's own
// cpanmetadb answers from the verified 02packages and installs from the
// loopback upstream: offline, verified end to end.
func TestCpanmDefaultFlowThroughProxy(t *testing.T) {
	needCpanm(t)
	tl, smp, policy := loggedSamples(t)
	tl.add(t, packagesPath, packagesIndex(packages), "2026-11-20T00:00:00Z")
	_, mirrorURL := buildMirror(t, smp)
	purl, plogs := startProxy(t, policy, mirrorURL)
	lib := t.TempDir()
	cmd := exec.Command("cpanm", "-n", "-L", lib, "Test::Fatal")
	cmd.Env = append(os.Environ(), "PERL_CPANM_HOME="+t.TempDir(), "HOME="+t.TempDir(), "no_proxy=", "NO_PROXY=",
		"http_proxy="+purl, "HTTP_PROXY="+purl, "https_proxy="+purl, "HTTPS_PROXY="+purl)
	out, err := cmd.CombinedOutput()
	if err != nil || !installed(lib, "Test/Fatal.pm") {
		t.Fatalf("cpanm default flow: %v\n%s\nproxy log:\n%s", err, out, plogs)
	}
	logs := plogs.String()
	if !strings.Contains(logs, "decision=resolved") || !strings.Contains(logs, "Test::Fatal is authors/id/R/RJ/RJBS/Test-Fatal-0.017.tar.gz in the verified 02packages") || !strings.Contains(logs, "www.cpan.org/authors/id/R/RJ/RJBS/Test-Fatal-0.017.tar.gz") {
		t.Errorf("cpanm did not resolve through the proxy's cpanmetadb and fetch from www.cpan.org through it:\n%s", logs)
	}
	// The history endpoint is a plain 404 that says why.
	pu := strings.TrimPrefix(purl, "http://")
	c, err := net.Dial("tcp", pu)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET http://%s/v1.0/history/Test::Fatal HTTP/1.0\r\nHost: %s\r\n\r\n", "cpanmetadb.plackperl.org", "cpanmetadb.plackperl.org")
	resp, err := http.ReadResponse(bufioReader(c), nil)
	if err != nil || resp.StatusCode != 404 {
		t.Errorf("history: %v %v", resp, err)
	}
}

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }
