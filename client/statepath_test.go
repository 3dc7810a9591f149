package client

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

const statePathVectors = "../testdata/vectors-statepath.txt"

// unescapeVector reads a vector's origin: \xNN is the byte NN, \\ a
// backslash.
func unescapeVector(t testing.TB, s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], `\\`):
			b.WriteByte('\\')
			i++
		case strings.HasPrefix(s[i:], `\x`) && i+4 <= len(s):
			n, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
			if err != nil {
				t.Fatalf("bad escape in %q", s)
			}
			b.WriteByte(byte(n))
			i += 3
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// TestOriginDirNameVectors holds OriginDirName to the vectors the Perl
// client is held to (client/perl/t/statepath.t), so both keep an origin's
// trusted checkpoint in one directory.
func TestOriginDirNameVectors(t *testing.T) {
	f, err := os.Open(statePathVectors)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		origin, want, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("malformed vector line %q", line)
		}
		o := unescapeVector(t, origin)
		if got := OriginDirName(o); got != want {
			t.Errorf("OriginDirName(%q) = %q, want %q", o, got, want)
		}
		n++
	}
	if n < 30 {
		t.Fatalf("only %d vectors", n)
	}
}

// checkDirName asserts what every name must be: one path element, not
// "." or "..", no NUL, not too long for a file system.
func checkDirName(t *testing.T, origin, name string) {
	t.Helper()
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") || len(name) > 255 ||
		filepath.Base(name) != name || !utf8.ValidString(name) {
		t.Fatalf("OriginDirName(%q) = %q: not one safe path element", origin, name)
	}
}

// FuzzOriginDirName: every origin gets one safe path element, and two
// origins never share one (the escaping is undone exactly).
func FuzzOriginDirName(f *testing.F) {
	for _, s := range []string{"localhost/cpan-tlog", ".", "..", "../..", "%", "%sha256-00", strings.Repeat("/", 67), "\x00", "é"} {
		f.Add(s, s+"x")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		na, nb := OriginDirName(a), OriginDirName(b)
		checkDirName(t, a, na)
		checkDirName(t, b, nb)
		if a != b && na == nb {
			t.Fatalf("origins %q and %q share the directory %q", a, b, na)
		}
	})
}

// TestStateHostileOrigin: a checkpoint whose origin spells a way out of
// the state directory is kept inside it, in its own directory.
func TestStateHostileOrigin(t *testing.T) {
	for _, origin := range []string{"..", ".", "../../escaped", strings.Repeat("../", 80) + "x"} {
		t.Run(origin[:min(len(origin), 12)], func(t *testing.T) {
			top := t.TempDir()
			dir := filepath.Join(top, "state")
			st, err := OpenState(dir)
			if err != nil {
				t.Fatal(err)
			}
			k := newKeys(t, origin)
			if err := st.Advance(context.Background(), k.verified(t, 3, "x"), proverOf("x")); err != nil {
				t.Fatal(err)
			}
			var found []string
			filepath.Walk(top, func(p string, fi os.FileInfo, err error) error {
				if err == nil && !fi.IsDir() {
					found = append(found, p)
				}
				return nil
			})
			for _, p := range found {
				if rel, err := filepath.Rel(dir, p); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
					t.Errorf("%s written outside the state directory %s", p, dir)
				}
				if filepath.Dir(filepath.Dir(p)) == dir && filepath.Base(p) == "checkpoint" {
					t.Errorf("%s: the checkpoint is not under its origin's directory", p)
				}
			}
			if got, err := st.TrustedFor(origin, k.logVKey); err != nil || got == nil {
				t.Fatalf("TrustedFor(%q) = %v, %v", origin, got, err)
			}
		})
	}
}
