package monitor

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/CPAN-Security/cpan-tlog/client"
)

// buildMirror copies the samples into a CPAN tree and, when Perl's
// CPAN::Checksums is installed, writes each directory's CHECKSUMS with it.
func buildMirror(t *testing.T, smp []sampleFile) string {
	t.Helper()
	root := t.TempDir()
	dirs := map[string]bool{}
	for _, s := range smp {
		p := filepath.Join(root, s.path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, s.content, 0o644); err != nil {
			t.Fatal(err)
		}
		dirs[filepath.Dir(p)] = true
	}
	skip := t.Log
	if os.Getenv("CI") != "" {
		skip = t.Fatal
	}
	if exec.Command("perl", "-MCPAN::Checksums", "-e1").Run() != nil {
		skip("CPAN::Checksums not installed: mirror without CHECKSUMS")
		return root
	}
	for d := range dirs {
		if out, err := exec.Command("perl", "-MCPAN::Checksums=updatedir", "-e", "updatedir(shift)", d).CombinedOutput(); err != nil {
			t.Fatalf("CPAN::Checksums: %v %s", err, out)
		}
	}
	return root
}

func auditMirror(t *testing.T, logURL, vkey, state, mirror string) run {
	t.Helper()
	p, _ := client.ParsePolicy([]byte(fmt.Sprintf("log %s %s\nquorum none\n", vkey, logURL)))
	m, err := New(Config{Policy: p, StateDir: state, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	err = m.AuditMirror(context.Background(), mirror)
	fs, derr := m.Deliver(context.Background())
	if derr != nil {
		t.Fatal(derr)
	}
	return run{findings: fs, err: err}
}

func TestAuditMirror(t *testing.T) {
	smp := samples(t)
	l, url, _ := realLog(t, t.TempDir())
	for _, s := range smp {
		addSample(t, l, url, s.path, s.content, "2024-01-02T03:04:05Z")
	}
	mirror := buildMirror(t, smp)
	if r := auditMirror(t, url, l.VerifierKey(), t.TempDir(), mirror); r.err != nil || len(r.findings) != 0 {
		t.Fatalf("faithful mirror: %v %+v", r.err, r.findings)
	}

	// Tamper with Try-Tiny after its CHECKSUMS was written, add a file the
	// log never saw, remove a logged one.
	tt := filepath.Join(mirror, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz")
	b, _ := os.ReadFile(tt)
	b[len(b)/2] ^= 1
	os.WriteFile(tt, b, 0o644)
	os.WriteFile(filepath.Join(mirror, "authors/id/E/ET/ETHER/Evil-1.0.tar.gz"), []byte("evil"), 0o644)
	os.Remove(filepath.Join(mirror, "authors/id/Z/ZE/ZEFRAM/Module-Runtime-0.016.tar.gz"))
	state := t.TempDir()
	r := auditMirror(t, url, l.VerifierKey(), state, mirror)
	want := map[string]string{
		KindMirrorMismatch: "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz",
		KindMirrorUnlogged: "authors/id/E/ET/ETHER/Evil-1.0.tar.gz",
		KindMirrorMissing:  "authors/id/Z/ZE/ZEFRAM/Module-Runtime-0.016.tar.gz",
	}
	got := map[string]string{}
	for _, f := range r.findings {
		got[f.Kind] = f.Path
		if f.Kind == KindMirrorMismatch && !f.Security {
			t.Error("a tampered tarball is not a security finding")
		}
	}
	if r.err != nil || len(r.findings) != 3 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("tampered mirror: %v\n%+v", r.err, r.findings)
	}
	if r := auditMirror(t, url, l.VerifierKey(), state, mirror); len(r.findings) != 0 {
		t.Errorf("the same findings were reported again: %+v", r.findings)
	}

	// Over HTTP the CHECKSUMS files are compared: a mirror whose CHECKSUMS
	// vouches for a tampered tarball is caught.
	if _, err := os.Stat(filepath.Join(mirror, "authors/id/R/RJ/RJBS/CHECKSUMS")); err != nil {
		t.Skip("no CHECKSUMS files (CPAN::Checksums not installed)")
	}
	fatal := filepath.Join(mirror, "authors/id/R/RJ/RJBS/Test-Fatal-0.017.tar.gz")
	b, _ = os.ReadFile(fatal)
	b[100] ^= 1
	os.WriteFile(fatal, b, 0o644)
	if out, err := exec.Command("perl", "-MCPAN::Checksums=updatedir", "-e", "updatedir(shift)", filepath.Dir(fatal)).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(mirror)))
	defer srv.Close()
	r = auditMirror(t, url, l.VerifierKey(), t.TempDir(), srv.URL)
	found := false
	for _, f := range r.findings {
		if f.Kind == KindMirrorMismatch && f.Path == "authors/id/R/RJ/RJBS/Test-Fatal-0.017.tar.gz" && strings.Contains(f.Message, "CHECKSUMS") {
			found = true
		}
	}
	if r.err != nil || !found {
		t.Errorf("HTTP mirror with a tampered tarball and matching CHECKSUMS: %v\n%+v", r.err, r.findings)
	}
}
