package noverify

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
)

const vectorsFile = "../../testdata/vectors-noverify.txt"

type vector struct {
	line                        int
	patterns, subject, expected string
}

// unescape decodes a vector field: \xNN is the byte NN, \\ a backslash.
func unescape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], `\\`):
			b.WriteByte('\\')
			i++
		case strings.HasPrefix(s[i:], `\x`) && i+4 <= len(s):
			v, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
			if err != nil {
				return "", err
			}
			b.WriteByte(byte(v))
			i += 3
		default:
			return "", errors.New("bad escape at " + s[i:])
		}
	}
	return b.String(), nil
}

func readVectors(t testing.TB) []vector {
	t.Helper()
	f, err := os.Open(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vs []vector
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Split(line, "\t")
		if len(fields) != 3 {
			t.Fatalf("%s:%d: %d fields, want 3", vectorsFile, n, len(fields))
		}
		v := vector{line: n}
		for i, dst := range []*string{&v.patterns, &v.subject, &v.expected} {
			if *dst, err = unescape(fields[i]); err != nil {
				t.Fatalf("%s:%d: %v", vectorsFile, n, err)
			}
		}
		vs = append(vs, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

// TestVectors holds Parse and Match to the vectors the Perl implementation
// is held to too.
func TestVectors(t *testing.T) {
	vs := readVectors(t)
	if len(vs) < 40 {
		t.Fatalf("%d vectors, want at least 40", len(vs))
	}
	for _, v := range vs {
		p, err := Parse(v.patterns)
		if v.expected == "invalid" {
			var pe *PatternError
			if !errors.As(err, &pe) {
				t.Errorf("line %d: Parse(%q) = %v, %v; want a *PatternError", v.line, v.patterns, p, err)
			} else if !strings.Contains(v.patterns, pe.Pattern) || !strings.Contains(err.Error(), quote(pe.Pattern)) {
				t.Errorf("line %d: Parse(%q): error %q does not name the pattern", v.line, v.patterns, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("line %d: Parse(%q): %v", v.line, v.patterns, err)
			continue
		}
		got, ok := p.Match(v.subject)
		if !ok {
			got = "-"
		}
		if got != v.expected {
			t.Errorf("line %d: Parse(%q).Match(%q) = %q, want %q", v.line, v.patterns, v.subject, got, v.expected)
		}
	}
}

// TestParseErrors checks what the refusals say: the pattern, why, and
// what to write instead.
func TestParseErrors(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"a, b c", `CPANTLOG_NOVERIFY: pattern "b c" has white space or a control character inside it (at byte 1): separate patterns with commas`},
		{"/x/\x1b[2J", `pattern "/x/\x1b[2J" has white space or a control character inside it (at byte 3)`},
		{"/x/\xff", `pattern "/x/\xff" is not valid UTF-8`},
		{"/x/a\u00a0b", `pattern "/x/a\xc2\xa0b" has white space`},
		{"/x,*", `pattern "*" would exempt everything: name what to exempt, such as authors/id/M/MY/MYCOMPANY`},
		{"https://*", `pattern "https://*" would exempt every URL of its scheme: name the host`},
		{"authors/id/*/*/*", `pattern "authors/id/*/*/*" would exempt every CPAN author's uploads (a wildcard at or above the PAUSE id): name the author directory, such as authors/id/M/MY/MYCOMPANY or authors/id/*/*/MYCOMPANY`},
		{"modules", `pattern "modules" matches the index file modules/02packages.details.txt.gz, which chooses what is installed and is never exempt: name the distributions' author directory instead`},
		{"authors/01mailrc.txt.gz", `pattern "authors/01mailrc.txt.gz" matches the index file authors/01mailrc.txt.gz`},
		{"authors/id/M/MY/MYCOMPANY//", `pattern "authors/id/M/MY/MYCOMPANY//" ends in "/": a pattern covers everything below it already; write "authors/id/M/MY/MYCOMPANY"`},
		{`/x/"q\`, ``}, // '"' and '\' are literal, and valid
	} {
		_, err := Parse(tt.in)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("Parse(%q): %v", tt.in, err)
		case tt.want != "" && err == nil:
			t.Errorf("Parse(%q) succeeded, want %q", tt.in, tt.want)
		case tt.want != "" && !strings.Contains(err.Error(), tt.want):
			t.Errorf("Parse(%q): %q, want it to contain %q", tt.in, err, tt.want)
		}
	}
	var pe *PatternError
	if _, err := Parse(`/a,/b"\`); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(`/a,/b/"\/`); !errors.As(err, &pe) || pe.Error() != `CPANTLOG_NOVERIFY: pattern "/b/\x22\x5c/" ends in "/": a pattern covers everything below it already; write "/b/\x22\x5c"` {
		t.Errorf("quoting: %v", err)
	}
}

func TestNilAndEmpty(t *testing.T) {
	var p *Patterns
	if pat, ok := p.Match("/x"); ok || pat != "" {
		t.Errorf("nil Patterns matched: %q", pat)
	}
	if p.String() != "" {
		t.Errorf("nil String = %q", p.String())
	}
	for _, s := range []string{"", " ", ",", " , \t,\n"} {
		p, err := Parse(s)
		if err != nil || p == nil || p.String() != "" {
			t.Errorf("Parse(%q) = %v, %v", s, p, err)
		}
		if pat, ok := p.Match("authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz"); ok {
			t.Errorf("Parse(%q) matched with %q", s, pat)
		}
	}
	p, err := Parse(" /a ,, /b\t")
	if err != nil || p.String() != "/a,/b" {
		t.Errorf("Parse = %v, %v", p, err)
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv(EnvVar, "")
	if p, err := FromEnv(); err != nil || p.String() != "" {
		t.Errorf("empty: %v, %v", p, err)
	}
	os.Unsetenv(EnvVar)
	if p, err := FromEnv(); err != nil || p.String() != "" {
		t.Errorf("unset: %v, %v", p, err)
	}
	t.Setenv(EnvVar, "authors/id/M/MY/MYCOMPANY, /home/me/src")
	p, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if pat, ok := p.Match("/home/me/src/MyApp"); !ok || pat != "/home/me/src" {
		t.Errorf("Match = %q, %v", pat, ok)
	}
	t.Setenv(EnvVar, "/home/me/src,authors/*")
	if _, err := FromEnv(); err == nil || !strings.HasPrefix(err.Error(), "CPANTLOG_NOVERIFY: pattern \"authors/*\"") {
		t.Errorf("FromEnv with authors/*: %v", err)
	}
}

// TestIndexPaths: the index files refused here are the log's.
func TestIndexPaths(t *testing.T) {
	if strings.Join(IndexPaths, " ") != strings.Join(cpan.IndexPaths, " ") {
		t.Errorf("IndexPaths = %q, cpan.IndexPaths = %q", IndexPaths, cpan.IndexPaths)
	}
}

// TestBadRune: the spelled-out list is Go's unicode.IsControl and IsSpace.
func TestBadRune(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if badRune(r) != (unicode.IsControl(r) || unicode.IsSpace(r)) {
			t.Errorf("badRune(%U) = %v", r, badRune(r))
		}
	}
}

// reference is Match by a regular expression: the glob anchored at the
// start and followed by '/' or the end. Go's regexp reads invalid UTF-8 a
// byte at a time, as the matcher does.
func reference(pattern, subject string) bool {
	if regexp.MustCompile(`(?:\A|/)\.\.?(?:/|\z)|[\\?#]|%(?i:2e|2f|5c)`).MatchString(subject) {
		return false // a subject that could lead elsewhere
	}
	var b strings.Builder
	b.WriteString(`\A`)
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(`[^/]*`)
		case '?':
			b.WriteString(`[^/]`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`(?:/|\z)`)
	return regexp.MustCompile(b.String()).MatchString(subject)
}

var alphabet = []string{"a", "b", "/", "*", "?", "é", "\xff", "\xc3", ".", "-", ":", "authors", "id", "modules", " ", ",", "..", "%2E", "#"}

func randString(r *rand.Rand, n int) string {
	var b strings.Builder
	for i := r.Intn(n + 1); i > 0; i-- {
		b.WriteString(alphabet[r.Intn(len(alphabet))])
	}
	return b.String()
}

var clean = []string{"a", "b", "/", "/", "*", "?", "é", ".", "-", ":", "authors", "id", "modules", "E", "ETHER"}

// randCase returns a random CPANTLOG_NOVERIFY value, mostly of valid
// patterns, and a subject, often one that a pattern of it matches.
func randCase(r *rand.Rand) (patterns, subject string) {
	var list []string
	for n := 1 + r.Intn(3); n > 0; n-- {
		var b strings.Builder
		if r.Intn(5) == 0 {
			b.WriteString(randString(r, 8))
		} else {
			for i := 1 + r.Intn(8); i > 0; i-- {
				b.WriteString(clean[r.Intn(len(clean))])
			}
		}
		list = append(list, b.String())
	}
	sep := []string{",", ", ", " ,", ",,"}
	patterns = strings.Join(list, sep[r.Intn(len(sep))])
	if r.Intn(4) == 0 {
		return patterns, randString(r, 10)
	}
	var b strings.Builder
	for _, c := range list[r.Intn(len(list))] {
		switch c {
		case '*':
			for i := r.Intn(3); i > 0; i-- {
				b.WriteString([]string{"a", "é", "\xff", "\xc3", "*"}[r.Intn(5)])
			}
		case '?':
			b.WriteString([]string{"a", "é", "\xff", "\xc3", "/", ""}[r.Intn(6)])
		default:
			b.WriteRune(c)
		}
	}
	b.WriteString([]string{"", "/", "/x", "x", "/a/b", "é"}[r.Intn(6)])
	return patterns, b.String()
}

// TestMatchReference compares Match with the regexp reference on random
// values and subjects.
func TestMatchReference(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	matched, valid := 0, 0
	for i := 0; i < 20000; i++ {
		patterns, subject := randCase(r)
		p, err := Parse(patterns)
		if err != nil {
			continue
		}
		valid++
		want := ""
		for _, pat := range p.list {
			if reference(pat, subject) {
				want = pat
				break
			}
		}
		got, ok := p.Match(subject)
		if got != want || ok != (want != "") {
			t.Errorf("Parse(%q).Match(%q) = %q, %v; reference %q", patterns, subject, got, ok, want)
		}
		if ok {
			matched++
		}
	}
	t.Logf("%d valid values, %d matched", valid, matched)
	if valid < 5000 || matched < 3000 {
		t.Errorf("only %d random values were valid, %d matched", valid, matched)
	}
}

// TestPerlAgrees runs CPAN::TLog::NoVerify on random inputs and compares
// its answers, error messages included, with this package's.
func TestPerlAgrees(t *testing.T) {
	perl, err := exec.LookPath("perl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("perl missing in CI: .ci/run installs it, and Go and Perl must agree")
		}
		t.Skip("no perl")
	}
	lib, _ := filepath.Abs("../perl/lib")
	const script = `
use strict; use warnings; use CPAN::TLog::NoVerify;
while (my $l = <STDIN>) {
    chomp $l;
    my ($p, $s) = map { pack 'H*', $_ } split / /, $l, -1;
    my $r = eval { CPAN::TLog::NoVerify::parse($p) };
    my $m = $r ? $r->match($s) : undef;
    my $out = $r ? (defined $m ? "match $m" : "none") : "error " . (ref $@ eq 'CPAN::TLog::NoVerify::Error' && $@->{code} == 2 ? $@->{message} : "not an error object: $@");
    print unpack('H*', $out), "\n";
}`
	r := rand.New(rand.NewSource(2))
	var in bytes.Buffer
	var cases [][2]string
	for _, v := range readVectors(t) {
		cases = append(cases, [2]string{v.patterns, v.subject})
	}
	for i := 0; i < 5000; i++ {
		patterns, subject := randCase(r)
		cases = append(cases, [2]string{patterns, subject})
	}
	for _, c := range cases {
		in.WriteString(hex.EncodeToString([]byte(c[0])) + " " + hex.EncodeToString([]byte(c[1])) + "\n")
	}
	cmd := exec.Command(perl, "-I"+lib, "-e", script)
	cmd.Stdin = &in
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("perl: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(cases) {
		t.Fatalf("perl answered %d cases of %d", len(lines), len(cases))
	}
	kinds := map[string]int{}
	for i, c := range cases {
		var want string
		p, err := Parse(c[0])
		if err != nil {
			want = "error " + err.Error()
		} else if m, ok := p.Match(c[1]); ok {
			want = "match " + m
		} else {
			want = "none"
		}
		kind, _, _ := strings.Cut(want, " ")
		var pe *PatternError
		if errors.As(err, &pe) {
			kind = strings.Join(strings.Fields(pe.Reason)[:4], " ")
		}
		kinds[kind]++
		got, _ := hex.DecodeString(lines[i])
		if string(got) != want {
			t.Errorf("patterns %q subject %q: perl %q, go %q", c[0], c[1], got, want)
		}
	}
	t.Logf("%d cases: %v", len(cases), kinds)
	if kinds["match"] < 1000 || kinds["none"] < 1000 || len(kinds) < 9 {
		t.Errorf("the random cases do not cover enough: %v", kinds)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("authors/id/M/MY/MYCOMPANY, /home/me/src", "/home/me/src/x")
	f.Fuzz(func(t *testing.T, s, subject string) {
		p, err := Parse(s)
		if err != nil {
			var pe *PatternError
			if !errors.As(err, &pe) || !strings.Contains(s, pe.Pattern) {
				t.Fatalf("Parse(%q): %v", s, err)
			}
			return
		}
		again, err := Parse(p.String())
		if err != nil || again.String() != p.String() || len(again.list) != len(p.list) {
			t.Fatalf("Parse(%q).String() = %q does not parse back: %v, %v", s, p.String(), again, err)
		}
		for _, ip := range IndexPaths {
			if m, ok := p.Match(ip); ok {
				t.Fatalf("Parse(%q) matches the index file %s by %q", s, ip, m)
			}
		}
		// The checks below are quadratic in the number of patterns.
		list := p.list
		if len(list) > 64 {
			list = list[:64]
		}
		for _, pat := range list {
			if strings.TrimSpace(pat) != pat || strings.Contains(pat, ",") {
				t.Fatalf("Parse(%q) kept %q", s, pat)
			}
			if !strings.ContainsAny(pat, "*?") && !LeadsElsewhere(pat) {
				if m, ok := p.Match(pat); !ok {
					t.Fatalf("Parse(%q).Match(%q) = %q, %v", s, pat, m, ok)
				}
			}
		}
		if len(list) < len(p.list) {
			return
		}
		m, ok := p.Match(subject)
		want := ""
		for _, pat := range p.list {
			if reference(pat, subject) {
				want = pat
				break
			}
		}
		if m != want || ok != (want != "") {
			t.Fatalf("Parse(%q).Match(%q) = %q, %v; reference %q", s, subject, m, ok, want)
		}
	})
}
