package launch

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestEnv(t *testing.T) {
	base := []string{"HOME=/home/u", "http_proxy=http://evil:3128", "HTTPS_PROXY=http://evil:3128", "no_proxy=localhost,.example.org", "NO_PROXY=*", "PERL_CARTON_MIRROR=http://elsewhere", "PATH=/bin"}
	env := Env(base, "http://127.0.0.1:7000")
	get := func(k string) (string, int) {
		var v string
		n := 0
		for _, kv := range env {
			if key, val, _ := strings.Cut(kv, "="); key == k {
				v, n = val, n+1
			}
		}
		return v, n
	}
	for _, k := range append(slices.Clone(proxyVars), "PERL_CARTON_MIRROR") {
		if v, n := get(k); v != "http://127.0.0.1:7000" || n != 1 {
			t.Errorf("%s = %q (%d times), want the proxy once", k, v, n)
		}
	}
	for _, k := range clearedVars {
		if _, n := get(k); n != 0 {
			t.Errorf("%s is still set: hosts would skip the proxy", k)
		}
	}
	if v, _ := get("HOME"); v != "/home/u" {
		t.Errorf("HOME = %q, want it kept", v)
	}
}

func TestArgs(t *testing.T) {
	dir := t.TempDir()
	args := func(argv ...string) []string {
		out, err := Args(argv, "http://127.0.0.1:7000", dir)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	got := args("/usr/bin/cpm", "install", "-g", "Try::Tiny")
	want := []string{"/usr/bin/cpm", "install", "--mirror", "http://127.0.0.1:7000", "--resolver", "02packages,http://127.0.0.1:7000", "-g", "Try::Tiny"}
	if !slices.Equal(got, want) {
		t.Errorf("cpm: %q", got)
	}
	for _, argv := range [][]string{{"cpanm", "Try::Tiny"}, {"carton", "install"}, {"cpm"}, {"cpm", "exec", "x"}} {
		if got := args(argv...); !slices.Equal(got, argv) {
			t.Errorf("%q changed to %q", argv, got)
		}
	}
	got = args("cpan", "-T", "Try::Tiny")
	if len(got) != 5 || got[1] != "-j" || got[3] != "-T" {
		t.Fatalf("cpan: %q", got)
	}
	conf, err := os.ReadFile(got[2])
	if err != nil || !strings.Contains(string(conf), `$CPAN::Config->{urllist} = ["http://127.0.0.1:7000/"]`) || !strings.Contains(string(conf), "pushy_https} = 0") {
		t.Errorf("CPAN.pm config: %s %v", conf, err)
	}
	if out, err := exec.Command("perl", "-c", got[2]).CombinedOutput(); err != nil {
		t.Errorf("perl -c of the CPAN.pm config: %v\n%s", err, out)
	}
}
