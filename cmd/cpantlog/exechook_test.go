package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client/noverify"
)

// fakeClient is a Perl script that stands in for a CPAN client, to test
// what cpantlog exec gives the hook whatever the hook does: it prints the
// hook's variables, and for each argument
//
//	check:CPAN_PATH:FILE          POSTs FILE to the check endpoint, then
//	                              copies it into a cpanm work directory
//	exempt:SUBJECT:PATTERN:FILE   POSTs FILE to the exemption endpoint, then
//	                              copies it there too
//	exempt0:SUBJECT:PATTERN:FILE  the same, without FILE's bytes (the
//	                              subject alone, as the hook sends it)
//	drop:FILE                     copies FILE there unchecked
//
// printing each answer's status and body. It calls the endpoints as the
// hook must: HTTP::Tiny with no proxy (exec points every proxy variable at
// its proxy, whose forward mode has no endpoints).
const fakeClient = `#!/usr/bin/perl
use strict;
use warnings;
use HTTP::Tiny;
use File::Copy ();
use File::Path ();
my $http = HTTP::Tiny->new(proxy => undef, http_proxy => undef, https_proxy => undef);
print "$_=", ($ENV{$_} // '(unset)'), "\n" for qw(CPANTLOG_EXEC_CHECK CPANTLOG_EXEC_TOKEN CPANTLOG_POLICY CPANTLOG_NOVERIFY PERL5OPT PERL5LIB);
print "hook loaded from $INC{'CPAN/TLog/Cpanm.pm'}\n" if $INC{'CPAN/TLog/Cpanm.pm'};
my $work = "$ENV{PERL_CPANM_HOME}/work/" . time . ".$$";
File::Path::mkpath($work);
sub slurp { open my $fh, '<:raw', $_[0] or die "$_[0]: $!"; local $/; scalar <$fh> }
sub post {
    my ($url, $file) = @_;
    my $res = $http->post($url, { (defined $file ? (content => slurp($file)) : ()), headers => { Authorization => "Bearer $ENV{CPANTLOG_EXEC_TOKEN}" } });
    (my $body = $res->{content}) =~ s/\n+\z//;
    return "$res->{status} $body";
}
for (@ARGV) {
    my ($op, @f) = split /:/;
    my $file = $f[-1];
    if ($op eq 'check') {
        print "check $f[0]: ", post("$ENV{CPANTLOG_EXEC_CHECK}?path=$f[0]", $file), "\n";
    } elsif ($op =~ /\Aexempt(0?)\z/) {
        (my $url = $ENV{CPANTLOG_EXEC_CHECK}) =~ s{/check\z}{/exempt};
        print "exempt $f[0] by $f[1]: ", post("$url?subject=$f[0]&pattern=$f[1]", $1 ? undef : $file), "\n";
    }
    File::Copy::copy($file, $work) or die "copy $file: $!";
}
exit 0;
`

// writeFakeClient writes fakeClient as name in a new directory.
func writeFakeClient(t *testing.T, name string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(f, []byte(fakeClient), 0o755); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestExecHookContract: what exec gives the clients the hook knows, and
// what its endpoints and its scan make of what such a client reports:
// a file checked as verified passes the scan, one refused or left
// unchecked fails the run, an exempt one is listed as such and passes, and
// a command exec does not know gets none of it.
func TestExecHookContract(t *testing.T) {
	if !perlAvailable(t) {
		t.Skip("perl with CryptX not installed")
	}
	e := newExecEnv(t)
	tryTiny := filepath.Join(e.root, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz")
	tampered := filepath.Join(t.TempDir(), "Test-Fatal-0.017.tar.gz")
	os.WriteFile(tampered, append(mustRead(t, filepath.Join(e.root, testFatal)), 'x'), 0o644)
	private := filepath.Join(t.TempDir(), "Private-1.0.tar.gz")
	os.WriteFile(private, []byte("a DarkPAN distribution"), 0o644)
	text := filepath.Join(t.TempDir(), "Sub-Install-0.929.tar.gz")
	os.WriteFile(text, []byte("not an archive at all\n"), 0o644)
	t.Setenv("PERL5OPT", "-MDevel::Unwrapper")
	t.Setenv("PERL5LIB", "/home/u/perl5/lib/perl5")
	t.Setenv("CPANTLOG_NOVERIFY", "authors/id/M/MY/MYCOMPANY, git://example.com/x")
	cpanm := writeFakeClient(t, "cpanm")

	// A verified file: checked, used, exit 0; the variables are exec's.
	code, out := e.run(t, cpanm, "check:authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz:"+tryTiny)
	policy, _ := filepath.Abs(e.policy)
	for _, want := range []string{
		"check authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz: 200 index ",
		"CPANTLOG_POLICY=" + policy + "\n",
		"CPANTLOG_NOVERIFY=authors/id/M/MY/MYCOMPANY, git://example.com/x\n",
		"PERL5OPT=-MCPAN::TLog::Cpanm\n",
		":/home/u/perl5/lib/perl5\n",
		"hook loaded from ",
		`PERL5OPT ("-MDevel::Unwrapper") is ignored`,
		okLine + "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q", want)
		}
	}
	if !regexp.MustCompile(`CPANTLOG_EXEC_CHECK=http://127\.0\.0\.1:\d+/\.cpantlog/check\n`).MatchString(out) || !regexp.MustCompile(`CPANTLOG_EXEC_TOKEN=[0-9a-f]{64}\n`).MatchString(out) {
		t.Error("CPANTLOG_EXEC_CHECK or CPANTLOG_EXEC_TOKEN is not what the contract says")
	}
	if code != 0 || t.Failed() {
		t.Fatalf("a client that had its file verified: exit %d, want 0\n%s", code, out)
	}
	// Each run has its own token.
	_, out2 := e.run(t, cpanm)
	tok := regexp.MustCompile(`CPANTLOG_EXEC_TOKEN=(\w+)`)
	if tok.FindStringSubmatch(out)[1] == tok.FindStringSubmatch(out2)[1] {
		t.Error("two runs got the same token")
	}

	// A tampered file the check refuses: exit 1, the path and why.
	code, out = e.run(t, cpanm, "check:"+testFatal+":"+tampered)
	if code != 1 || !strings.Contains(out, "check "+testFatal+": 403 ") || !strings.Contains(out, refusedLine+testFatal+"\n") || !strings.Contains(out, "does not match the log") {
		t.Errorf("a tampered file: exit %d, want 1 with the path refused\n%s", code, out)
	}

	// A verified file, and beside it one the client used without asking
	// (text in an archive's name): exit 1, naming it.
	code, out = e.run(t, cpanm, "check:authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz:"+tryTiny, "drop:"+text)
	if code != 1 || !regexp.MustCompile(refusedLine+`/\S+/work/[^/\s]+/Sub-Install-0\.929\.tar\.gz\n`).MatchString(out) || !strings.Contains(out, "did not come through the verifying proxy") {
		t.Errorf("a text file in an archive's name, unchecked: exit %d, want 1 naming it\n%s", code, out)
	}

	// An exemption by one of the user's patterns: listed, not a failure;
	// one by a pattern exec was not given is refused by the endpoint, and
	// the file it left fails the run.
	code, out = e.run(t, cpanm, "check:authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz:"+tryTiny, "exempt:authors/id/M/MY/MYCOMPANY/Private-1.0.tar.gz:authors/id/M/MY/MYCOMPANY:"+private)
	if code != 0 || !strings.Contains(out, "exempt authors/id/M/MY/MYCOMPANY/Private-1.0.tar.gz by authors/id/M/MY/MYCOMPANY: 204") ||
		!strings.Contains(out, "  exempt    authors/id/M/MY/MYCOMPANY/Private-1.0.tar.gz\n            not verified (exempt by authors/id/M/MY/MYCOMPANY)\n") ||
		!strings.Contains(out, "1 files verified against the log, 0 refused, 0 could not be checked, 1 exempt (not verified)") {
		t.Errorf("an exempt file: exit %d, want 0 with it listed as exempt\n%s", code, out)
	}
	// Without the bytes, the file is known by its subject's name.
	code, out = e.run(t, cpanm, "exempt0:authors/id/M/MY/MYCOMPANY/Private-1.0.tar.gz:authors/id/M/MY/MYCOMPANY:"+private)
	if code != 0 || !strings.Contains(out, "  exempt    authors/id/M/MY/MYCOMPANY/Private-1.0.tar.gz\n") || strings.Contains(out, "REFUSED") {
		t.Errorf("an exempt file, its bytes not sent: exit %d, want 0 with it listed as exempt\n%s", code, out)
	}
	code, out = e.run(t, cpanm, "check:authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz:"+tryTiny, "exempt:authors/id/M/MY/MYCOMPANY/Private-1.0.tar.gz:authors/id/M/MY:"+private)
	if code != 1 || !strings.Contains(out, "by authors/id/M/MY: 403") || strings.Contains(out, "exempt by") || !strings.Contains(out, "Private-1.0.tar.gz\n            the command used this file") {
		t.Errorf("an exemption by a pattern exec was not given: exit %d, want 1\n%s", code, out)
	}

	// A command the hook does not know: none of it, and the user's own
	// PERL5OPT and PERL5LIB are left alone.
	other := writeFakeClient(t, "mytool")
	t.Setenv("PERL5OPT", "")
	code, out = e.run(t, other)
	if !strings.Contains(out, "CPANTLOG_EXEC_CHECK=(unset)\n") || !strings.Contains(out, "CPANTLOG_EXEC_TOKEN=(unset)\n") || !strings.Contains(out, "PERL5LIB=/home/u/perl5/lib/perl5\n") || strings.Contains(out, "hook loaded") || code != 2 {
		t.Errorf("an unknown command: exit %d\n%s", code, out)
	}
}

// TestExecNoVerifyInvalid: a pattern that would exempt everything stops
// exec before anything runs.
func TestExecNoVerifyInvalid(t *testing.T) {
	e := newExecEnv(t)
	marker := filepath.Join(t.TempDir(), "ran")
	for _, bad := range []string{"*", "authors/id/*/*/*", "modules/02packages.details.txt.gz", "a b"} {
		t.Setenv("CPANTLOG_NOVERIFY", bad)
		code, out := e.run(t, "touch", marker)
		if code != 2 || !strings.Contains(out, "CPANTLOG_NOVERIFY") || !strings.Contains(out, "pattern") {
			t.Errorf("CPANTLOG_NOVERIFY=%q: exit %d, want 2 with the reason\n%s", bad, code, out)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatalf("CPANTLOG_NOVERIFY=%q: the command ran", bad)
		}
	}
}

// TestExecPolicyFromPipe: a policy given as a pipe (--policy <(...)),
// which can be read once, reaches the hook as a file with the same text.
func TestExecPolicyFromPipe(t *testing.T) {
	text := mustRead(t, newExecEnv(t).policy)
	fifo := filepath.Join(t.TempDir(), "policy")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err == nil {
			f.Write(text)
			f.Close()
		}
	}()
	c := &common{policy: fifo}
	dir := t.TempDir()
	got, err := execPolicy(c, dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(got)
	if err != nil || got != filepath.Join(dir, "policy") || c.policy != got || st.Mode().Perm() != 0o600 || !bytes.Equal(mustRead(t, got), text) {
		t.Errorf("policy from a pipe: %q (exec reads %q), %v %v", got, c.policy, st, err)
	}
	// A regular file is used where it is, by its absolute path.
	t.Chdir(filepath.Dir(fifo))
	c = &common{policy: "plain"}
	os.WriteFile("plain", text, 0o644)
	if got, err := execPolicy(c, dir); err != nil || got != filepath.Join(filepath.Dir(fifo), "plain") || c.policy != "plain" {
		t.Errorf("a regular policy file: %q %v", got, err)
	}
}

// selfRewriting is a hostile Try-Tiny-0.31 whose last member, at the top
// level, is named like the archive itself: unpacked in cpanm's work
// directory, it replaces the archive with text. (Last, so that cpanm takes
// the distribution's directory for the archive's root and unpacks it.)
func selfRewriting(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	files := hostileFiles("Try-Tiny-0.31", "Try::Tiny")
	names := slices.Sorted(maps.Keys(files))
	files["Try-Tiny-0.31.tar.gz"] = "the archive, rewritten by its own member\n"
	for _, n := range append(names, "Try-Tiny-0.31.tar.gz") {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: time.Unix(1700000000, 0), Typeflag: tar.TypeReg})
		tw.Write([]byte(files[n]))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// markersDir is a fresh directory for the markers hostile code leaves
// (markerPerl), which COMMAND finds through exec's environment.
func markersDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	t.Setenv("CPANTLOG_TEST_MARKERS", d)
	return d
}

// ran lists the marker files hostile code left in dir.
func ran(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestExecSelfRewritingArchive: through a file:// mirror, which no proxy
// sees, a logged distribution's tarball is replaced by one whose
// Makefile.PL and test write marker files and which holds, last, a member
// named like the archive itself (unpacking it would replace the archive in
// cpanm's work directory with text, which the scan once skipped). cpanm
// with exec's hook runs none of it, and exec exits non-zero naming the
// file.
func TestExecSelfRewritingArchive(t *testing.T) {
	needCpanm(t)
	if !perlAvailable(t) {
		t.Skip("perl with CryptX not installed")
	}
	e := newExecEnv(t)
	markers := markersDir(t)
	os.WriteFile(filepath.Join(e.root, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz"), selfRewriting(t), 0o644)
	lib := t.TempDir()
	code, out := e.run(t, "cpanm", "-L", lib, "--mirror", "file://"+e.root, "--mirror-only", "Try::Tiny")
	if m := ran(markers); len(m) > 0 {
		t.Errorf("cpanm ran the tampered distribution's code (markers %v)\n%s", m, out)
	}
	if code == 0 || installed(lib, "Try/Tiny.pm") || !strings.Contains(out, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz") {
		t.Errorf("a self-rewriting archive from a file:// mirror: exit %d, want non-zero naming the file\n%s", code, out)
	}
}

// TestExecPlainTextIndex: a file:// mirror's 02packages.details.txt.gz in
// plain text (cpanm reads it through Compress::Zlib, which passes plain
// text through) points at a .zip with junk bytes in front (unzip skips
// them) whose Makefile.PL writes a marker: nothing of it runs, and exec
// exits non-zero naming the index.
func TestExecPlainTextIndex(t *testing.T) {
	needCpanm(t)
	if !perlAvailable(t) {
		t.Skip("perl with CryptX not installed")
	}
	e := newExecEnv(t)
	markers := markersDir(t)
	os.MkdirAll(filepath.Join(e.root, "authors/id/E/EV/EVIL"), 0o755)
	os.WriteFile(filepath.Join(e.root, "authors/id/E/EV/EVIL/Try-Tiny-0.32.zip"), junkZip(t, hostileFiles("Try-Tiny-0.32", "Try::Tiny")), 0o644)
	writeIndex(t, e.root, true, "Try::Tiny 0.32 E/EV/EVIL/Try-Tiny-0.32.zip")
	lib := t.TempDir()
	code, out := e.run(t, "cpanm", "-L", lib, "--mirror", "file://"+e.root, "--mirror-only", "Try::Tiny")
	if m := ran(markers); len(m) > 0 {
		t.Errorf("cpanm ran the code of a distribution a plain-text index chose (markers %v)\n%s", m, out)
	}
	if code == 0 || installed(lib, "Try/Tiny.pm") || !strings.Contains(out, "modules/02packages.details.txt.gz") {
		t.Errorf("a plain-text 02packages from a file:// mirror: exit %d, want non-zero naming the index\n%s", code, out)
	}
}

// TestExecScanUsesNoMagic: a client exec does not load the hook into
// (cpanm run as "perl cpanm") from a file:// mirror: nothing stops the
// build, but the scan, which no longer skips files without an archive's
// first bytes, refuses the run and names the archive a member rewrote
// into text.
func TestExecScanUsesNoMagic(t *testing.T) {
	needCpanm(t)
	e := newExecEnv(t)
	markers := markersDir(t)
	cpanmPath, _ := exec.LookPath("cpanm")
	os.WriteFile(filepath.Join(e.root, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz"), selfRewriting(t), 0o644)
	code, out := e.run(t, "perl", cpanmPath, "-L", t.TempDir(), "--mirror", "file://"+e.root, "--mirror-only", "Try::Tiny")
	// Without the hook the hostile code runs: the scan comes after it.
	if m := ran(markers); !slices.Contains(m, "Makefile.PL-Try-Tiny-0.31") {
		t.Fatalf("the test's archive was not unpacked and built as it should be without the hook (markers %v)\n%s", m, out)
	}
	if code != 1 || !regexp.MustCompile(refusedLine+`\S+/work/[^/\s]+/Try-Tiny-0\.31\.tar\.gz\n`).MatchString(out) {
		t.Errorf("an archive rewritten into text by its member: exit %d, want 1 naming it\n%s", code, out)
	}
}

// TestExecFileMirrorVerifiedByHook: cpanm from a file:// mirror, which no
// proxy sees, installs genuine files through exec: the hook had each
// verified by exec's proxy, and the scan finds nothing else (the
// uncompressed 02packages cpanm made is the verified .gz decompressed).
func TestExecFileMirrorVerifiedByHook(t *testing.T) {
	needCpanm(t)
	if !perlAvailable(t) {
		t.Skip("perl with CryptX not installed")
	}
	e := newExecEnv(t)
	lib := t.TempDir()
	code, out := e.run(t, "cpanm", "-n", "-L", lib, "--mirror", "file://"+e.root, "--mirror-only", "Test::Fatal")
	if code != 0 || !installed(lib, "Test/Fatal.pm") || strings.Contains(out, "REFUSED") {
		t.Fatalf("genuine files from a file:// mirror: exit %d, want 0\n%s", code, out)
	}
	for _, p := range []string{testFatal, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", packagesPath} {
		if !strings.Contains(out, okLine+p+"\n") {
			t.Errorf("%s is not listed as verified\n%s", p, out)
		}
	}
}

// TestExecExemptWithCpanm: an upload the log never saw, from a file://
// mirror, named in CPANTLOG_NOVERIFY: cpanm installs it, exec lists it as
// exempt and exits 0; without the exemption it is refused and nothing of
// it runs.
func TestExecExemptWithCpanm(t *testing.T) {
	needCpanm(t)
	if !perlAvailable(t) {
		t.Skip("perl with CryptX not installed")
	}
	e := newExecEnv(t)
	const private = "authors/id/M/MY/MYCOMPANY/Private-Module-1.0.tar.gz"
	os.MkdirAll(filepath.Join(e.root, filepath.Dir(private)), 0o755)
	os.WriteFile(filepath.Join(e.root, private), tarGz(t, hostileFiles("Private-Module-1.0", "Private::Module")), 0o644)

	markers := markersDir(t)
	lib := t.TempDir()
	code, out := e.run(t, "cpanm", "-n", "-L", lib, "--mirror", "file://"+e.root, "--mirror-only", "M/MY/MYCOMPANY/Private-Module-1.0.tar.gz")
	if m := ran(markers); len(m) > 0 || code == 0 || installed(lib, "Private/Module.pm") || !strings.Contains(out, private) {
		t.Errorf("an unlogged upload, not exempt: exit %d, markers %v, want a refusal naming it\n%s", code, m, out)
	}

	t.Setenv("CPANTLOG_NOVERIFY", "authors/id/M/MY/MYCOMPANY")
	lib = t.TempDir()
	code, out = e.run(t, "cpanm", "-n", "-L", lib, "--mirror", "file://"+e.root, "--mirror-only", "M/MY/MYCOMPANY/Private-Module-1.0.tar.gz")
	if code != 0 || !installed(lib, "Private/Module.pm") || !strings.Contains(out, "  exempt    "+private+"\n            not verified (exempt by authors/id/M/MY/MYCOMPANY)\n") || strings.Contains(out, "REFUSED") {
		t.Errorf("an exempt upload: exit %d, want 0 with it listed as exempt\n%s", code, out)
	}
}

// TestExemptBy: the proxy accepts an exemption only by one of exec's own
// patterns, and only for a subject that pattern matches.
func TestExemptBy(t *testing.T) {
	if exemptBy(nil) != nil {
		t.Error("no patterns, yet an exemption function")
	}
	pats, err := noverify.Parse("authors/id/M/MY/MYCOMPANY, https://git.example.com/myorg")
	if err != nil {
		t.Fatal(err)
	}
	ok := exemptBy(pats)
	for _, c := range []struct {
		subject, pattern string
		want             bool
	}{
		{"authors/id/M/MY/MYCOMPANY/X-1.0.tar.gz", "authors/id/M/MY/MYCOMPANY", true},
		{"https://git.example.com/myorg/repo.git", "https://git.example.com/myorg", true},
		{"authors/id/M/MY/MYCOMPANYX/X-1.0.tar.gz", "authors/id/M/MY/MYCOMPANY", false},        // not below it
		{"https://git.example.com/myorg/repo.git", "authors/id/M/MY/MYCOMPANY", false},         // one of exec's, not matching
		{"authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", "authors/id/E/ET/ETHER", false},         // matching, not exec's
		{"authors/id/M/MY/MYCOMPANY/X-1.0.tar.gz", "authors/id/M/MY/MYCOMPANY,authors", false}, // not one pattern
		{"authors/id/M/MY/MYCOMPANY/X-1.0.tar.gz", "authors/id/*/*/*", false},
	} {
		if got := ok(c.subject, c.pattern); got != c.want {
			t.Errorf("exempt %q by %q: %v, want %v", c.subject, c.pattern, got, c.want)
		}
	}
}
