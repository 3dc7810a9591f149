package launch

import (
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
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

func TestNewOverridesUserConfiguration(t *testing.T) {
	dir, home := t.TempDir(), t.TempDir()
	p, err := New([]string{"cpanm", "Try::Tiny"}, []string{"HOME=" + home, "WGETRC=/home/u/evil", "PERL_CPANM_OPT=--mirror file:///evil --mirror-only", "CURL_HOME=/home/u"}, "http://127.0.0.1:7000", dir)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range p.Env {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := env[k]; dup {
			t.Errorf("%s is set twice", k)
		}
		env[k] = v
	}
	if _, ok := env["PERL_CPANM_OPT"]; ok || len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "PERL_CPANM_OPT") {
		t.Errorf("PERL_CPANM_OPT kept or not reported: %q %q", env["PERL_CPANM_OPT"], p.Notes)
	}
	wgetrc, _ := os.ReadFile(env["WGETRC"])
	if env["SYSTEM_WGETRC"] != env["WGETRC"] || !strings.Contains(string(wgetrc), "http_proxy = http://127.0.0.1:7000\n") || !strings.Contains(string(wgetrc), "use_proxy = on") {
		t.Errorf("wgetrc %q (system %q):\n%s", env["WGETRC"], env["SYSTEM_WGETRC"], wgetrc)
	}
	curlrc, _ := os.ReadFile(filepath.Join(env["CURL_HOME"], ".curlrc"))
	if !strings.Contains(string(curlrc), `proxy = "http://127.0.0.1:7000"`) {
		t.Errorf(".curlrc in %q:\n%s", env["CURL_HOME"], curlrc)
	}
	// Used lists what a client left in this run's work directory, not an
	// unpacked tree, an older run's, or a failed download.
	gz := []byte("\x1f\x8b\x08\x00rest")
	run := filepath.Join(env["PERL_CPANM_HOME"], "work", "123.4")
	os.MkdirAll(filepath.Join(run, "Foo-1.0"), 0o755)
	os.WriteFile(filepath.Join(run, "Foo-1.0.tar.gz"), gz, 0o644)
	os.WriteFile(filepath.Join(run, "Foo-1.0", "inner.tar.gz"), gz, 0o644)
	os.WriteFile(filepath.Join(run, "Bar-1.0.tar.gz"), []byte("<html>503</html>"), 0o644)
	os.WriteFile(filepath.Join(run, "build.log"), []byte("log"), 0o644)
	old := filepath.Join(home, ".cpanm", "work", "1.1")
	os.MkdirAll(old, 0o755)
	os.WriteFile(filepath.Join(old, "Old-1.0.tar.gz"), gz, 0o644)
	os.Chtimes(old, time.Now().Add(-time.Hour), time.Now().Add(-time.Hour))
	src := filepath.Join(dir, "cpan-sources", "modules")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "02packages.details.txt.gz"), gz, 0o644)
	os.WriteFile(filepath.Join(src, "02packages.details.txt"), []byte("plain"), 0o644)
	used, err := p.Used()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range used {
		names = append(names, filepath.Base(u.Name))
		if u.SHA256 != sha256.Sum256(gz) {
			t.Errorf("%s: wrong sha256", u.Name)
		}
	}
	slices.Sort(names)
	if want := []string{"02packages.details.txt.gz", "Foo-1.0.tar.gz"}; !slices.Equal(names, want) {
		t.Errorf("used %q, want %q", names, want)
	}
}
