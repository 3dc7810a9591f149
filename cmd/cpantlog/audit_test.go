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

// TestAudit (#38): cpantlog audit checks a cpanfile.snapshot, and a local/
// tree cpanm installed into, against the log and against the real CPANSA
// data Debian ships (libcpan-audit-perl): a pinned Archive-Tar 1.36 is
// named with its advisories; a tarball whose bytes differ from the log's
// is refused; with everything logged and no advisory it passes.
func TestAudit(t *testing.T) {
	if err := exec.Command("perl", "-MCPAN::Audit::DB", "-e1").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CPAN::Audit missing in CI: .ci/run installs libcpan-audit-perl")
		}
		t.Skip("CPAN::Audit not installed")
	}
	smp := samples(t)
	tl := startLog(t, t.TempDir())
	for _, s := range smp {
		tl.add(t, s.path, s.content, "2024-01-02T03:04:05Z")
	}
	// A real distribution name and version with CPANSA advisories
	// (CPANSA-Archive-Tar-2007-4829: <=1.36, and others), logged with
	// stand-in bytes: the audit reads the name and version from the path.
	const archiveTar = "authors/id/K/KA/KANE/Archive-Tar-1.36.tar.gz"
	tl.add(t, archiveTar, []byte("Archive-Tar 1.36, stand-in bytes"), "2024-01-02T03:04:05Z")
	policy := writePolicy(t, fmt.Sprintf("log %s %s\nquorum none\n", tl.log.VerifierKey(), tl.url))
	common := []string{"--policy", policy, "--state", t.TempDir()}

	project := t.TempDir()
	cache := filepath.Join(project, "vendor", "cache")
	put := func(p string, b []byte) {
		f := filepath.Join(cache, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(f), 0o755)
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tt := smp[0]
	for _, s := range smp {
		if strings.Contains(s.path, "Try-Tiny") {
			tt = s
		}
	}
	put(tt.path, tt.content)
	snapshot := func(paths ...string) string {
		var b strings.Builder
		b.WriteString("# carton snapshot format: version 1.0\nDISTRIBUTIONS\n")
		for _, p := range paths {
			pn := strings.TrimPrefix(p, "authors/id/")
			fmt.Fprintf(&b, "  %s\n    pathname: %s\n", strings.TrimSuffix(filepath.Base(pn), ".tar.gz"), pn)
		}
		f := filepath.Join(project, "cpanfile.snapshot")
		os.WriteFile(f, []byte(b.String()), 0o644)
		return f
	}

	// Everything logged, no advisory.
	code, out := cli(t, append([]string{"audit", snapshot(tt.path)}, common...)...)
	if code != 0 || !strings.Contains(out, "1 of 1 distributions verified") || !strings.Contains(out, "advisories: 0 naming 1 distributions checked") {
		t.Fatalf("a clean snapshot: exit %d\n%s", code, out)
	}
	// A pinned distribution with advisories.
	put(archiveTar, []byte("Archive-Tar 1.36, stand-in bytes"))
	snap := snapshot(tt.path, archiveTar)
	code, out = cli(t, append([]string{"audit", snap}, common...)...)
	if code != 1 || !strings.Contains(out, "2 of 2 distributions verified") ||
		!regexp.MustCompile(`(?m)^ADVISORY CPANSA-Archive-Tar-2007-4829 \(CVE-2007-4829\): Archive-Tar 1\.36 \(authors/id/K/KA/KANE/Archive-Tar-1\.36\.tar\.gz\) is in "<=1\.36"; fixed in ">1\.36"$`).MatchString(out) {
		t.Errorf("a snapshot pinning Archive-Tar 1.36: exit %d\n%s", code, out)
	}
	// A tarball whose bytes differ from the logged ones.
	b := append([]byte(nil), tt.content...)
	b[10] ^= 1
	put(tt.path, b)
	code, out = cli(t, append([]string{"audit", snap}, common...)...)
	if code != 1 || !regexp.MustCompile(`(?m)^Try-Tiny-0.31 +FAILED +not verified: .*does not match the log`).MatchString(out) || !strings.Contains(out, "ADVISORY CPANSA-Archive-Tar") {
		t.Errorf("a tampered tarball: exit %d\n%s", code, out)
	}
	put(tt.path, tt.content)

	// A local/ tree cpanm installed into: its install records.
	local := filepath.Join(project, "local")
	for _, p := range []string{tt.path, archiveTar} {
		pn := strings.TrimPrefix(p, "authors/id/")
		name := strings.TrimSuffix(filepath.Base(pn), ".tar.gz")
		d := filepath.Join(local, "lib", "perl5", "x86_64-linux-gnu-thread-multi", ".meta", name)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "install.json"), fmt.Appendf(nil, `{"pathname":%q,"dist":%q}`, pn, name), 0o644)
	}
	code, out = cli(t, append([]string{"audit", local, "--mirror", cache}, common...)...)
	if code != 1 || !strings.Contains(out, "2 of 2 distributions verified") || !strings.Contains(out, "ADVISORY CPANSA-Archive-Tar-2007-4829") {
		t.Errorf("a local/ tree: exit %d\n%s", code, out)
	}
	// Without advisories it says so; a database that is not one is an
	// error before anything is fetched.
	code, out = cli(t, append([]string{"audit", snap, "--advisories", "none"}, common...)...)
	if code != 0 || !strings.Contains(out, "advisories: not checked") {
		t.Errorf("--advisories none: exit %d\n%s", code, out)
	}
	bad := filepath.Join(t.TempDir(), "db.json")
	os.WriteFile(bad, []byte(`{"dists":{}}`), 0o644)
	code, out = cli(t, append([]string{"audit", snap, "--advisories", bad}, common...)...)
	if code != 2 || strings.Contains(out, "verified") {
		t.Errorf("an empty advisory database: exit %d\n%s", code, out)
	}
}
