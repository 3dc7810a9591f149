package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/CPAN-Security/cpan-tlog/client"
)

// TestInitWritesThePolicyEveryToolReads: 'cpantlog init' checks the
// log's checkpoint against the new policy before writing it (a wrong key
// writes nothing, exit 1), and writes it where cpantlog, cpanm-tlog,
// carton-tlog and CPAN::Plugin::TLog all read it with no setting at all.
func TestInitWritesThePolicyEveryToolReads(t *testing.T) {
	tl, _, _ := loggedSamples(t)
	config := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", config)
	t.Setenv("CPANTLOG_POLICY", "")
	policy := filepath.Join(config, "cpantlog", "policy")

	// Another log's key: the checkpoint does not verify, nothing written.
	_, otherKey := newLogKey(t)
	if code, out := cli(t, "init", "--log", tl.url, "--key", otherKey); code != 1 || !strings.Contains(out, "nothing written") {
		t.Errorf("init with a key that does not verify the log's checkpoint: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(policy); err == nil {
		t.Fatal("a policy was written with a key that does not verify the log")
	}
	code, out := cli(t, "init", "--log", tl.url, "--key", tl.log.VerifierKey())
	if code != 0 || !strings.Contains(out, "is at size") || !strings.Contains(out, policy) {
		t.Fatalf("init: exit %d\n%s", code, out)
	}
	if code, out := cli(t, "init", "--log", tl.url, "--key", tl.log.VerifierKey()); code != 2 || !strings.Contains(out, "--force") {
		t.Errorf("init over an existing policy: exit %d\n%s", code, out)
	}
	// Go reads it with no --policy.
	if code, out := cli(t, "verify", "--state", t.TempDir(), "../../testdata/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz"); code != 0 {
		t.Errorf("cpantlog verify with the policy init wrote: exit %d\n%s", code, out)
	}
}

// TestInitPolicyReadByThePerlTools: a policy written once by 'cpantlog
// init' (offline) is what cpanm-tlog, carton-tlog and the CPAN.pm plugin
// read with neither CPANTLOG_POLICY nor any flag.
func TestInitPolicyReadByThePerlTools(t *testing.T) {
	needCpanm(t)
	if !perlAvailable(t) {
		t.Skip("perl with CryptX not installed")
	}
	w := newHostileWorld(t)
	f := strings.Fields(strings.SplitN(string(mustRead(t, w.policy)), "\n", 2)[0])
	wit := strings.Fields(strings.SplitN(string(mustRead(t, w.policy)), "\n", 3)[1])
	config := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", config)
	t.Setenv("CPANTLOG_POLICY", "")
	if code, out := cli(t, "init", "--offline", "--log", f[2], "--key", f[1], "--witness", strings.Join(wit[1:], " ")); code != 0 {
		t.Fatalf("init: exit %d\n%s", code, out)
	}
	// Trusted state in one place too: the Go tools' ($XDG_STATE_HOME/cpantlog).
	state := t.TempDir()
	env := func(markers string) []string {
		e := cleanEnv(t, "", markers)
		e = slicesDeleteFunc(e, func(kv string) bool {
			return strings.HasPrefix(kv, "CPANTLOG_POLICY=") || strings.HasPrefix(kv, "CPANTLOG_STATE=")
		})
		return append(e, "XDG_CONFIG_HOME="+config, "XDG_STATE_HOME="+state)
	}

	lib := t.TempDir()
	script, _ := filepath.Abs("../../client/perl/bin/cpanm-tlog")
	cmd := exec.Command("perl", script, "-n", "-L", lib, "--mirror", w.mirror, "Try::Tiny")
	cmd.Env = env(t.TempDir())
	if code, out := runExit(t, cmd); code != 0 || !installed(lib, "Try/Tiny.pm") || !strings.Contains(out, "verified against localhost/cpan-tlog, 0 refused") {
		t.Errorf("cpanm-tlog with the policy init wrote: exit %d\n%s", code, out)
	}

	if seen, _ := filepath.Glob(filepath.Join(state, "cpantlog", client.OriginDirName("localhost/cpan-tlog"), "key-*", "checkpoint")); len(seen) == 0 {
		t.Errorf("cpanm-tlog kept no checkpoint under $XDG_STATE_HOME/cpantlog, where and as the Go tools keep theirs")
	}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "cpanfile"), []byte("requires 'Try::Tiny';\n"), 0o644)
	script, _ = filepath.Abs("../../client/perl/bin/carton-tlog")
	cmd = exec.Command("perl", script, "--mirror", w.mirror, "install")
	cmd.Dir = dir
	cmd.Env = append(env(t.TempDir()), "PERL_CARTON_PATH=", "PERL_CARTON_MIRROR=")
	if code, out := runExit(t, cmd); code != 0 || !installed(filepath.Join(dir, "local"), "Try/Tiny.pm") || !strings.Contains(out, "verified against localhost/cpan-tlog, 0 refused") {
		t.Errorf("carton-tlog with the policy init wrote: exit %d\n%s", code, out)
	}

	if _, err := exec.LookPath("cpan"); err == nil {
		home, base := t.TempDir(), t.TempDir()
		lib, _ := filepath.Abs("../../client/perl/lib")
		conf := filepath.Join(t.TempDir(), "CPANConfig.pm")
		os.WriteFile(conf, []byte(`require CPAN::HandleConfig;
{ local $CPAN::Be_Silent = 1; CPAN::HandleConfig->load(write_file => 0); }
$CPAN::Config->{urllist} = [q[file://`+w.mirror+`/]];
$CPAN::Config->{plugin_list} = [q[CPAN::Plugin::TLog]];
$CPAN::Config->{cpan_home} = q[`+home+`/.cpan];
$CPAN::Config->{keep_source_where} = q[`+home+`/sources];
$CPAN::Config->{build_dir} = q[`+home+`/build];
$CPAN::Config->{connect_to_internet_ok} = 1;
$CPAN::Config->{pushy_https} = 0;
1;
`), 0o600)
		cmd = exec.Command("cpan", "-j", conf, "-T", "EVIL/Evil-Module-1.0.tar.gz")
		cmd.Env = append(env(t.TempDir()), "HOME="+home, "PERL5LIB="+lib+":"+filepath.Join(base, "lib/perl5"),
			"PERL_MM_OPT=INSTALL_BASE="+base, "PERL_MB_OPT=--install_base "+base, "PERL_MM_USE_DEFAULT=1")
		if code, out := runExit(t, cmd); code != 0 || !installed(base, "Evil/Module.pm") || !strings.Contains(out, "verified against localhost/cpan-tlog, 0 refused") {
			t.Errorf("CPAN.pm with the plugin and the policy init wrote: exit %d\n%s", code, out)
		}
	}
}

func slicesDeleteFunc(s []string, del func(string) bool) []string {
	var out []string
	for _, v := range s {
		if !del(v) {
			out = append(out, v)
		}
	}
	return out
}
