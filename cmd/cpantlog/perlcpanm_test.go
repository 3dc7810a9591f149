package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/internal/minicpan"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/log/prooftree"
)

// loggedMirror builds a mirror of the samples, logs it in a witnessed log,
// copies the log's proofs into it, and stops the log: what a Perl user
// meets when the log is down. It returns the mirror and a policy file.
func loggedMirror(t *testing.T) (string, string) { return logMirror(t, "../../testdata") }

// logMirror builds a mirror of the distributions under from/authors/id,
// logs it in a log with one witness, copies the log's proofs into the
// mirror, and stops the log. It returns the mirror and a policy file.
func logMirror(t *testing.T, from string) (string, string) {
	t.Helper()
	logDir, logVKey := newLogKey(t)
	w1 := startWitness(t, "w1.example", logVKey)
	policyText := fmt.Sprintf("log %s %%s\nwitness w1 %s %s\nquorum w1\n", logVKey, w1.vkey, w1.url)
	lg := startLogWith(t, tlog.Config{DataDir: logDir, WitnessPolicy: []byte(fmt.Sprintf(policyText, ""))})
	mirror := t.TempDir()
	tree, err := minicpan.Build(from, mirror)
	if err != nil {
		t.Fatal(err)
	}
	if err := minicpan.Log(context.Background(), lg.url, lg.log.Token(), tree, time.Now()); err != nil {
		t.Fatal(err)
	}
	want := len(tree.Uploads) + len(tree.Indexes)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		lg.log.WriteProofs(context.Background())
		if c, k, err := prooftree.Publish(logDir, mirror); err == nil && c+k >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the proofs were not all written")
		}
	}
	policy := writePolicy(t, fmt.Sprintf(policyText, lg.url))
	lg.stop() // from here on there is no log to ask
	return mirror, policy
}

// tamperWithForgedChecksums plays a hostile mirror: one byte added to a
// tarball, and its directory's CHECKSUMS forged to match.
func tamperWithForgedChecksums(t *testing.T, mirror, cpanPath string) {
	t.Helper()
	tf := filepath.Join(mirror, cpanPath)
	good := mustRead(t, tf)
	bad := append(bytes.Clone(good), 'x')
	os.WriteFile(tf, bad, 0o644)
	cks := filepath.Join(filepath.Dir(tf), "CHECKSUMS")
	forged := strings.NewReplacer(fmt.Sprintf("%x", sha256.Sum256(good)), fmt.Sprintf("%x", sha256.Sum256(bad)),
		fmt.Sprintf("%x", md5.Sum(good)), fmt.Sprintf("%x", md5.Sum(bad)), fmt.Sprintf("=> %d", len(good)), fmt.Sprintf("=> %d", len(bad))).Replace(string(mustRead(t, cks)))
	os.WriteFile(cks, []byte(forged), 0o644)
}

// forgeIndex rewrites the mirror's 02packages so that the package at file
// from (A/AB/ID/File) points at another logged file, to.
func forgeIndex(t *testing.T, mirror, from, to string) {
	t.Helper()
	idx := filepath.Join(mirror, "modules/02packages.details.txt.gz")
	zr, err := gzip.NewReader(bytes.NewReader(mustRead(t, idx)))
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	text.ReadFrom(zr)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(strings.Replace(text.String(), from, to, 1)))
	zw.Close()
	os.WriteFile(idx, gz.Bytes(), 0o644)
}

// TestCpanmTlog: the Perl toolchain verifies by itself. A mirror carries
// the log's proof tree (publish-proofs) and the log is stopped; Debian's
// cpanm run by the installed client/perl distribution's cpanm-tlog installs Test::Fatal and Try::Tiny,
// refuses a tampered tarball whose CHECKSUMS were forged to match (exit 1,
// naming the file and why), and does not install Sub-Install when a forged
// 02packages points Try::Tiny at it.
func TestCpanmTlog(t *testing.T) {
	needCpanm(t)
	if !perlAvailable(t) {
		t.Skip("perl with CryptX not installed")
	}
	// The distribution as a Perl user installs it.
	dist := installPerlDist(t)
	mirror, policy := loggedMirror(t)

	run := func(args ...string) (int, string, string) {
		t.Helper()
		lib := t.TempDir()
		cmd := exec.Command(filepath.Join(dist, "bin", "cpanm-tlog"), append([]string{"--mirror", mirror, "-n", "-L", lib}, args...)...)
		cmd.Env = append(os.Environ(), "CPANTLOG_POLICY="+policy, "HOME="+t.TempDir(), "PERL_CPANM_HOME="+t.TempDir(),
			"PERL5LIB="+filepath.Join(dist, "lib", "perl5"), "http_proxy=", "HTTP_PROXY=", "PERL_CPANM_OPT=")
		code, out := runExit(t, cmd)
		return code, out, lib
	}
	code, out, lib := run("Test::Fatal")
	if code != 0 || !installed(lib, "Test/Fatal.pm") || !installed(lib, "Try/Tiny.pm") {
		t.Fatalf("cpanm-tlog Test::Fatal with the log down, proofs from the mirror: exit %d\n%s", code, out)
	}

	// A hostile mirror: Text-Diff changed, its CHECKSUMS forged to match.
	tamperWithForgedChecksums(t, mirror, "authors/id/N/NE/NEILB/Text-Diff-1.45.tar.gz")
	code, out, lib = run("Text::Diff")
	if code != 1 || installed(lib, "Text/Diff.pm") || !strings.Contains(out, "REFUSED   authors/id/N/NE/NEILB/Text-Diff-1.45.tar.gz") || !strings.Contains(out, "does not match the log") {
		t.Errorf("a tampered Text-Diff with forged CHECKSUMS: exit %d\n%s", code, out)
	}

	// A forged 02packages: Try::Tiny points at Sub-Install's logged tarball.
	forgeIndex(t, mirror, "E/ET/ETHER/Try-Tiny-0.31.tar.gz", "R/RJ/RJBS/Sub-Install-0.929.tar.gz")
	code, out, lib = run("Try::Tiny")
	if code == 0 || installed(lib, "Sub/Install.pm") || installed(lib, "Try/Tiny.pm") || !strings.Contains(out, "modules/02packages.details.txt.gz") {
		t.Errorf("a forged 02packages: exit %d\n%s", code, out)
	}
}

// TestCartonTlog: carton through client/perl's carton-tlog, with the log
// stopped and proofs on the mirror: Menlo's unpack and index are the same
// hook's; a tampered tarball is refused and not installed.
func TestCartonTlog(t *testing.T) {
	if _, err := exec.LookPath("carton"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("carton missing in CI: .ci/run installs Debian's carton")
		}
		t.Skip("carton not installed (Debian: carton)")
	}
	if !perlAvailable(t) {
		t.Skip("perl with CryptX not installed")
	}
	mirror, policy := loggedMirror(t)
	carton := func(requires string) (int, string, string) {
		t.Helper()
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "cpanfile"), []byte(requires), 0o644)
		script, _ := filepath.Abs("../../client/perl/bin/carton-tlog")
		cmd := exec.Command("perl", script, "--mirror", mirror, "install")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CPANTLOG_POLICY="+policy, "HOME="+t.TempDir(), "PERL_CARTON_PATH=", "PERL_CPANM_OPT=", "http_proxy=", "HTTP_PROXY=")
		code, out := runExit(t, cmd)
		return code, out, filepath.Join(dir, "local")
	}
	code, out, local := carton("requires 'Test::Fatal';\n")
	if code != 0 || !installed(local, "Test/Fatal.pm") || !installed(local, "Try/Tiny.pm") {
		t.Fatalf("carton-tlog install Test::Fatal: exit %d\n%s", code, out)
	}
	tf := filepath.Join(mirror, "authors/id/N/NE/NEILB/Text-Diff-1.45.tar.gz")
	os.WriteFile(tf, append(mustRead(t, tf), 'x'), 0o644)
	code, out, local = carton("requires 'Text::Diff';\n")
	if code == 0 || installed(local, "Text/Diff.pm") || !strings.Contains(out, "REFUSED") || !strings.Contains(out, "Text-Diff-1.45.tar.gz") {
		t.Errorf("carton-tlog with a tampered Text-Diff: exit %d\n%s", code, out)
	}
}

// TestCPANPluginTLog: CPAN.pm with plugin_list = CPAN::Plugin::TLog, the
// log stopped and proofs on the mirror: Test::Fatal installs; a tampered
// tarball with forged CHECKSUMS is not built; a forged 02packages builds
// nothing.
func TestCPANPluginTLog(t *testing.T) {
	if _, err := exec.LookPath("cpan"); err != nil {
		t.Skip("cpan (CPAN.pm) not installed")
	}
	if !perlAvailable(t) {
		t.Skip("perl with CryptX not installed")
	}
	mirror, policy := loggedMirror(t)
	lib, _ := filepath.Abs("../../client/perl/lib")
	cpan := func(module string) (int, string, string) {
		t.Helper()
		base, home := t.TempDir(), t.TempDir()
		conf := filepath.Join(t.TempDir(), "CPANConfig.pm")
		os.WriteFile(conf, []byte(fmt.Sprintf(`require CPAN::HandleConfig;
{ local $CPAN::Be_Silent = 1; CPAN::HandleConfig->load(write_file => 0); }
$CPAN::Config->{urllist} = [q[file://%s/]];
$CPAN::Config->{plugin_list} = [q[CPAN::Plugin::TLog]];
$CPAN::Config->{keep_source_where} = q[%s/sources];
$CPAN::Config->{build_dir} = q[%s/build];
$CPAN::Config->{connect_to_internet_ok} = 1;
$CPAN::Config->{pushy_https} = 0;
1;
`, mirror, home, home)), 0o600)
		cmd := exec.Command("cpan", "-j", conf, "-T", module)
		cmd.Env = append(os.Environ(), "CPANTLOG_POLICY="+policy, "HOME="+home, "PERL5LIB="+lib+":"+filepath.Join(base, "lib/perl5"),
			"PERL_MM_OPT=INSTALL_BASE="+base, "PERL_MB_OPT=--install_base "+base, "PERL_MM_USE_DEFAULT=1", "CPAN_OPTS=", "http_proxy=", "HTTP_PROXY=")
		code, out := runExit(t, cmd)
		return code, out, base
	}
	// By its distribution path: a Test::Fatal installed system-wide
	// (Debian's libtest-fatal-perl) would make CPAN.pm find it up to date.
	code, out, base := cpan("RJBS/Test-Fatal-0.017.tar.gz")
	if code != 0 || !installed(base, "Test/Fatal.pm") {
		t.Fatalf("cpan with CPAN::Plugin::TLog, Test::Fatal: exit %d\n%s", code, out)
	}
	tamperWithForgedChecksums(t, mirror, "authors/id/N/NE/NEILB/Text-Diff-1.45.tar.gz")
	code, out, base = cpan("Text::Diff")
	if code == 0 || installed(base, "Text/Diff.pm") || !strings.Contains(out, "REFUSED authors/id/N/NE/NEILB/Text-Diff-1.45.tar.gz") {
		t.Errorf("cpan with a tampered Text-Diff: exit %d\n%s", code, out)
	}

	// A forged 02packages: Text::Diff (which no Debian package installs
	// system-wide) points at Sub-Install's logged tarball.
	forgeIndex(t, mirror, "N/NE/NEILB/Text-Diff-1.45.tar.gz", "R/RJ/RJBS/Sub-Install-0.929.tar.gz")
	code, out, base = cpan("Text::Diff")
	if code == 0 || installed(base, "Sub/Install.pm") || installed(base, "Text/Diff.pm") || !strings.Contains(out, "modules/02packages.details.txt.gz") {
		t.Errorf("cpan with a forged 02packages: exit %d\n%s", code, out)
	}
}
