package cpan

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const snapshot = `# carton snapshot format: version 1.0
DISTRIBUTIONS
  Test-Fatal-0.017
    pathname: R/RJ/RJBS/Test-Fatal-0.017.tar.gz
    provides:
      Test::Fatal 0.017
    requirements:
      Try::Tiny 0.07
  Try-Tiny-0.31
    pathname: E/ET/ETHER/Try-Tiny-0.31.tar.gz
    provides:
      Try::Tiny 0.31
    requirements:
      ExtUtils::MakeMaker 0
`

func TestParseSnapshot(t *testing.T) {
	got, err := ParseSnapshot([]byte(snapshot))
	if err != nil {
		t.Fatal(err)
	}
	want := []SnapshotDist{{"Test-Fatal-0.017", "R/RJ/RJBS/Test-Fatal-0.017.tar.gz"}, {"Try-Tiny-0.31", "E/ET/ETHER/Try-Tiny-0.31.tar.gz"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if got[1].Path() != "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz" {
		t.Errorf("Path() = %s", got[1].Path())
	}
}

func TestParseSnapshotRejects(t *testing.T) {
	r := func(old, new string) string { return strings.Replace(snapshot, old, new, 1) }
	for name, in := range map[string]string{
		"empty":             "",
		"no header":         strings.SplitN(snapshot, "\n", 2)[1],
		"version 2":         r("version 1.0", "version 2.0"),
		"no pathname":       r("    pathname: R/RJ/RJBS/Test-Fatal-0.017.tar.gz\n", ""),
		"bad pathname":      r("R/RJ/RJBS/Test-Fatal", "R/RJ/RJBS/../Test-Fatal"),
		"other author dir":  r("R/RJ/RJBS/Test-Fatal", "R/RX/RJBS/Test-Fatal"),
		"twice":             r("E/ET/ETHER/Try-Tiny-0.31.tar.gz", "R/RJ/RJBS/Test-Fatal-0.017.tar.gz"),
		"two pathnames":     r("    provides:\n      Test::Fatal", "    pathname: R/RJ/RJBS/X.tar.gz\n    provides:\n      Test::Fatal"),
		"odd indent":        r("  Try-Tiny-0.31", "   Try-Tiny-0.31"),
		"key without colon": r("    provides:\n      Try::Tiny 0.31", "    provides\n      Try::Tiny 0.31"),
	} {
		if _, err := ParseSnapshot([]byte(in)); !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("%s: %v, want ErrBadSnapshot", name, err)
		}
	}
}

func FuzzParseSnapshot(f *testing.F) {
	f.Add([]byte(snapshot))
	f.Fuzz(func(t *testing.T, b []byte) {
		dists, err := ParseSnapshot(b)
		if err != nil {
			return
		}
		for _, d := range dists {
			if _, err := ValidatePath(d.Path()); err != nil {
				t.Fatalf("accepted %q: %v", d.Pathname, err)
			}
		}
	})
}
