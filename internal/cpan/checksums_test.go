package cpan

import (
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseChecksumsReal(t *testing.T) {
	b, err := os.ReadFile("testdata/CHECKSUMS.rjbs") // written by CPAN::Checksums 2.14
	if err != nil {
		t.Fatal(err)
	}
	files, signed, err := ParseChecksums(b)
	if err != nil || signed {
		t.Fatalf("%v signed=%v", err, signed)
	}
	c := files["Sub-Install-0.929.tar.gz"]
	if c.Size == nil || *c.Size != 21122 || hex.EncodeToString(c.SHA256[:]) != "80b1e281d8cd3b2b31dac711f5c8a1657a87cd80bbe69af3924bcbeb4e5db077" || c.MD5 == "" {
		t.Errorf("Sub-Install: %+v", c)
	}
	if !files["sub"].IsDir || len(files) != 4 {
		t.Errorf("files: %+v", files)
	}
}

func TestParseChecksumsClearSigned(t *testing.T) {
	b, _ := os.ReadFile("testdata/CHECKSUMS.rjbs")
	body := strings.ReplaceAll(string(b), "\n# ", "\n- # ") // nothing starts with '-' here; escape a line anyway
	signed := "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n- " + strings.TrimPrefix(body, "") + "-----BEGIN PGP SIGNATURE-----\n\niQEz...\n-----END PGP SIGNATURE-----\n"
	files, isSigned, err := ParseChecksums([]byte(signed))
	if err != nil || !isSigned || len(files) != 4 {
		t.Fatalf("%v %v %d", err, isSigned, len(files))
	}
	// Text around the signed body is never read.
	evil := signed + "$cksum = { 'evil.tar.gz' => { 'size' => 1 } };\n"
	files, _, err = ParseChecksums([]byte(evil))
	if err != nil || len(files) != 4 {
		t.Errorf("text after the signature changed the result: %v %d", err, len(files))
	}
}

func TestParseChecksumsRejects(t *testing.T) {
	b, _ := os.ReadFile("testdata/CHECKSUMS.rjbs")
	g := string(b)
	for name, in := range map[string]string{
		"empty":           "",
		"perl code":       "system('rm -rf /');\n",
		"eval in value":   strings.Replace(g, "'size' => 21122", "'size' => `id`", 1),
		"double quotes":   strings.Replace(g, "'mtime' => '2026-11-24'", "'mtime' => \"@{[`id`]}\"", 1),
		"bad sha256":      strings.Replace(g, "80b1e281", "zzb1e281", 1),
		"short sha256":    strings.Replace(g, "80b1e281d8cd3b2b", "80b1", 1),
		"bad size":        strings.Replace(g, "'size' => 21122", "'size' => -1", 1),
		"unterminated":    g[:len(g)/2],
		"no semicolon":    strings.Replace(g, "};", "}", 1),
		"trailing code":   g + "print 1;\n",
		"slash in name":   strings.Replace(g, "'Sub-Install-0.929.tar.gz' =>", "'../x' =>", 1),
		"duplicate file":  strings.Replace(g, "'Test-Fatal-0.017.tar.gz' =>", "'Sub-Install-0.929.tar.gz' =>", 1),
		"duplicate key":   strings.Replace(g, "'size' => 21122", "'size' => 21122,\n    'size' => 1", 1),
		"unsigned armour": "-----BEGIN PGP SIGNATURE-----\n" + g,
		"signed, no sig":  "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA1\n\n" + g,
		"unescaped dash":  "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA1\n\n-x\n" + g + "-----BEGIN PGP SIGNATURE-----\n-----END PGP SIGNATURE-----\n",
		"oversized":       g + strings.Repeat(" ", MaxChecksumsSize),
	} {
		if _, _, err := ParseChecksums([]byte(in)); err == nil || !errors.Is(err, ErrBadChecksums) {
			t.Errorf("%s: %v, want ErrBadChecksums", name, err)
		}
	}
}

// TestParseChecksumsFromPerl writes CHECKSUMS for the sample tarballs with
// Perl's CPAN::Checksums and checks every sha256 and size.
func TestParseChecksumsFromPerl(t *testing.T) {
	skip := t.Skip
	if os.Getenv("CI") != "" {
		skip = t.Fatal
	}
	if exec.Command("perl", "-MCPAN::Checksums", "-e1").Run() != nil {
		skip("CPAN::Checksums not installed (Debian: libcpan-checksums-perl); .ci/run installs it")
	}
	dir := t.TempDir()
	src := "../../testdata/authors/id/R/RJ/RJBS"
	ents, _ := os.ReadDir(src)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(src, e.Name()))
		os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644)
	}
	if out, err := exec.Command("perl", "-MCPAN::Checksums=updatedir", "-e", "updatedir(shift)", dir).CombinedOutput(); err != nil {
		t.Fatalf("updatedir: %v %s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "CHECKSUMS"))
	if err != nil {
		t.Fatal(err)
	}
	files, _, err := ParseChecksums(b)
	if err != nil {
		t.Fatal(err)
	}
	sums, _ := os.ReadFile("../../testdata/SHA256SUMS")
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		sum, p, _ := strings.Cut(line, "  ")
		if !strings.HasPrefix(p, "authors/id/R/RJ/RJBS/") {
			continue
		}
		c, ok := files[filepath.Base(p)]
		if !ok || hex.EncodeToString(c.SHA256[:]) != sum {
			t.Errorf("%s: %+v, want sha256 %s", p, c, sum)
		}
		n++
	}
	if n != len(files) {
		t.Errorf("CHECKSUMS lists %d files, testdata has %d", len(files), n)
	}
}

func FuzzParseChecksums(f *testing.F) {
	b, _ := os.ReadFile("testdata/CHECKSUMS.rjbs")
	f.Add(b)
	f.Add([]byte("$cksum = {};\n__END__\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		files, _, err := ParseChecksums(b)
		if err != nil {
			return
		}
		for name := range files {
			if strings.Contains(name, "/") || name == "" {
				t.Fatalf("accepted file name %q", name)
			}
		}
	})
}
