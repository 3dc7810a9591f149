package cpan

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// referenceCase is one expectation from CPAN-DistnameInfo 0.12's own tests.
type referenceCase struct {
	path string
	want map[string]string // Perl property name -> value; absent means undef
}

func (d DistInfo) properties() map[string]string {
	m := map[string]string{}
	for k, v := range map[string]string{
		"pathname": d.Pathname, "filename": d.Filename, "cpanid": d.CPANID,
		"distvname": d.DistVName, "extension": d.Extension, "dist": d.Dist,
		"version": d.Version, "maturity": d.Maturity,
	} {
		if v != "" {
			m[k] = v
		}
	}
	return m
}

// loadPathT reads the __DATA__ section of t/path.t: paragraphs of a path
// followed by tab-separated property/value lines.
func loadPathT(t *testing.T) []referenceCase {
	t.Helper()
	b, err := os.ReadFile("testdata/distnameinfo-path.t")
	if err != nil {
		t.Fatal(err)
	}
	_, data, ok := bytes.Cut(b, []byte("__DATA__\n"))
	if !ok {
		t.Fatal("no __DATA__ in path.t")
	}
	var cases []referenceCase
	for _, para := range strings.Split(string(data), "\n\n") {
		f := regexp.MustCompile(`[\t\n]+`).Split(strings.TrimSpace(para), -1)
		if len(f) < 3 || len(f)%2 != 1 {
			continue
		}
		c := referenceCase{path: f[0], want: map[string]string{"pathname": f[0]}}
		for i := 1; i < len(f); i += 2 {
			c.want[f[i]] = f[i+1]
		}
		cases = append(cases, c)
	}
	return cases
}

// loadExtT reads t/ext.t: file, dist, version, developer flag per line.
func loadExtT(t *testing.T) []referenceCase {
	t.Helper()
	b, err := os.ReadFile("testdata/distnameinfo-ext.t")
	if err != nil {
		t.Fatal(err)
	}
	_, data, _ := bytes.Cut(b, []byte("__DATA__\n"))
	var cases []referenceCase
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		for len(f) < 4 {
			f = append(f, "")
		}
		c := referenceCase{path: f[0], want: map[string]string{"dist": f[1], "version": f[2], "maturity": "released"}}
		if perlTrue(f[3]) {
			c.want["maturity"] = "developer"
		}
		cases = append(cases, c)
	}
	return cases
}

func TestDistInfoAgainstPathT(t *testing.T) {
	cases := loadPathT(t)
	if len(cases) < 30 {
		t.Fatalf("read only %d cases from path.t", len(cases))
	}
	for _, c := range cases {
		got := ParseDistInfo(c.path).properties()
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("ParseDistInfo(%q) (-path.t +got):\n%s", c.path, diff)
		}
	}
}

func TestDistInfoAgainstExtT(t *testing.T) {
	cases := loadExtT(t)
	if len(cases) < 500 {
		t.Fatalf("read only %d cases from ext.t", len(cases))
	}
	for _, c := range cases {
		d := ParseDistInfo(c.path)
		got := map[string]string{"dist": d.Dist, "version": d.Version, "maturity": d.Maturity}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("ParseDistInfo(%q) (-ext.t +got):\n%s", c.path, diff)
		}
	}
}

// extraDistInfoInputs are awkward names beyond the reference tests, for the
// differential test against Perl.
var extraDistInfoInputs = []string{
	"authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz",
	"authors/id/R/RJ/RJBS/Dist-Zilla-2.100860-TRIAL.tar.gz",
	"authors/id/X/XY/XYZ/sub/dir/Foo-Bar-v1.2.3.tar.bz2",
	"authors/id/X/XY/XYZ/Foo_Bar_-_1.tgz",
	"authors/id/X/XY/XYZ/0.tar.gz",
	"authors/id/X/XY/XYZ/perl-5.39.1.tar.gz",
	"authors/id/X/XY/XYZ/perl5.004_05.tar.gz",
	"authors/id/X/XY/XYZ/perl-5.8.9-RC1.tar.gz",
	"authors/id/X/XY/XYZ/Foo.pm-1.23.tar.gz",
	"authors/id/X/XY/XYZ/Foo-undef.tar.gz",
	"authors/id/X/XY/XYZ/a-v_v-v.zip",
	"authors/id/X/XY/XYZ/README",
	"authors/id/X/XY/XYZ/Foo-1.0.TAR.GZ",
	"authors/id/X/XYZ/XYZ/Foo-1.0.tar.gz",
	"x/authors/id/A/AB/ABC/Foo-1.tar.gz",
	"id/A/AB/ABC/Foo-1.tar.gz",
	"A/AB/ABC/Foo-1.tar.gz",
	"authors/id/A/AB/ABC/Unicode-Collate-Standard-V3_1_1-0.1.tar.gz",
	"authors/id/A/AB/ABC/" + strings.Repeat("a1_", 60) + ".tar.gz",
	"authors/id/A/AB/ABC/" + strings.Repeat("-+.", 40) + "x-1.zip",
}

// TestDistInfoDifferential runs Perl's own CPAN::DistnameInfo over every
// reference input and the extra ones and demands identical answers.
func TestDistInfoDifferential(t *testing.T) {
	// CI installs the reference, so there a missing one is a failure.
	skip := t.Skip
	if os.Getenv("CI") != "" {
		skip = t.Fatal
	}
	perl, err := exec.LookPath("perl")
	if err != nil {
		skip("perl not installed; .ci/run installs it with libcpan-distnameinfo-perl")
	}
	if exec.Command(perl, "-MCPAN::DistnameInfo", "-e1").Run() != nil {
		skip("CPAN::DistnameInfo not installed (Debian: libcpan-distnameinfo-perl); .ci/run installs it")
	}
	var inputs []string
	for _, c := range loadPathT(t) {
		inputs = append(inputs, c.path)
	}
	for _, c := range loadExtT(t) {
		inputs = append(inputs, c.path)
	}
	inputs = append(inputs, extraDistInfoInputs...)
	inputs = append(inputs, randomDistInfoInputs(20000)...)

	const script = `use CPAN::DistnameInfo;
while (my $p = <STDIN>) { chomp $p;
  my %h = CPAN::DistnameInfo->new($p)->properties;
  print join("\t", map { defined $h{$_} ? $h{$_} : "" } qw(pathname filename cpanid distvname extension dist version maturity)), "\n";
}`
	cmd := exec.Command(perl, "-e", script)
	cmd.Stdin = strings.NewReader(strings.Join(inputs, "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("perl: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(inputs) {
		t.Fatalf("perl answered %d lines for %d inputs", len(lines), len(inputs))
	}
	for i, in := range inputs {
		d := ParseDistInfo(in)
		got := strings.Join([]string{d.Pathname, d.Filename, d.CPANID, d.DistVName, d.Extension, d.Dist, d.Version, d.Maturity}, "\t")
		if got != lines[i] {
			t.Errorf("ParseDistInfo(%q):\n got %q\nperl %q", in, got, lines[i])
		}
	}
}

// randomDistInfoInputs makes n reproducible file names from the characters
// the heuristics care about, so that Perl and the port meet far more
// corner cases than the reference tests hold.
func randomDistInfoInputs(n int) []string {
	const alphabet = "aZv V_-.+0159/T.tar.gz"
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]string, 0, n)
	for range n {
		b := make([]byte, 1+r.IntN(25))
		for j := range b {
			b[j] = alphabet[r.IntN(len(alphabet))]
		}
		s := string(b)
		if r.IntN(2) == 0 {
			s += ".tar.gz"
		}
		if r.IntN(3) == 0 {
			s = "authors/id/A/AB/ABC/" + s
		}
		out = append(out, s)
	}
	return out
}

func FuzzParseDistInfo(f *testing.F) {
	for _, s := range extraDistInfoInputs {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		d := ParseDistInfo(p)
		if d.Maturity != "released" && d.Maturity != "developer" {
			t.Fatalf("maturity %q", d.Maturity)
		}
		if d.DistVName != "" && !strings.Contains(d.Pathname, d.DistVName) {
			t.Fatalf("distvname %q not in %q", d.DistVName, d.Pathname)
		}
		if !strings.HasSuffix(d.Pathname, d.Filename) {
			t.Fatalf("filename %q not a suffix of %q", d.Filename, d.Pathname)
		}
	})
}
