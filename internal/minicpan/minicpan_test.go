package minicpan

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
)

// TestBuild: the mirror's CHECKSUMS and 02packages are what CPAN's own
// parsers accept, and they describe the files as copied.
func TestBuild(t *testing.T) {
	to := t.TempDir()
	tr, err := Build("../../testdata", to)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Uploads) < 8 {
		t.Fatalf("%d distributions", len(tr.Uploads))
	}
	for _, f := range tr.Uploads {
		b, err := os.ReadFile(filepath.Join(to, filepath.FromSlash(f.Path)))
		if err != nil || !bytes.Equal(b, f.Content) {
			t.Fatalf("%s not copied: %v", f.Path, err)
		}
		cks, err := os.ReadFile(filepath.Join(to, filepath.FromSlash(filepath.Dir(f.Path)), "CHECKSUMS"))
		if err != nil {
			t.Fatal(err)
		}
		files, _, err := cpan.ParseChecksums(cks)
		if err != nil {
			t.Fatalf("CHECKSUMS of %s: %v", f.Path, err)
		}
		c, ok := files[filepath.Base(f.Path)]
		if !ok || c.SHA256 == nil || *c.SHA256 != sha256.Sum256(f.Content) || c.Size == nil || *c.Size != uint64(len(f.Content)) {
			t.Errorf("CHECKSUMS entry of %s: %+v", f.Path, c)
		}
	}
	gzb, err := os.ReadFile(filepath.Join(to, "modules", "02packages.details.txt.gz"))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gzb))
	if err != nil {
		t.Fatal(err)
	}
	pr, err := cpan.NewPackagesReader(zr)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for {
		p, err := pr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		found[p.Name] = p.CPANPath()
	}
	if found["Try::Tiny"] != "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz" || found["Test::Fatal"] != "authors/id/R/RJ/RJBS/Test-Fatal-0.017.tar.gz" {
		t.Errorf("02packages: %v", found)
	}
}
