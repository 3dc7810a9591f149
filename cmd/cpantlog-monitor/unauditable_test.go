package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
)

func gzipped(s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

// TestHijackBehindABrokenIndexExits3: an 02packages version pointing
// Try::Tiny at an unlogged file of another author exits 3 with --once,
// and so does the same version with a 5,000-byte line appended (it exited
// 0 with a WARN on stderr: the version's findings were dropped).
func TestHijackBehindABrokenIndexExits3(t *testing.T) {
	tl := testlog.Start(t, tlog.Config{DataDir: t.TempDir()})
	tl.Add(t, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", []byte("try"), "2026-11-01T00:00:00Z", false)
	const pk = "modules/02packages.details.txt.gz"
	index := func(lines ...string) []byte {
		return gzipped(fmt.Sprintf("File:         02packages.details.txt\n\n%s\n", strings.Join(lines, "\n")))
	}
	tl.Add(t, pk, index("Try::Tiny 0.31 E/ET/ETHER/Try-Tiny-0.31.tar.gz"), "2026-11-01T01:00:00Z", true)
	policy := filepath.Join(t.TempDir(), "policy")
	os.WriteFile(policy, fmt.Appendf(nil, "log %s %s\nquorum none\n", tl.VerifierKey(), tl.URL), 0o644)
	state := t.TempDir()
	common := []string{"--policy", policy, "--state", state, "--once", "--listen", "", "--no-witness-peers"}
	if code, out, errOut := cli(common...); code != 0 {
		t.Fatalf("the genuine index: exit %d\n%s%s", code, out, errOut)
	}
	tl.Add(t, pk, index("Try::Tiny 0.31 E/EV/EVIL/Try-Tiny-0.31.tar.gz", "Zzz 1.0 E/ET/ETHER/Try-Tiny-0.31.tar.gz"+strings.Repeat(" ", 5000)), "2026-11-01T02:00:00Z", true)
	code, out, errOut := cli(common...)
	if code != 3 || !strings.Contains(out, "SECURITY index-unlogged-file") || !strings.Contains(out, "SECURITY index-version-unauditable") || !strings.Contains(out, "longer than 4096 bytes") {
		t.Errorf("the hijack with a long line: exit %d, want 3\n%s%s", code, out, errOut)
	}
}
