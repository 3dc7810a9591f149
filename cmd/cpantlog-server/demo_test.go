package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	var out bytes.Buffer
	if err := demoCmd([]string{"--testdata", "../../testdata"}, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"== 1. A witness ==", "== 7. A hostile mirror serves a tampered copy ==",
		"index 7: authors/id/", "cosigned by: w1",
		"no findings: the log is consistent",
		"verified authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz",
		"REFUSED (exit code 1)", "does not match the log",
		"now removed.",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	steps := 8
	if _, err := exec.LookPath("cpanm"); err == nil {
		steps = 9
		for _, want := range []string{"== 8. cpanm installs through the log ==", "Successfully installed Test-Fatal-0.017",
			"ok        authors/id/R/RJ/RJBS/Test-Fatal-0.017.tar.gz", "== 9. cpanm meets a tampered tarball ==",
			"REFUSED   authors/id/N/NE/NEILB/Text-Diff-1.45.tar.gz"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("demo output lacks %q:\n%s", want, out.String())
			}
		}
	} else if os.Getenv("CI") != "" {
		t.Error("cpanm missing in CI: .ci/run installs Debian's cpanminus")
	}
	if n := strings.Count(out.String(), "\n== "); n != steps {
		t.Errorf("demo has %d steps, want %d", n, steps)
	}
}

// TestSampleDir: run outside the repository, demo and sample-mirror read
// the sample tarballs the packages install; in the repository, or given
// a directory, they read that.
func TestSampleDir(t *testing.T) {
	shared := t.TempDir()
	old := sharedTestdata
	sharedTestdata = shared
	t.Cleanup(func() { sharedTestdata = old })
	t.Chdir(t.TempDir())
	if got := sampleDir("testdata"); got != "testdata" {
		t.Errorf("nothing installed: sampleDir = %q, want testdata (and its error)", got)
	}
	if err := os.MkdirAll(filepath.Join(shared, "authors", "id"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := sampleDir("testdata"); got != shared {
		t.Errorf("outside the repository, packages installed: sampleDir = %q, want %q", got, shared)
	}
	if got := sampleDir("mine"); got != "mine" {
		t.Errorf("--testdata mine: sampleDir = %q", got)
	}
	os.MkdirAll(filepath.Join("testdata", "authors", "id"), 0o755)
	if got := sampleDir("testdata"); got != "testdata" {
		t.Errorf("in the repository: sampleDir = %q, want testdata", got)
	}
}
