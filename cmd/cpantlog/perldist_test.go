package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The Perl distribution client/perl builds (CPAN-TLog-Verify) is held to
// what CPAN authors expect of one (issue 37): every Kwalitee indicator
// Module::CPANTS::Analyse computes passes, the tarball stays under
// 300 kB, the perl it declares is at least what its code and tests need
// (Perl::MinimumVersion, which perlver runs), every shared vector travels
// with it and is played by its tests, MANIFEST lists every file of the
// distribution, and the POD's links lead somewhere.

// perlDistMaxSize: the tarball's bound. Each sample file the vectors check
// is shipped once (t/vector-files/); one copy per vector made it 1.7 MB.
const perlDistMaxSize = 300 * 1000

// needPerlTool skips the test when a tool it needs is missing, and fails
// it in CI, where .ci/run installs it.
func needPerlTool(t *testing.T, what, debian string, check *exec.Cmd) {
	t.Helper()
	if err := check.Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s missing in CI: .ci/run installs Debian's %s (%v)", what, debian, err)
		}
		t.Skipf("%s not installed (Debian: %s); .ci/run installs it", what, debian)
	}
}

// buildPerlDist builds client/perl's distribution as installPerlDist does
// ('perl Makefile.PL && make dist' in a copy, with CPANTLOG_TESTDATA), and
// unpacks it: the tarball's path and the unpacked directory.
func buildPerlDist(t *testing.T) (tarball, unpacked string) {
	t.Helper()
	work := t.TempDir()
	if out, err := exec.Command("cp", "-r", "../../client/perl", work).CombinedOutput(); err != nil {
		t.Fatalf("copy: %v %s", err, out)
	}
	src := filepath.Join(work, "perl")
	testdata, _ := filepath.Abs("../../testdata")
	for _, args := range [][]string{{"perl", "Makefile.PL"}, {"make", "dist"}} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CPANTLOG_TESTDATA="+testdata)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	tarballs, _ := filepath.Glob(filepath.Join(src, "CPAN-TLog-Verify-*.tar.gz"))
	if len(tarballs) != 1 {
		t.Fatalf("make dist made %d tarballs: %v", len(tarballs), tarballs)
	}
	tarball = tarballs[0]
	dir := t.TempDir()
	if out, err := exec.Command("tar", "xzf", tarball, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("tar xzf %s: %v %s", tarball, err, out)
	}
	unpacked = filepath.Join(dir, strings.TrimSuffix(filepath.Base(tarball), ".tar.gz"))
	if _, err := os.Stat(filepath.Join(unpacked, "META.json")); err != nil {
		t.Fatalf("the tarball does not unpack to %s: %v", unpacked, err)
	}
	return tarball, unpacked
}

// kwaliteeScript prints one line per Kwalitee indicator of the tarball
// (ARGV[0]): "ok|FAIL core|extra|experimental NAME[: why]".
const kwaliteeScript = `
use strict;
use warnings;
use Module::CPANTS::Analyse;
my $mca = Module::CPANTS::Analyse->new({ dist => $ARGV[0] });
my $d = $mca->run;
for my $i (sort { $a->{name} cmp $b->{name} } $mca->mck->get_indicators) {
    next if $i->{needs_db};
    my $kind = $i->{is_extra} ? 'extra' : $i->{is_experimental} ? 'experimental' : 'core';
    if ($d->{kwalitee}{ $i->{name} }) { print "ok $kind $i->{name}\n"; next }
    my $why = join ' ', grep { defined && length } $i->{error}, $i->{details} ? $i->{details}->($d) : undef, $i->{remedy};
    $why =~ s/\s+/ /g;
    print "FAIL $kind $i->{name}: $why\n";
}
`

// minimumPerlScript compares the perl the unpacked distribution (ARGV[0])
// declares (META.json) with what each of its Perl files needs, as perlver
// finds it: "declared V", then "ok|TOO-NEW V FILE -- why" per file.
const minimumPerlScript = `
use strict;
use warnings;
use JSON::PP ();
use Perl::MinimumVersion ();
use version ();
chdir $ARGV[0] or die "$ARGV[0]: $!\n";
open my $fh, '<', 'META.json' or die "META.json: $!\n";
my $meta = JSON::PP->new->decode(do { local $/; <$fh> });
my $declared = version->parse($meta->{prereqs}{runtime}{requires}{perl} // 0);
print 'declared ', $declared->normal, "\n";
open my $mf, '<', 'MANIFEST' or die "MANIFEST: $!\n";
for my $f (grep { m{\A(?:lib/.*\.pm|bin/[^/]+|t/[^/]+\.t|tools/[^/]+\.pl|Makefile\.PL)\z} } map { /^(\S+)/ ? $1 : () } <$mf>) {
    my $pmv = Perl::MinimumVersion->new($f) or die "$f: Perl::MinimumVersion cannot parse it\n";
    my $v = $pmv->minimum_version;
    my $r = $pmv->minimum_syntax_reason;
    my $why = $r && $r->element ? sprintf('line %d: %s (%s)', $r->element->line_number, $r->element->content, $r->rule) : 'explicit';
    $why =~ s/\s+/ /g;
    printf "%s %s %s -- %s\n", $v > $declared ? 'TOO-NEW' : 'ok', $v->normal, $f, $why;
}
`

// podLinksScript lists the L<> links of the unpacked distribution's POD
// (ARGV[0]) to another distribution's document that is not installed
// here (a module or .pod in @INC, or a script with POD on PATH):
// "MISSING FILE L<TARGET>", and "links N" for the number checked.
const podLinksScript = `
use strict;
use warnings;
use File::Find ();
use File::Spec ();
use Pod::Simple::SimpleTree ();
chdir $ARGV[0] or die "$ARGV[0]: $!\n";
my (%ours, @files);
File::Find::find({ no_chdir => 1, wanted => sub {
    return unless -f && /\.pm\z/;
    push @files, $_;
    (my $m = $File::Find::name) =~ s{\Alib/}{};
    $m =~ s{\.pm\z}{};
    $m =~ s{/}{::}g;
    $ours{$m} = 1;
} }, 'lib');
opendir my $dh, 'bin' or die "bin: $!\n";
for (grep { !/^\./ } readdir $dh) { push @files, "bin/$_"; $ours{$_} = 1 }
sub installed {
    my ($name) = @_;
    (my $rel = $name) =~ s{::}{/}g;
    for my $dir (@INC) {
        next if ref $dir;
        return 1 if grep { -f "$dir/$_" } "$rel.pm", "$rel.pod", "pod/$rel.pod";
    }
    for my $dir (File::Spec->path) {
        my $f = "$dir/$name";
        next unless -f $f && open my $fh, '<', $f;
        return 1 if grep { /^=head1/ } <$fh>;
    }
    return 0;
}
my $n = 0;
for my $file (sort @files) {
    my @todo = (Pod::Simple::SimpleTree->new->parse_file($file)->root);
    while (my $node = shift @todo) {
        next unless ref $node eq 'ARRAY';
        push @todo, @$node[2 .. $#$node];
        next unless $node->[0] eq 'L' && $node->[1]{type} eq 'pod' && defined $node->[1]{to};
        my $to = "$node->[1]{to}";
        next if $ours{$to};
        $n++;
        print "MISSING $file L<$to>\n" unless installed($to);
    }
}
print "links $n\n";
`

func TestPerlDist(t *testing.T) {
	for _, tool := range []string{"perl", "make", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			needPerlTool(t, tool, tool, exec.Command(tool, "--version"))
		}
	}
	needPerlTool(t, "Module::CPANTS::Analyse", "libmodule-cpants-analyse-perl", exec.Command("perl", "-MModule::CPANTS::Analyse", "-e1"))
	needPerlTool(t, "Perl::MinimumVersion (perlver)", "libperl-minimumversion-perl", exec.Command("perl", "-MPerl::MinimumVersion", "-e1"))
	tarball, dist := buildPerlDist(t)

	t.Run("Size", func(t *testing.T) {
		st, err := os.Stat(tarball)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes", filepath.Base(tarball), st.Size())
		if st.Size() >= perlDistMaxSize {
			t.Errorf("%s is %d bytes, over %d: is a file the vectors check shipped more than once (tools/copy-vectors.pl)?", filepath.Base(tarball), st.Size(), perlDistMaxSize)
		}
	})

	t.Run("Kwalitee", func(t *testing.T) {
		out, err := exec.Command("perl", "-e", kwaliteeScript, tarball).Output()
		if err != nil {
			t.Fatalf("Module::CPANTS::Analyse: %v\n%s", err, exitStderr(err))
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		var fails []string
		for _, l := range lines {
			if strings.HasPrefix(l, "FAIL ") {
				fails = append(fails, l)
			}
		}
		t.Logf("Kwalitee: %d of %d indicators pass", len(lines)-len(fails), len(lines))
		if len(lines) < 30 {
			t.Errorf("only %d Kwalitee indicators computed:\n%s", len(lines), out)
		}
		for _, f := range fails {
			t.Errorf("Kwalitee indicator %s", strings.TrimPrefix(f, "FAIL "))
		}
	})

	t.Run("MinimumPerl", func(t *testing.T) {
		out, err := exec.Command("perl", "-e", minimumPerlScript, dist).Output()
		if err != nil {
			t.Fatalf("Perl::MinimumVersion: %v\n%s%s", err, out, exitStderr(err))
		}
		files := 0
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			switch {
			case strings.HasPrefix(l, "TOO-NEW "):
				t.Errorf("needs a newer perl than the distribution declares (MIN_PERL_VERSION in client/perl/Makefile.PL): %s", strings.TrimPrefix(l, "TOO-NEW "))
				files++
			case strings.HasPrefix(l, "ok "):
				files++
			}
		}
		if files < 8 {
			t.Errorf("only %d Perl files checked:\n%s", files, out)
		}
		t.Logf("%s", out)
	})

	t.Run("Vectors", func(t *testing.T) {
		dirs, err := os.ReadDir(vectorsDir)
		if err != nil || len(dirs) < 10 {
			t.Fatalf("vectors: %d %v", len(dirs), err)
		}
		var names []string
		for _, d := range dirs {
			if !d.IsDir() || strings.HasPrefix(d.Name(), ".") {
				continue
			}
			names = append(names, d.Name())
			for _, f := range []string{"want", "path", "policy", "source"} {
				if _, err := os.Stat(filepath.Join(dist, "t", "vectors", d.Name(), f)); err != nil {
					t.Errorf("vector %s: the distribution lacks t/vectors/%s/%s", d.Name(), d.Name(), f)
				}
			}
		}
		if exec.Command("perl", "-MCrypt::PK::Ed25519", "-e1").Run() != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("perl with CryptX missing in CI: .ci/run installs Debian's libcryptx-perl")
			}
			t.Skip("perl with CryptX (Debian libcryptx-perl) not installed: the distribution's tests are not run")
		}
		// The distribution's own tests play every vector, from the
		// files they check as shipped.
		for _, test := range []string{"t/verify.t", "t/vector-files.t"} {
			cmd := exec.Command("perl", "-Ilib", test)
			cmd.Dir = dist
			out, err := cmd.CombinedOutput()
			if err != nil || regexp.MustCompile(`(?m)^not ok`).Match(out) {
				t.Errorf("the distribution's %s: %v\n%s", test, err, out)
				continue
			}
			if test != "t/verify.t" {
				continue
			}
			for _, name := range names {
				if !regexp.MustCompile(`(?m)^ok \d+ - vector ` + regexp.QuoteMeta(name) + `[: ]`).Match(out) {
					t.Errorf("the distribution's t/verify.t does not play vector %s", name)
				}
			}
		}
	})

	t.Run("Manifest", func(t *testing.T) {
		// Every file of client/perl git tracks (the Go hook aside) is
		// in MANIFEST, so that it ships: a new t/*.t left out of it would
		// silently not be in the distribution.
		out, err := exec.Command("git", "ls-files", "--", "../../client/perl").Output()
		if err != nil {
			t.Skipf("git ls-files: %v", err)
		}
		manifest, err := os.ReadFile("../../client/perl/MANIFEST")
		if err != nil {
			t.Fatal(err)
		}
		listed := map[string]bool{}
		for _, l := range strings.Split(string(manifest), "\n") {
			if f := strings.Fields(l); len(f) > 0 {
				listed[f[0]] = true
			}
		}
		for _, f := range strings.Fields(string(out)) {
			rel := strings.TrimPrefix(filepath.ToSlash(f), "../../client/perl/")
			if strings.HasSuffix(rel, ".go") || rel == ".gitignore" {
				continue
			}
			if !listed[rel] {
				t.Errorf("client/perl/%s is not in client/perl/MANIFEST: it would not be in the distribution", rel)
			}
		}
	})

	t.Run("PodLinks", func(t *testing.T) {
		out, err := exec.Command("perl", "-e", podLinksScript, dist).Output()
		if err != nil {
			t.Fatalf("POD links: %v\n%s%s", err, out, exitStderr(err))
		}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if strings.HasPrefix(l, "MISSING ") {
				f := strings.Fields(l)
				t.Errorf("%s links to %s, which is not installed here: no such document, or its distribution is missing from .ci/run", f[1], strings.Join(f[2:], " "))
			}
		}
		t.Logf("%s", strings.TrimSpace(string(out)))
	})
}

// exitStderr: what a failed command said on stderr.
func exitStderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return fmt.Sprintf("%s", ee.Stderr)
	}
	return ""
}
