package cpan

import (
	"errors"
	"strings"
	"testing"
)

func TestValidatePath(t *testing.T) {
	good := map[string]string{
		"authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz":                       "ETHER",
		"authors/id/A/AB/AB/x":                                             "AB",
		"authors/id/A/A-/A-B/x.zip":                                        "A-B",
		"authors/id/A/AB/ABC/sub/dir/Foo-1.0.tar.gz":                       "ABC",
		"authors/id/A/AB/ABC/Ünïcode-1.0.tar.gz":                           "ABC",
		"authors/id/Z/Z9/Z99/" + strings.Repeat("a", 255-len("Z/Z9/Z99/")): "Z99",
	}
	for p, want := range good {
		id, err := ValidatePath(p)
		if err != nil || id != want {
			t.Errorf("ValidatePath(%q) = %q, %v; want %q, nil", p, id, err, want)
		}
	}
	bad := []string{
		"",
		"authors/id/",
		"Try-Tiny-0.31.tar.gz",
		"/authors/id/E/ET/ETHER/x",
		"authors/id/E/ET/ETHER",
		"authors/id/E/ET/ETHER/",
		"authors/id/E/ET/ETHER//x",
		"authors/id/E/ET/ETHER/../x",
		"authors/id/E/ET/ETHER/./x",
		"authors/id/E/ET/ETHER/x/..",
		"authors/id/E/EX/ETHER/x",
		"authors/id/X/ET/ETHER/x",
		"authors/id/e/et/ether/x",
		"authors/id/E/E/E/x",
		"authors/id/E/ET/ET HER/x",
		"authors/id/E/ET/ETHER/a b",
		"authors/id/E/ET/ETHER/a\tb",
		"authors/id/E/ET/ETHER/a\nb",
		"authors/id/E/ET/ETHER/a\x00b",
		"authors/id/E/ET/ETHER/a\x7fb",
		"authors/id/E/ET/ETHER/a\xffb",
		"authors/id/E/ET/ETHER/a\u0085b",
		"authors/id/E/ET/ETHER/a\\b",
		"authors/id/E/ET/ETHER/" + strings.Repeat("a", 256-len("E/ET/ETHER/")),
		"authors/id/A/AB/" + "A" + strings.Repeat("B", 32) + "/x",
		"modules/02packages.details.txt.gz",
		// Look-alikes of a real path: invisible, space-like and bidi characters.
		"authors/id/E/ET/ETHER/Try-Tiny-0.31\u200b.tar.gz",
		"authors/id/E/ET/ETHER/\ufeffTry-Tiny-0.31.tar.gz",
		"authors/id/E/ET/ETHER/Try-Tiny\u2003-0.31.tar.gz",
		"authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz\u3000",
		"authors/id/E/ET/ETHER/Try-Tiny-0.31\u202e.tar.gz",
		"authors/id/E/ET/ETHER/a\u00a0b",
		"authors/id/E/ET/ETHER/a\u2028b",
		"authors/id/E/ET/ETHER/a\u200db",
		"authors/id/E/ET/ETHER/a\ufffdb",
	}
	for _, p := range bad {
		if id, err := ValidatePath(p); err == nil {
			t.Errorf("ValidatePath(%q) = %q, nil; want an error", p, id)
		} else if !errors.Is(err, ErrBadPath) {
			t.Errorf("ValidatePath(%q) error %v does not wrap ErrBadPath", p, err)
		}
	}
}

func TestMayOverwrite(t *testing.T) {
	for p, want := range map[string]bool{
		"authors/id/A/AB/ABC/README":                  true,
		"authors/id/A/AB/ABC/Foo-1.0.readme":          true,
		"authors/id/A/AB/ABC/Foo-1.0.README":          true,
		"authors/id/A/AB/ABC/notes.txt":               true,
		"authors/id/A/AB/ABC/notes.txt.gz":            true,
		"authors/id/A/AB/ABC/doc.pdf.bz2":             true,
		"authors/id/A/AB/ABC/x.html":                  true,
		"authors/id/A/AB/ABC/x.mkdn":                  true,
		"authors/id/A/AB/ABC/x.md":                    true,
		"authors/id/A/AB/ABC/x.xml":                   true,
		"authors/id/A/AB/ABC/META.yml":                true,
		"authors/id/A/AB/ABC/META.json":               true,
		"authors/id/A/AB/ABC/x.rdf":                   true,
		"authors/id/A/AB/ABC/x.pod":                   true,
		"authors/id/A/AB/ABC/Foo-1.0.tar.gz":          false,
		"authors/id/A/AB/ABC/Foo-1.0.zip":             false,
		"authors/id/A/AB/ABC/x.md.zip":                false,
		"authors/id/A/AB/ABC/x.txt.xz":                false,
		"authors/id/A/AB/ABC/CHECKSUMS":               false,
		"authors/id/A/AB/ABC/Foo-1.0.tar.gz.sigstore": false,
		"authors/id/A/AB/ABC/podcast.tar.gz":          false,
	} {
		if got := MayOverwrite(p); got != want {
			t.Errorf("MayOverwrite(%q) = %v, want %v", p, got, want)
		}
	}
}

func FuzzValidatePath(f *testing.F) {
	f.Add("authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz")
	f.Add("authors/id/E/ET/ETHER/../x")
	for _, p := range []string{"authors/id/E/ET/ETHER/Try Tiny.tar.gz", "authors/id/E/ET/ETHER/Ünï.tar.gz", "authors/id/E/ET/ETHER/a\\b", "authors/id/E/ET/ETHER/a\x7f", "authors/id/E/ET/ETHER/a\u200bb", "authors/id/E/ET/ETHER/\xff", "authors/id/E/ET/ETHER//x", "authors/id/E/ET/ETHER/./x", "authors/id/E/ET/ETHER", "authors/id/E/ET/ETHER/", "authors/id/E/EU/ETHER/x"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		id, err := ValidatePath(p)
		// The printable-ASCII fast path skips the rune checks only where
		// they pass: whatever they refuse, ValidatePath refuses the same way.
		if rest, ok := strings.CutPrefix(p, AuthorsPrefix); ok && len(rest) <= MaxPathBelowAuthors {
			if runeErr := checkRunes(p, rest); runeErr != nil && (err == nil || err.Error() != runeErr.Error()) {
				t.Fatalf("ValidatePath(%q) = %q, %v; the rune checks say %v", p, id, err, runeErr)
			}
		}
		if err != nil {
			return
		}
		// Whatever passes must be safe to join under a mirror root.
		if strings.Contains(p, "/../") || strings.Contains(p, "//") || strings.HasSuffix(p, "/..") {
			t.Fatalf("accepted %q", p)
		}
		if !strings.HasPrefix(p, AuthorsPrefix+id[:1]+"/"+id[:2]+"/"+id+"/") {
			t.Fatalf("accepted %q with id %q", p, id)
		}
	})
}

// FuzzMayOverwrite: the suffix check agrees with PAUSE's rule as a regexp
// on every name.
func FuzzMayOverwrite(f *testing.F) {
	for _, s := range []string{"README", "a/Foo-1.0.readme", "x.TXT.GZ", "x.md.bz2", "x.md.gz.gz", "x.tar.gz", "x.json", "x.jSoN.Bz2", "a.pm", "readme.tar", ".gz", "x.m\u212adn", "é.md"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if got, want := MayOverwrite(p), overwritableRE.MatchString(p); got != want {
			t.Fatalf("MayOverwrite(%q) = %v, the regexp says %v", p, got, want)
		}
	})
}

// FuzzParseProofPath: a name ParseProofPath accepts is exactly the name
// ProofPath gives for what it returned.
func FuzzParseProofPath(f *testing.F) {
	var sha [32]byte
	sha[0] = 0xab
	f.Add(ProofPath("authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", sha))
	f.Add(ProofPath("modules/02packages.details.txt.gz", sha))
	f.Add(ProofPath("authors/id/E/ET/ETHER/Try-Tiny-0.31.readme", sha))
	f.Add("tlog/proofs/modules/02packages.details.txt.gz.tlog-proof")
	f.Fuzz(func(t *testing.T, name string) {
		p, sum, perContent, ok := ParseProofPath(name)
		if !ok {
			return
		}
		if perContent != (IsIndexPath(p) || MayOverwrite(p)) {
			t.Fatalf("%q: per-content %v for %q", name, perContent, p)
		}
		if got := ProofPath(p, sum); got != name {
			t.Fatalf("ParseProofPath(%q) = %q, %x; ProofPath gives %q", name, p, sum, got)
		}
	})
}

func TestParseProofPath(t *testing.T) {
	var sha [32]byte
	sha[31] = 1
	for _, c := range []struct {
		name string
		path string
		ok   bool
	}{
		{ProofPath("authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", sha), "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", true},
		{ProofPath("modules/06perms.txt", sha), "modules/06perms.txt", true},
		{"tlog/proofs/modules/06perms.txt.tlog-proof", "", false},                                 // an index proof always names its content
		{"tlog/proofs/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", "", false},                     // no suffix
		{"proofs/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz.tlog-proof", "", false},               // wrong prefix
		{"tlog/proofs/modules/06perms.txt." + strings.Repeat("A", 64) + ".tlog-proof", "", false}, // upper-case hex
	} {
		p, _, _, ok := ParseProofPath(c.name)
		if ok != c.ok || p != c.path {
			t.Errorf("ParseProofPath(%q) = %q, %v; want %q, %v", c.name, p, ok, c.path, c.ok)
		}
	}
}

func BenchmarkValidatePath(b *testing.B) {
	for b.Loop() {
		if _, err := ValidatePath("authors/id/S/SY/SYNTH123/Synthetic-Dist-4567-1.89.tar.gz"); err != nil {
			b.Fatal(err)
		}
	}
}
