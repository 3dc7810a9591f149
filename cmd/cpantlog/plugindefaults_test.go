package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCPANPluginDefaults: CPAN.pm with its default configuration
// (pushy_https on) and only what the documentation says to set: the
// plugin in plugin_list and a file:// mirror in urllist. CPAN.pm would
// ignore the urllist and go to https://cpan.org (no network here), then
// say "Could not expand" and exit 0. The plugin, loaded at start, says
// which setting the mirror needs before CPAN.pm downloads anything, and
// the run ends "could not check", not in a silent 0.
func TestCPANPluginDefaults(t *testing.T) {
	if _, err := exec.LookPath("cpan"); err != nil {
		t.Skip("cpan (CPAN.pm) not installed")
	}
	if !perlAvailable(t) {
		t.Skip("perl with CryptX not installed")
	}
	mirror, policy := loggedMirror(t)
	lib, _ := filepath.Abs("../../client/perl/lib")
	run := func(t *testing.T, early bool) (int, string) {
		base, home := t.TempDir(), t.TempDir()
		env := append(os.Environ(), "CPANTLOG_POLICY="+policy, "HOME="+home, "PERL5LIB="+lib+":"+filepath.Join(base, "lib/perl5"),
			"PERL_MM_OPT=INSTALL_BASE="+base, "PERL_MB_OPT=--install_base "+base, "PERL_MM_USE_DEFAULT=1", "CPAN_OPTS=", "http_proxy=", "HTTP_PROXY=")
		// CPAN.pm's automatic configuration, then what the documentation
		// says: the plugin, and the mirror.
		setup := exec.Command("perl", "-MCPAN", "-e", `CPAN::HandleConfig->load; CPAN::Shell->o(qw(conf plugin_list push CPAN::Plugin::TLog)); CPAN::Shell->o(conf => urllist => $ARGV[0]); CPAN::Shell->o(qw(conf commit))`, "file://"+mirror+"/")
		setup.Env = env
		if code, out := runExit(t, setup); code != 0 {
			t.Fatalf("CPAN.pm's automatic configuration: exit %d\n%s", code, out)
		}
		if conf, err := os.ReadFile(filepath.Join(home, ".cpan", "CPAN", "MyConfig.pm")); err != nil || strings.Contains(string(conf), "pushy_https' => q[0]") {
			t.Fatalf("CPAN.pm's configuration: %v\n%s", err, conf)
		}
		cmd := exec.Command("cpan", "-T", "Text::Diff")
		cmd.Env = env
		if early {
			cmd.Env = append(cmd.Env, "PERL5OPT=-MCPAN::Plugin::TLog")
		}
		cmd.Stdin = nil
		code, out := runExit(t, cmd)
		if installed(base, "Text/Diff.pm") {
			t.Errorf("installed with nothing verified\n%s", out)
		}
		return code, out
	}
	// Loaded as CPAN.pm starts (PERL5OPT, as the POD says to have the
	// gates in place before CPAN.pm does anything): it says at once which
	// setting the mirror needs, and the run ends "could not check" (2),
	// naming it, not in a silent 0.
	code, out := run(t, true)
	say := strings.Index(out, "To use your mirror: o conf pushy_https 0")
	if code != 2 || say < 0 || say > strings.Index(out, "Fetching") ||
		!strings.Contains(out, "0 verified") || !strings.Contains(out, "UNCHECKED modules/02packages.details.txt.gz") {
		t.Errorf("the plugin loaded at start, CPAN.pm's defaults: exit %d, want 2, the setting said before the first download and the index unchecked\n%s", code, out)
	}
	// In plugin_list only, CPAN.pm calls the plugin at the first
	// distribution, after its index: with no index nothing is built, and
	// only the POD's setup (pushy_https 0 for a mirror) can prevent it.
	code, out = run(t, false)
	t.Logf("plugin_list only, CPAN.pm's defaults, no network: exit %d\n%s", code, out)
}
