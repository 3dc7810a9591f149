package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestSnapshot(t *testing.T) {
	smp := samples(t)
	tl := startLog(t, t.TempDir())
	for _, s := range smp {
		tl.add(t, s.path, s.content, "2024-01-02T03:04:05Z")
	}
	policy := writePolicy(t, fmt.Sprintf("log %s %s\nquorum none\n", tl.log.VerifierKey(), tl.url))
	var snap strings.Builder
	snap.WriteString("# carton snapshot format: version 1.0\nDISTRIBUTIONS\n")
	for _, p := range packages {
		f := strings.Fields(p)
		dist := strings.TrimSuffix(filepath.Base(f[2]), ".tar.gz")
		fmt.Fprintf(&snap, "  %s\n    pathname: %s\n    provides:\n      %s %s\n    requirements:\n      ExtUtils::MakeMaker 0\n", dist, f[2], f[0], f[1])
	}
	project := t.TempDir()
	snapFile := filepath.Join(project, "cpanfile.snapshot")
	os.WriteFile(snapFile, []byte(snap.String()), 0o644)
	// Carton's vendor/cache layout beside the snapshot is found by default.
	for _, s := range smp {
		p := filepath.Join(project, "vendor", "cache", s.path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, s.content, 0o644)
	}
	common := []string{"--policy", policy, "--state", t.TempDir()}
	code, out := cli(t, append([]string{"snapshot", snapFile}, common...)...)
	if code != 0 || !strings.Contains(out, "8 of 8 distributions verified") {
		t.Fatalf("snapshot of the samples: exit %d\n%s", code, out)
	}
	_, mirrorURL := buildMirror(t, smp)
	if code, out := cli(t, append([]string{"snapshot", snapFile, "--mirror", mirrorURL}, common...)...); code != 0 {
		t.Fatalf("snapshot from a mirror URL: exit %d\n%s", code, out)
	}
	tt := filepath.Join(project, "vendor", "cache", "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz")
	b, _ := os.ReadFile(tt)
	b[10] ^= 1
	os.WriteFile(tt, b, 0o644)
	code, out = cli(t, append([]string{"snapshot", snapFile}, common...)...)
	if code != 1 || !regexp.MustCompile(`(?m)^Try-Tiny-0.31 +FAILED +not verified: .*does not match the log`).MatchString(out) || !strings.Contains(out, "7 of 8 distributions verified") {
		t.Errorf("snapshot with a tampered tarball: exit %d\n%s", code, out)
	}
	// A mirror that cannot be reached is "could not check" (exit 2), never
	// "failed verification".
	code, out = cli(t, append([]string{"snapshot", snapFile, "--mirror", "http://127.0.0.1:9"}, common...)...)
	if code != 2 || strings.Contains(out, "FAILED") || !strings.Contains(out, "UNCHECKED") || !strings.Contains(out, "could not check 8 distribution(s)") {
		t.Errorf("snapshot from an unreachable mirror: exit %d\n%s", code, out)
	}
}
