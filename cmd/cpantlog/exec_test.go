package main

import (
	"bytes"
	"compress/gzip"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
)

// standIn is a plain HTTP proxy that answers every request with evil
// bytes, standing in for cpan.metacpan.org, backpan.perl.org and every
// other host a client could reach by walking around the verifying proxy.
// It counts what reached it.
func standIn(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte("evil bytes from around the log"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String(), &hits
}

type execEnv struct {
	tl                          *testLog
	policy, state, root, mirror string
	hits                        *atomic.Int32
}

// newExecEnv starts a log with the samples and their 02packages, a
// loopback upstream mirror, and a hostile stand-in set as the user's own
// http_proxy (which cpantlog exec must override); HOME and the clients'
// homes are fresh.
func newExecEnv(t *testing.T) *execEnv {
	t.Helper()
	tl, smp, policy := loggedSamples(t)
	tl.add(t, packagesPath, packagesIndex(packages), "2026-11-20T00:00:00Z")
	root, mirror := buildMirror(t, smp)
	// CPAN.pm also reads the authors' list.
	var mailrc bytes.Buffer
	zw := gzip.NewWriter(&mailrc)
	zw.Write([]byte("alias ETHER \"Karen Etheridge <ether@cpan.org>\"\nalias RJBS \"Ricardo Signes <rjbs@cpan.org>\"\n"))
	zw.Close()
	os.WriteFile(filepath.Join(root, "authors", "01mailrc.txt.gz"), mailrc.Bytes(), 0o644)
	tl.add(t, "authors/01mailrc.txt.gz", mailrc.Bytes(), "2026-11-20T00:00:00Z")
	evil, hits := standIn(t)
	home := t.TempDir()
	for k, v := range map[string]string{"HOME": home, "PERL_CPANM_HOME": t.TempDir(), "http_proxy": evil, "HTTP_PROXY": evil, "https_proxy": evil, "no_proxy": "*", "PERL_MM_USE_DEFAULT": "1", "PERL_CARTON_PATH": ""} {
		t.Setenv(k, v)
	}
	return &execEnv{tl: tl, policy: policy,
		state: t.TempDir(), root: root, mirror: mirror, hits: hits}
}

func (e *execEnv) run(t *testing.T, command ...string) (int, string) {
	t.Helper()
	args := append([]string{"exec", "--upstream", e.mirror, "--policy", e.policy, "--state", e.state, "--files", t.TempDir(), "--"}, command...)
	return cli(t, args...)
}

func (e *execEnv) tamper(t *testing.T, p string) {
	t.Helper()
	f := filepath.Join(e.root, p)
	good, _ := os.ReadFile(f)
	bad := bytes.Clone(good)
	bad[len(bad)/2] ^= 1
	os.WriteFile(f, bad, 0o644)
	t.Cleanup(func() { os.WriteFile(f, good, 0o644) })
}

const testFatal = "authors/id/R/RJ/RJBS/Test-Fatal-0.017.tar.gz"

// textDiff is what the CPAN.pm tests install: CPAN.pm installs nothing a
// system perl already has (Debian packages Test::Fatal, for one), and
// Text::Diff's one prerequisite, Algorithm::Diff, is one of the samples.
const textDiff = "authors/id/N/NE/NEILB/Text-Diff-1.45.tar.gz"

// The summary's verdict columns.
const (
	okLine      = "  ok        "
	refusedLine = "  REFUSED   "
)

func TestExecCpanm(t *testing.T) {
	needCpanm(t)
	e := newExecEnv(t)
	lib := t.TempDir()
	code, out := e.run(t, "cpanm", "-n", "-L", lib, "Test::Fatal")
	if code != 0 || !installed(lib, "Test/Fatal.pm") || !strings.Contains(out, okLine+testFatal) {
		t.Fatalf("cpantlog exec -- cpanm Test::Fatal: exit %d\n%s", code, out)
	}
	// Tampered upstream: nothing installs, the summary names the file and why.
	e.tamper(t, testFatal)
	lib = t.TempDir()
	code, out = e.run(t, "cpanm", "-n", "-L", lib, "Test::Fatal")
	if code != 1 || installed(lib, "Test/Fatal.pm") || !strings.Contains(out, refusedLine+testFatal) || !strings.Contains(out, "does not match the log") {
		t.Errorf("tampered Test::Fatal: exit %d, want 1\n%s", code, out)
	}
	// One verdict per file: the refused tarball is not also "ok", and a
	// resolver answer is not a file.
	if strings.Contains(out, okLine+testFatal) || len(regexp.MustCompile(`(?m)^  \S+ +`+regexp.QuoteMeta(testFatal)+`$`).FindAllString(out, -1)) != 1 {
		t.Errorf("the refused tarball is listed more than once or as ok:\n%s", out)
	}
	if n := e.hits.Load(); n != 0 {
		t.Errorf("%d requests walked around the verifying proxy to the user's own http_proxy", n)
	}
}

func TestExecLogDown(t *testing.T) {
	needCpanm(t)
	e := newExecEnv(t)
	e.tl.stop()
	lib := t.TempDir()
	code, out := e.run(t, "cpanm", "-n", "-L", lib, "Test::Fatal")
	if code != 2 || installed(lib, "Test/Fatal.pm") || !strings.Contains(out, "could not reach the log") || !strings.Contains(out, "UNCHECKED") {
		t.Errorf("log down: exit %d, want 2 whatever cpanm exits\n%s", code, out)
	}
	if strings.Contains(out, refusedLine+testFatal) {
		t.Errorf("log down is reported as a refusal of the mirror's file:\n%s", out)
	}
}

func TestExecCarton(t *testing.T) {
	if _, err := exec.LookPath("carton"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("carton missing in CI: .ci/run installs Debian's carton")
		}
		t.Skip("carton not installed (Debian: carton)")
	}
	e := newExecEnv(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "cpanfile"), []byte("requires 'Test::Fatal';\n"), 0o644)
	t.Chdir(dir)
	code, out := e.run(t, "carton", "install")
	if code != 0 || !installed(filepath.Join(dir, "local"), "Test/Fatal.pm") || !strings.Contains(out, okLine+testFatal) {
		t.Fatalf("cpantlog exec -- carton install: exit %d\n%s", code, out)
	}
	// The snapshot verifies the tarballs carton keeps in local/cache,
	// fetching none from a mirror.
	code, out = cli(t, "snapshot", filepath.Join(dir, "cpanfile.snapshot"), "--policy", e.policy, "--state", e.state)
	if code != 0 || !strings.Contains(out, "Test-Fatal-0.017") {
		t.Errorf("snapshot after carton install: exit %d\n%s", code, out)
	}

	// Tampered upstream: Carton's fallback mirrors go through the proxy too.
	e.tamper(t, testFatal)
	dir2 := t.TempDir()
	os.WriteFile(filepath.Join(dir2, "cpanfile"), []byte("requires 'Test::Fatal';\n"), 0o644)
	t.Chdir(dir2)
	code, out = e.run(t, "carton", "install")
	if code == 0 || installed(filepath.Join(dir2, "local"), "Test/Fatal.pm") || !strings.Contains(out, refusedLine+testFatal) {
		t.Errorf("tampered Test::Fatal with carton: exit %d\n%s", code, out)
	}
	if n := e.hits.Load(); n != 0 {
		t.Errorf("%d requests walked around the verifying proxy", n)
	}
}

func TestExecCPANpm(t *testing.T) {
	if _, err := exec.LookPath("cpan"); err != nil {
		t.Skip("cpan (CPAN.pm) not installed")
	}
	e := newExecEnv(t)
	base := t.TempDir()
	t.Setenv("PERL_MM_OPT", "INSTALL_BASE="+base)
	t.Setenv("PERL_MB_OPT", "--install_base "+base)
	t.Setenv("PERL5LIB", filepath.Join(base, "lib/perl5"))
	t.Setenv("CPAN_OPTS", "")
	code, out := e.run(t, "cpan", "-T", "Text::Diff")
	if code != 0 || !installed(base, "Text/Diff.pm") || !strings.Contains(out, okLine+textDiff) {
		t.Fatalf("cpantlog exec -- cpan Text::Diff: exit %d\n%s", code, out)
	}
	// Tampered upstream: CPAN.pm installs nothing, and although cpan may
	// exit 0, cpantlog exec does not.
	e.tamper(t, textDiff)
	base = t.TempDir()
	t.Setenv("PERL_MM_OPT", "INSTALL_BASE="+base)
	t.Setenv("PERL_MB_OPT", "--install_base "+base)
	t.Setenv("PERL5LIB", filepath.Join(base, "lib/perl5"))
	t.Setenv("HOME", t.TempDir())
	code, out = e.run(t, "cpan", "-T", "Text::Diff")
	if code == 0 || installed(base, "Text/Diff.pm") || !strings.Contains(out, refusedLine+textDiff) || !strings.Contains(out, "does not match the log") {
		t.Errorf("tampered Text::Diff with CPAN.pm: exit %d\n%s", code, out)
	}
	if n := e.hits.Load(); n != 0 {
		t.Errorf("%d requests walked around the verifying proxy", n)
	}
}

// TestExecUserConfigCannotRouteAround: a hostile proxy in the user's own
// ~/.wgetrc, ~/.curlrc and CPAN.pm MyConfig.pm (each read in preference to
// the environment by the program that reads it) receives nothing, and a
// tampered tarball installs by no route.
func TestExecUserConfigCannotRouteAround(t *testing.T) {
	needCpanm(t)
	e := newExecEnv(t)
	evil, hits := standIn(t)
	home := os.Getenv("HOME")
	os.WriteFile(filepath.Join(home, ".wgetrc"), []byte("use_proxy = on\nhttp_proxy = "+evil+"\nhttps_proxy = "+evil+"\n"), 0o644)
	os.WriteFile(filepath.Join(home, ".curlrc"), []byte("proxy = \""+evil+"\"\n"), 0o644)
	os.MkdirAll(filepath.Join(home, ".cpan", "CPAN"), 0o755)
	os.WriteFile(filepath.Join(home, ".cpan", "CPAN", "MyConfig.pm"), []byte("$CPAN::Config = {\n  'http_proxy' => q["+evil+"],\n  'ftp_proxy' => q["+evil+"],\n  'urllist' => [q["+evil+"/]],\n};\n1;\n__END__\n"), 0o644)
	e.tamper(t, testFatal)
	e.tamper(t, textDiff)
	backends := map[string][]string{"wget": {"--no-lwp"}, "curl": {"--no-lwp", "--no-wget"}}
	for name, flags := range backends {
		if _, err := exec.LookPath(name); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s missing in CI: .ci/run installs it", name)
			}
			t.Logf("%s not installed: cpanm's %s backend not tried", name, name)
			continue
		}
		lib := t.TempDir()
		code, out := e.run(t, append(append([]string{"cpanm", "-n", "-L", lib}, flags...), "Test::Fatal")...)
		if code != 1 || installed(lib, "Test/Fatal.pm") || !strings.Contains(out, refusedLine+testFatal) {
			t.Errorf("cpanm (%s backend) with a hostile ~/.%src: exit %d, want 1 with the tarball refused\n%s", name, name, code, out)
		}
	}
	if _, err := exec.LookPath("cpan"); err == nil {
		base := t.TempDir()
		t.Setenv("PERL_MM_OPT", "INSTALL_BASE="+base)
		t.Setenv("PERL_MB_OPT", "--install_base "+base)
		t.Setenv("CPAN_OPTS", "")
		code, out := e.run(t, "cpan", "-T", "Text::Diff")
		if code != 1 || installed(base, "Text/Diff.pm") || !strings.Contains(out, refusedLine+textDiff) {
			t.Errorf("CPAN.pm with a hostile http_proxy in MyConfig.pm: exit %d, want 1\n%s", code, out)
		}
	}
	if n := hits.Load() + e.hits.Load(); n != 0 {
		t.Errorf("%d requests reached the proxies of the user's configuration", n)
	}
}

// TestExecFailsClosed: what the command used is compared with what the
// proxy verified. A client exec does not load the hook into (cpanm run as
// "perl cpanm") from a file:// mirror (no proxy involved) installs genuine
// files, but nothing vouched for them: exit 1, each file named. A command
// that succeeds while nothing was verified exits 2.
func TestExecFailsClosed(t *testing.T) {
	needCpanm(t)
	e := newExecEnv(t)
	lib := t.TempDir()
	cpanmPath, _ := exec.LookPath("cpanm")
	code, out := e.run(t, "perl", cpanmPath, "-n", "-L", lib, "--mirror", "file://"+e.root, "--mirror-only", "Test::Fatal")
	if code != 1 || !strings.Contains(out, "Test-Fatal-0.017.tar.gz") || !strings.Contains(out, "did not come through the verifying proxy") {
		t.Errorf("cpanm from a file:// mirror: exit %d, want 1 naming the unverified files\n%s", code, out)
	}
	code, out = e.run(t, "true")
	if code != 2 || !strings.Contains(out, "nothing was verified") {
		t.Errorf("a command that fetched nothing: exit %d, want 2\n%s", code, out)
	}
	code, out = e.run(t, "false")
	if code != 4 || !strings.Contains(out, "false failed") {
		t.Errorf("a command that failed with nothing refused: exit %d, want 4\n%s", code, out)
	}
}
