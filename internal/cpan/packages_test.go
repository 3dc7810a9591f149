package cpan

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const packagesFile = `File:         02packages.details.txt
URL:          http://www.perl.com/CPAN/modules/02packages.details.txt
Description:  Package names found in directory $CPAN/authors/id/
Columns:      package name, version, path
Intended-For: Automated fetch routines, namespace documentation.
Written-By:   PAUSE version 1.005
Line-Count:   3
Last-Updated: Tue, 24 Nov 2026 10:00:00 GMT

Test::Fatal                       0.017  R/RJ/RJBS/Test-Fatal-0.017.tar.gz
Try::Tiny                          0.31  E/ET/ETHER/Try-Tiny-0.31.tar.gz
Try::Tiny::ScopeGuard             undef  E/ET/ETHER/Try-Tiny-0.31.tar.gz
`

const permsFile = `File:        06perms.txt
Description: CSV file of upload permission to the CPAN per namespace
    best-permission is one of "m" for "modulelist", "f" for
    "first-come", "c" for "co-maint"
Columns:     package,userid,best-permission
Line-Count:  3
Written-By:  PAUSE version 1.005
Date:        Tue, 24 Nov 2026 10:00:00 GMT

Try::Tiny,DOY,f
Try::Tiny,ETHER,c
Foo'Bar,A-B,m
`

// readAll reads every record of an index file with next, from a reader
// made by open.
func readAll[R interface{ Next() (T, error) }, T any](s string, open func(io.Reader) (R, error)) ([]T, error) {
	r, err := open(strings.NewReader(s))
	if err != nil {
		return nil, err
	}
	var out []T
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, rec)
	}
}

func readPackages(s string) ([]Package, error) {
	return readAll[*PackagesReader, Package](s, NewPackagesReader)
}
func readPerms(s string) ([]Perm, error) { return readAll[*PermsReader, Perm](s, NewPermsReader) }

func TestReadPackages(t *testing.T) {
	got, err := readPackages(packagesFile)
	if err != nil {
		t.Fatal(err)
	}
	want := []Package{
		{"Test::Fatal", "0.017", "R/RJ/RJBS/Test-Fatal-0.017.tar.gz"},
		{"Try::Tiny", "0.31", "E/ET/ETHER/Try-Tiny-0.31.tar.gz"},
		{"Try::Tiny::ScopeGuard", "undef", "E/ET/ETHER/Try-Tiny-0.31.tar.gz"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got[1].CPANPath() != "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz" {
		t.Errorf("CPANPath: %s", got[1].CPANPath())
	}
	r := strings.NewReplacer
	body := func(old, new string) string { return r(old, new).Replace(packagesFile) }
	bad := map[string]string{
		"empty":               "",
		"no blank line":       strings.Split(packagesFile, "\n\n")[0],
		"no File header":      body("File:         02packages.details.txt\n", ""),
		"bad header":          body("URL:          http", "URL http"),
		"header twice":        body("Line-Count:   3\n", "Line-Count:   3\nLine-Count:   3\n"),
		"truncated":           strings.TrimSuffix(packagesFile, "Try::Tiny::ScopeGuard             undef  E/ET/ETHER/Try-Tiny-0.31.tar.gz\n"),
		"extra line":          packagesFile + "Foo 1 F/FO/FOO/Foo-1.tar.gz\n",
		"bad Line-Count":      body("Line-Count:   3", "Line-Count:   three"),
		"two fields":          body("0.017  R/RJ", "R/RJ"),
		"four fields":         body("0.017  R/RJ", "0.017 x R/RJ"),
		"bad package":         body("Test::Fatal ", "Test;Fatal "),
		"dotted path":         body("E/ET/ETHER/Try-Tiny-0.31.tar.gz\nTry::Tiny::", "E/ET/ETHER/../../../../evil/Evil-1.0.tar.gz\nTry::Tiny::"),
		"path trailing slash": body("R/RJ/RJBS/Test-Fatal-0.017.tar.gz", "R/RJ/RJBS/Test-Fatal-0.017.tar.gz/"),
		"path of other dir":   body("R/RJ/RJBS/Test", "R/RX/RJBS/Test"),
		"control byte":        body("0.017", "0.0\x0017"),
		"long line":           body("0.017", strings.Repeat("1", MaxIndexLine)),
		"long version":        body("0.017", strings.Repeat("1", 200)),
	}
	for name, in := range bad {
		if _, err := readPackages(in); err == nil || !errors.Is(err, ErrBadIndex) {
			t.Errorf("%s: %v, want ErrBadIndex", name, err)
		}
	}
}

func TestReadPerms(t *testing.T) {
	got, err := readPerms(permsFile)
	if err != nil {
		t.Fatal(err)
	}
	want := []Perm{{"Try::Tiny", "DOY", "f"}, {"Try::Tiny", "ETHER", "c"}, {"Foo'Bar", "A-B", "m"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	r := strings.NewReplacer
	body := func(old, new string) string { return r(old, new).Replace(permsFile) }
	for name, in := range map[string]string{
		"bad perm":     body("DOY,f", "DOY,x"),
		"lower id":     body("DOY,f", "doy,f"),
		"two fields":   body("DOY,f", "DOY"),
		"four fields":  body("DOY,f", "DOY,f,x"),
		"bad package":  body("Try::Tiny,DOY", "Try Tiny,DOY"),
		"truncated":    strings.TrimSuffix(permsFile, "Foo'Bar,A-B,m\n"),
		"no header":    "Try::Tiny,DOY,f\n",
		"continuation": strings.Replace(permsFile, "File:        06perms.txt\n", "    File: x\n", 1),
	} {
		if _, err := readPerms(in); err == nil || !errors.Is(err, ErrBadIndex) {
			t.Errorf("%s: %v, want ErrBadIndex", name, err)
		}
	}
}

// FuzzReadPackages: whatever the bytes, the reader returns lines that are
// valid packages with valid CPAN paths, or ErrBadIndex; it never panics.
// Seeds live in testdata/fuzz/FuzzReadPackages.
func FuzzReadPackages(f *testing.F) {
	f.Add(packagesFile)
	f.Add(permsFile)
	f.Fuzz(func(t *testing.T, s string) {
		pkgs, err := readPackages(s)
		if err != nil && !errors.Is(err, ErrBadIndex) {
			t.Fatalf("error %v is not ErrBadIndex", err)
		}
		for _, p := range pkgs {
			if !ValidPackage(p.Name) {
				t.Fatalf("accepted package %q", p.Name)
			}
			if _, err := ValidatePath(p.CPANPath()); err != nil {
				t.Fatalf("accepted path %q: %v", p.Path, err)
			}
		}
		perms, err := readPerms(s)
		if err != nil && !errors.Is(err, ErrBadIndex) {
			t.Fatalf("error %v is not ErrBadIndex", err)
		}
		for _, p := range perms {
			if !ValidID(p.ID) || !ValidPackage(p.Package) || len(p.Perm) != 1 {
				t.Fatalf("accepted %+v", p)
			}
		}
	})
}
