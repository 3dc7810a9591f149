package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExecCPANpmNoPrompt: under cpantlog exec, CPAN.pm shown a refused
// tarball never asks for proxy credentials (it asked "Proxy
// authentication needed! Username:" once per download program it fell
// back to), the refused file is listed once, and the plugin exec loads
// into CPAN.pm adds no refusal of its own.
func TestExecCPANpmNoPrompt(t *testing.T) {
	if _, err := exec.LookPath("cpan"); err != nil {
		t.Skip("cpan (CPAN.pm) not installed")
	}
	e := newExecEnv(t)
	e.tamper(t, textDiff)
	base := t.TempDir()
	t.Setenv("PERL_MM_OPT", "INSTALL_BASE="+base)
	t.Setenv("PERL_MB_OPT", "--install_base "+base)
	t.Setenv("PERL5LIB", filepath.Join(base, "lib/perl5"))
	t.Setenv("CPAN_OPTS", "")
	t.Setenv("HOME", t.TempDir())
	code, out := e.run(t, "cpan", "-T", "Text::Diff")
	if code == 0 || installed(base, "Text/Diff.pm") {
		t.Errorf("tampered Text::Diff with CPAN.pm: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "Proxy authentication") || strings.Contains(out, "Username:") {
		t.Errorf("CPAN.pm asked for proxy credentials under cpantlog exec:\n%s", out)
	}
	if n := strings.Count(out, refusedLine+textDiff); n != 1 {
		t.Errorf("the refused tarball is listed %d times, want once:\n%s", n, out)
	}
	// The plugin exec loads into CPAN.pm defers to exec's proxy: none of
	// its own refusals or unchecked files besides exec's list.
	for _, own := range []string{"CPAN::Plugin::TLog: REFUSED", "CPAN::Plugin::TLog: COULD NOT CHECK", "UNCHECKED"} {
		if strings.Contains(out, own) {
			t.Errorf("the plugin fought the proxy (%q):\n%s", own, out)
		}
	}
}

// TestExecCPANpmBuildsNothingRefused: under cpantlog exec (whose CPAN.pm
// configuration now has a stand-in proxy user and no external download
// programs, 5709e85), a hostile Text-Diff served with CHECKSUMS forged to
// match is refused: CPAN.pm exits non-zero and no code of it ran (no
// marker from its Makefile.PL, test or module).
func TestExecCPANpmBuildsNothingRefused(t *testing.T) {
	if _, err := exec.LookPath("cpan"); err != nil {
		t.Skip("cpan (CPAN.pm) not installed")
	}
	e := newExecEnv(t)
	f := filepath.Join(e.root, filepath.FromSlash(textDiff))
	good := mustRead(t, f)
	replaceWithHostile(t, e.root, textDiff, tarGz(t, hostileFiles("Text-Diff-1.45", "Text::Diff")))
	t.Cleanup(func() { os.WriteFile(f, good, 0o644) })
	markers, base := t.TempDir(), t.TempDir()
	t.Setenv("CPANTLOG_TEST_MARKERS", markers)
	t.Setenv("PERL_MM_OPT", "INSTALL_BASE="+base)
	t.Setenv("PERL_MB_OPT", "--install_base "+base)
	t.Setenv("PERL5LIB", filepath.Join(base, "lib/perl5"))
	t.Setenv("CPAN_OPTS", "")
	t.Setenv("HOME", t.TempDir())
	code, out := e.run(t, "cpan", "-T", "Text::Diff")
	assertRefused(t, clientRun{code: code, out: out, lib: base, markers: markers}, "Text-Diff-1.45.tar.gz")
	if installed(base, "Text/Diff.pm") {
		t.Errorf("the hostile Text::Diff was installed\n%s", out)
	}
}
