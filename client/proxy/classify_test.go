package proxy

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
)

func classifyURL(t testing.TB, raw string) (string, Class, error) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		return "", 0, err
	}
	return Classify(u.EscapedPath(), u.Path)
}

func TestClassify(t *testing.T) {
	good := map[string]struct {
		path  string
		class Class
	}{
		"/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz":       {"authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", Upload},
		"/authors/id/A/AB/ABC/sub/dir/Foo-1.0.tar.gz":       {"authors/id/A/AB/ABC/sub/dir/Foo-1.0.tar.gz", Upload},
		"/authors/id/A/AB/ABC/%C3%9Cn%C3%AFcode-1.0.tar.gz": {"authors/id/A/AB/ABC/Ünïcode-1.0.tar.gz", Upload},
		"/authors/id/E/ET/ETHER/CHECKSUMS":                  {"authors/id/E/ET/ETHER/CHECKSUMS", Checksums},
		"/authors/id/E/ET/ETHER/sub/CHECKSUMS":              {"authors/id/E/ET/ETHER/sub/CHECKSUMS", Checksums},
		"/modules/02packages.details.txt.gz":                {"modules/02packages.details.txt.gz", Index},
		"/modules/06perms.txt":                              {"modules/06perms.txt", Index},
		"/authors/01mailrc.txt.gz":                          {"authors/01mailrc.txt.gz", Index},
	}
	for raw, want := range good {
		p, c, err := classifyURL(t, raw)
		if err != nil || p != want.path || c != want.class {
			t.Errorf("Classify(%s) = %q, %v, %v; want %q, %v", raw, p, c, err, want.path, want.class)
		}
	}
	bad := []string{
		"/", "", "/index.html", "/robots.txt",
		"/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz/",
		"/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz%2F",
		"/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz%2f",
		"/authors/id/E/ET/ETHER%2FTry-Tiny-0.31.tar.gz",
		"/authors/id/E/ET/ETHER%5CTry-Tiny-0.31.tar.gz",
		"/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz%00",
		"/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz%0A",
		"/authors/id/E/ET/ETHER/a%FFb.tar.gz",
		"/authors/id/CHECKSUMS",
		"/authors/id/E/ET/CHECKSUMS",
		"/authors/id/E/CHECKSUMS",
		"/authors/evil/Evil-1.0.tar.gz",
		"/authors/Evil-1.0.tar.gz",
		"/authors/id/E/ET/ETHER/../../../../evil/Evil-Module-1.0.tar.gz",
		"/authors/id/E/ET/ETHER/%2e%2e/x.tar.gz",
		"/authors/id/E/ET/ETHER/%2E%2E/x.tar.gz",
		"/authors/id/E/ET/ETHER/./x.tar.gz",
		"/authors/id/E/ET/ETHER//x.tar.gz",
		"//authors/id/E/ET/ETHER/x.tar.gz",
		"/authors/id/e/et/ether/x.tar.gz",
		"/AUTHORS/ID/E/ET/ETHER/x.tar.gz",
		"/authors/id/E/EX/ETHER/x.tar.gz",
		"/authors/id/E/ET/ETHER/x%E2%80%8B.tar.gz",
		"/authors/id/E/ET/ETHER/x%E2%80%AE.tar.gz",
		"/authors/id/E/ET/ETHER/x%E3%80%80.tar.gz",
		"/authors/id/E/ET/ETHER/x%20y.tar.gz",
		"/modules/02packages.details.txt.gz/",
		"/modules/03modlist.data",
		"/modules/02PACKAGES.details.txt.gz",
		"/modules/../modules/02packages.details.txt.gz",
		"/modules/RECENT-1h.json",
		"/authors/id/",
		"/authors/id/E/ET/ETHER/",
	}
	for _, raw := range bad {
		p, c, err := classifyURL(t, raw)
		if err == nil {
			t.Errorf("Classify(%s) = %q, %v; want a refusal", raw, p, c)
		} else if !errors.Is(err, ErrNotServed) && !strings.Contains(err.Error(), "invalid URL escape") {
			t.Errorf("Classify(%s): %v does not wrap ErrNotServed", raw, err)
		}
	}
}

// FuzzClassify checks the classifier's promise: whatever it accepts is an
// index file, or a valid CPAN path under an author directory that is
// exactly the decoded request path, so what gets verified is what gets
// fetched. Seeds live in testdata/fuzz/FuzzClassify.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{"/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", "/authors/id/E/ET/ETHER/CHECKSUMS", "/modules/02packages.details.txt.gz", "/authors/id/E/ET/ETHER/x.tar.gz%2F", "/authors/id/E/ET/ETHER/../../../../evil/x.tar.gz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		p, c, err := Classify(u.EscapedPath(), u.Path)
		if err != nil {
			if c != 0 || p != "" {
				t.Fatalf("refusal with a class: %q %v", p, c)
			}
			return
		}
		if "/"+p != u.Path {
			t.Fatalf("Classify(%q) = %q, not the decoded path %q", raw, p, u.Path)
		}
		if u.JoinPath().Path != u.Path {
			t.Fatalf("Classify(%q) accepted a path that is not clean", raw)
		}
		switch c {
		case Index:
			if !cpan.IsIndexPath(p) {
				t.Fatalf("Classify(%q): %q is not an index file", raw, p)
			}
		case Modlist:
			if p != ModlistPath {
				t.Fatalf("Classify(%q): %q as the module list", raw, p)
			}
		case Upload, Checksums:
			if _, err := cpan.ValidatePath(p); err != nil {
				t.Fatalf("Classify(%q) accepted %q: %v", raw, p, err)
			}
		default:
			t.Fatalf("Classify(%q): class %v", raw, c)
		}
	})
}
