package launch

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envMap is env as a map, failing the test on a variable set twice.
func envMap(t *testing.T, env []string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := m[k]; dup {
			t.Errorf("%s is set twice", k)
		}
		m[k] = v
	}
	return m
}

func TestEnv(t *testing.T) {
	const proxy = "http://127.0.0.1:7000"
	for _, c := range []struct {
		name string
		base []string
	}{
		{"the usual spellings", []string{"http_proxy=http://evil:3128", "HTTPS_PROXY=http://evil:3128", "no_proxy=localhost,.example.org", "NO_PROXY=*"}},
		// LWP reads any variable whose lower-cased name is SCHEME_proxy,
		// and CGI_HTTP_PROXY when REQUEST_METHOD is set.
		{"mixed case", []string{"Http_Proxy=http://evil:3128", "HTTPS_proxy=http://evil:3128", "hTtP_pRoXy=http://evil:3128", "No_Proxy=*"}},
		{"CGI", []string{"CGI_HTTP_PROXY=http://evil:3128", "cgi_http_proxy=http://evil:3128", "REQUEST_METHOD=GET"}},
		{"other schemes", []string{"gopher_proxy=http://evil:3128", "FILE_PROXY=http://evil:3128", "wais_proxy=http://evil:3128", "Ftp_Proxy=http://evil:3128", "All_Proxy=socks5://evil:1080"}},
		{"empty values", []string{"http_proxy=", "Http_Proxy=", "no_proxy="}},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := append([]string{"HOME=/home/u", "PERL_CARTON_MIRROR=http://elsewhere", "PATH=/bin", "PERL_CPANM_OPT=--mirror file:///evil", "CPANTLOG_EXEC_TOKEN=outer", "MY_PROXY_HOST=kept"}, c.base...)
			env := envMap(t, Env(base, proxy))
			for k, v := range env {
				if strings.HasSuffix(strings.ToLower(k), "_proxy") && v != proxy {
					t.Errorf("%s=%q is left: LWP would read it", k, v)
				}
			}
			for _, k := range append(slices.Clone(proxyVars), "PERL_CARTON_MIRROR") {
				if env[k] != proxy {
					t.Errorf("%s = %q, want the proxy", k, env[k])
				}
			}
			for _, k := range append(slices.Clone(clearedVars), "no_proxy", "NO_PROXY") {
				if _, ok := env[k]; ok {
					t.Errorf("%s is still set", k)
				}
			}
			if env["HOME"] != "/home/u" || env["PATH"] != "/bin" || env["MY_PROXY_HOST"] != "kept" {
				t.Errorf("unrelated variables changed: %q", env)
			}
		})
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
	if err != nil || !strings.Contains(string(conf), `$CPAN::Config->{urllist} = ['http://127.0.0.1:7000/']`) || !strings.Contains(string(conf), "pushy_https} = 0") || strings.Contains(string(conf), "plugin_list") {
		t.Errorf("CPAN.pm config: %s %v", conf, err)
	}
	if out, err := exec.Command("perl", "-c", got[2]).CombinedOutput(); err != nil {
		t.Errorf("perl -c of the CPAN.pm config: %v\n%s", err, out)
	}
}

// TestCPANConfigPlugin: with the hook, CPAN.pm's configuration lists the
// plugin first and keeps the user's other plugins, whatever the user's
// configuration holds; a temporary directory with $ and @ in its name is
// not interpolated.
func TestCPANConfigPlugin(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a$b@c'd\\e")
	os.MkdirAll(dir, 0o700)
	for _, c := range []struct{ user, want string }{
		{"", "CPAN::Plugin::TLog"},
		{"$CPAN::Config->{plugin_list} = ['CPAN::Plugin::Sysdeps'];", "CPAN::Plugin::TLog CPAN::Plugin::Sysdeps"},
		{"$CPAN::Config->{plugin_list} = ['CPAN::Plugin::Sysdeps', 'CPAN::Plugin::TLog'];", "CPAN::Plugin::TLog CPAN::Plugin::Sysdeps"},
	} {
		// CPAN::HandleConfig->load reads the user's MyConfig.pm: a stand-in
		// sets what a user's would.
		lib := t.TempDir()
		os.MkdirAll(filepath.Join(lib, "CPAN"), 0o755)
		os.WriteFile(filepath.Join(lib, "CPAN", "HandleConfig.pm"), []byte("package CPAN::HandleConfig; sub load { $CPAN::Config = {}; "+c.user+" } 1;\n"), 0o644)
		os.WriteFile(filepath.Join(lib, "CPAN", "Plugin.pm"), nil, 0o644)
		if err := os.WriteFile(filepath.Join(dir, "CPANConfig.pm"), []byte(cpanConfig("http://127.0.0.1:7000", dir, true)), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("perl", "-I", lib, "-e", `do $ARGV[0] or die $@ || $!; print join(' ', @{ $CPAN::Config->{plugin_list} }), "\n", $CPAN::Config->{keep_source_where}, "\n"`, filepath.Join(dir, "CPANConfig.pm")).CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if want := c.want + "\n" + filepath.Join(dir, "cpan-sources") + "\n"; string(out) != want {
			t.Errorf("user's %q: got\n%s\nwant\n%s", c.user, out, want)
		}
	}
}

var testHook = &Hook{Check: "http://127.0.0.1:7000/.cpantlog/check", Token: "feedface", Policy: "/etc/cpantlog/policy"}

// TestNewHook: the clients the hook knows get it, with the user's
// PERL5LIB after it and the user's PERL5OPT dropped with a note; other
// commands get none of it.
func TestNewHook(t *testing.T) {
	user := []string{"HOME=" + t.TempDir(), "PERL5LIB=/home/u/perl5/lib/perl5", "PERL5OPT=-MDevel::Unwrap", "CPANTLOG_POLICY=/home/u/other-policy", "CPANTLOG_NOVERIFY=authors/id/M/MY/MYCOMPANY"}
	for _, c := range []struct {
		argv   []string
		module string
	}{
		{[]string{"cpanm", "Try::Tiny"}, "CPAN::TLog::Cpanm"},
		{[]string{"/usr/local/bin/cpanm-tlog", "Try::Tiny"}, "CPAN::TLog::Cpanm"},
		{[]string{"carton", "install"}, "CPAN::TLog::Cpanm"},
		{[]string{"./carton-tlog", "install"}, "CPAN::TLog::Cpanm"},
		{[]string{"/usr/bin/cpan", "Try::Tiny"}, "CPAN::Plugin::TLog"},
		{[]string{"cpm", "install", "Try::Tiny"}, ""},
		{[]string{"perl", "/usr/bin/cpanm", "Try::Tiny"}, ""},
		{[]string{"make"}, ""},
	} {
		dir := t.TempDir()
		p, err := New(c.argv, user, "http://127.0.0.1:7000", dir, testHook)
		if err != nil {
			t.Fatal(err)
		}
		env := envMap(t, p.Env)
		if p.Hooked != c.module {
			t.Errorf("%q: hooked %q, want %q", c.argv, p.Hooked, c.module)
		}
		if env["CPANTLOG_NOVERIFY"] != "authors/id/M/MY/MYCOMPANY" {
			t.Errorf("%q: CPANTLOG_NOVERIFY = %q, want it passed on unchanged", c.argv, env["CPANTLOG_NOVERIFY"])
		}
		if c.module == "" {
			if env["PERL5LIB"] != "/home/u/perl5/lib/perl5" || env["PERL5OPT"] != "-MDevel::Unwrap" || env["CPANTLOG_POLICY"] != "/home/u/other-policy" || env["CPANTLOG_EXEC_CHECK"] != "" || env["CPANTLOG_EXEC_TOKEN"] != "" || len(p.Notes) != 0 {
				t.Errorf("%q is not a client the hook knows, but its environment changed: %q %q", c.argv, env, p.Notes)
			}
			if _, err := os.Stat(filepath.Join(dir, "perl")); err == nil {
				t.Errorf("%q: the hook was extracted", c.argv)
			}
			continue
		}
		lib := filepath.Join(dir, "perl", "lib")
		if env["PERL5LIB"] != lib+":/home/u/perl5/lib/perl5" || env["PERL5OPT"] != "-M"+c.module {
			t.Errorf("%q: PERL5LIB=%q PERL5OPT=%q", c.argv, env["PERL5LIB"], env["PERL5OPT"])
		}
		if _, err := os.Stat(filepath.Join(lib, filepath.FromSlash(strings.ReplaceAll(c.module, "::", "/")+".pm"))); err != nil {
			t.Errorf("%q: the hook's module is not in PERL5LIB: %v", c.argv, err)
		}
		if env["CPANTLOG_EXEC_CHECK"] != testHook.Check || env["CPANTLOG_EXEC_TOKEN"] != testHook.Token || env["CPANTLOG_POLICY"] != testHook.Policy {
			t.Errorf("%q: CPANTLOG_EXEC_CHECK=%q CPANTLOG_EXEC_TOKEN=%q CPANTLOG_POLICY=%q", c.argv, env["CPANTLOG_EXEC_CHECK"], env["CPANTLOG_EXEC_TOKEN"], env["CPANTLOG_POLICY"])
		}
		if len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "PERL5OPT") || !strings.Contains(p.Notes[0], "-MDevel::Unwrap") {
			t.Errorf("%q: the dropped PERL5OPT is not named: %q", c.argv, p.Notes)
		}
		if c.module == cpanPlugin {
			conf, _ := os.ReadFile(p.Argv[2])
			if !strings.Contains(string(conf), "plugin_list") {
				t.Errorf("cpan's configuration does not list the plugin:\n%s", conf)
			}
		}
	}
	// No PERL5LIB of the user's: only the hook's.
	p, err := New([]string{"cpanm"}, []string{"HOME=/nonexistent"}, "http://127.0.0.1:7000", t.TempDir(), testHook)
	if err != nil {
		t.Fatal(err)
	}
	if env := envMap(t, p.Env); strings.Contains(env["PERL5LIB"], ":") || !strings.HasSuffix(env["PERL5LIB"], filepath.Join("perl", "lib")) || len(p.Notes) != 0 {
		t.Errorf("PERL5LIB=%q, notes %q", env["PERL5LIB"], p.Notes)
	}
	// Without a hook (nil), nothing of it.
	p, err = New([]string{"cpanm"}, user, "http://127.0.0.1:7000", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if env := envMap(t, p.Env); p.Hooked != "" || env["PERL5OPT"] != "-MDevel::Unwrap" {
		t.Errorf("no hook given, yet hooked %q, PERL5OPT=%q", p.Hooked, env["PERL5OPT"])
	}
	if _, err := New(nil, user, "http://127.0.0.1:7000", t.TempDir(), testHook); err == nil {
		t.Error("New with no command succeeded")
	}
}

func TestNewOverridesUserConfiguration(t *testing.T) {
	dir, home := t.TempDir(), t.TempDir()
	p, err := New([]string{"cpanm", "Try::Tiny"}, []string{"HOME=" + home, "WGETRC=/home/u/evil", "PERL_CPANM_OPT=--mirror file:///evil --mirror-only", "CURL_HOME=/home/u"}, "http://127.0.0.1:7000", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	env := envMap(t, p.Env)
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
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// usedPlan is a Plan for cpanm in fresh directories, with its work run
// directory made.
func usedPlan(t *testing.T) (p *Plan, dir, home, run string) {
	t.Helper()
	dir, home = t.TempDir(), t.TempDir()
	p, err := New([]string{"cpanm", "Try::Tiny"}, []string{"HOME=" + home}, "http://127.0.0.1:7000", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	run = filepath.Join(dir, "cpanm", "work", "123.4")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	return p, dir, home, run
}

func used(t *testing.T, p *Plan) map[string]UsedFile {
	t.Helper()
	list, err := p.Used()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]UsedFile{}
	for _, u := range list {
		if _, dup := m[u.Name]; dup {
			t.Errorf("%s listed twice", u.Name)
		}
		m[u.Name] = u
	}
	return m
}

// TestUsedNeverSkipsByContent: every file named like an archive or an
// index file is hashed whatever its first bytes (a text file an archive
// member wrote over the archive, a plain-text 02packages.details.txt.gz,
// a .zip with junk in front, an empty file); unpacked trees, an older
// run's directory, and other names are not listed.
func TestUsedNeverSkipsByContent(t *testing.T) {
	p, dir, home, run := usedPlan(t)
	files := map[string][]byte{
		filepath.Join(run, "Foo-1.0.tar.gz"):                                                       []byte("\x1f\x8b\x08\x00rest"),
		filepath.Join(run, "Try-Tiny-0.31.tar.gz"):                                                 []byte("written by a member of the archive\n"),
		filepath.Join(run, "Evil-1.0.zip"):                                                         append([]byte("junk in front "), "PK\x03\x04..."...),
		filepath.Join(run, "Empty-1.0.TAR.GZ"):                                                     nil,
		filepath.Join(run, "Plain-1.0.tar"):                                                        []byte("not a tar"),
		filepath.Join(dir, "cpanm", "sources", "file%x", "02packages.details.txt.gz"):              []byte("Package::Name 1.0 E/EV/EVIL/Evil-1.0.zip\n"),
		filepath.Join(dir, "cpan-sources", "authors", "id", "E", "EV", "EVIL", "Evil-1.0.tar.bz2"): []byte("BZh..."),
		filepath.Join(dir, "cpan-sources", "authors", "01mailrc.txt.gz"):                           []byte("alias X"),
	}
	ignored := map[string][]byte{
		filepath.Join(run, "build.log"):                                                     []byte("log"),
		filepath.Join(run, "Foo-1.0", "inner.tar.gz"):                                       []byte("inner"),
		filepath.Join(dir, "cpan-sources", "authors", "id", "E", "EV", "EVIL", "CHECKSUMS"): []byte("x"),
		filepath.Join(dir, "cpan-sources", "modules", "03modlist.data.gz"):                  []byte("x"),
		filepath.Join(home, ".cpanm", "work", "1.1", "Old-1.0.tar.gz"):                      []byte("old"),
	}
	for _, m := range []map[string][]byte{files, ignored} {
		for name, b := range m {
			os.MkdirAll(filepath.Dir(name), 0o755)
			if err := os.WriteFile(name, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	old := filepath.Join(home, ".cpanm", "work", "1.1")
	os.Chtimes(old, time.Now().Add(-time.Hour), time.Now().Add(-time.Hour))
	got := used(t, p)
	for name, b := range files {
		u, ok := got[name]
		if !ok {
			t.Errorf("%s is not listed", name)
			continue
		}
		if u.SHA256 != sha256.Sum256(b) || u.Unverified != "" || u.Unreadable != "" || u.Gzip != nil {
			t.Errorf("%s: %+v, want its sha256", name, u)
		}
	}
	for name := range ignored {
		if _, ok := got[name]; ok {
			t.Errorf("%s is listed", name)
		}
	}
	if len(got) != len(files) {
		t.Errorf("%d files listed, want %d: %v", len(got), len(files), got)
	}
}

// TestUsedUncompressedIndex: an uncompressed index file carries the
// sha256 of the .gz beside it only when it is exactly that .gz
// decompressed.
func TestUsedUncompressedIndex(t *testing.T) {
	p, dir, _, _ := usedPlan(t)
	text := []byte("File: 02packages.details.txt\n\nTry::Tiny 0.31 E/ET/ETHER/Try-Tiny-0.31.tar.gz\n")
	gz := gzipped(text)
	for _, c := range []struct {
		name     string
		gz, txt  []byte
		matching bool
	}{
		{"exact", gz, text, true},
		{"one byte more", gz, append(bytes.Clone(text), '\n'), false},
		{"one byte less", gz, text[:len(text)-1], false},
		{"other text", gz, bytes.ToUpper(text), false},
		{"plain-text .gz", text, text, false},
		{"junk after the gzip stream", append(bytes.Clone(gz), "junk"...), text, false},
		{"two gzip members", append(bytes.Clone(gz), gzipped([]byte("Evil::Module 1.0 E/EV/EVIL/Evil-1.0.zip\n"))...), text, false},
		{"no .gz", nil, text, false},
	} {
		src := filepath.Join(dir, "cpanm", "sources", "http%www.cpan.org")
		os.RemoveAll(src)
		os.MkdirAll(src, 0o755)
		if c.gz != nil {
			os.WriteFile(filepath.Join(src, "02packages.details.txt.gz"), c.gz, 0o644)
		}
		os.WriteFile(filepath.Join(src, "02packages.details.txt"), c.txt, 0o644)
		u, ok := used(t, p)[filepath.Join(src, "02packages.details.txt")]
		if !ok || u.SHA256 != sha256.Sum256(c.txt) {
			t.Errorf("%s: the uncompressed index is not listed with its own sha256: %+v", c.name, u)
			continue
		}
		if c.matching && (u.Gzip == nil || *u.Gzip != sha256.Sum256(c.gz)) {
			t.Errorf("%s: Gzip = %x, want the .gz's sha256", c.name, u.Gzip)
		}
		if !c.matching && u.Gzip != nil {
			t.Errorf("%s: Gzip = %x, want none", c.name, *u.Gzip)
		}
	}
}

// TestUsedSymlinksAndOddFiles: a symlink is judged by what it points to,
// one leading outside the fetch directories is unverified, and what
// cannot be read is listed as such, never skipped; a FIFO does not block
// the scan.
func TestUsedSymlinksAndOddFiles(t *testing.T) {
	p, dir, _, run := usedPlan(t)
	outside := filepath.Join(t.TempDir(), "Evil-1.0.tar.gz")
	os.WriteFile(outside, []byte("evil"), 0o644)
	os.Mkdir(filepath.Join(filepath.Dir(outside), "authors"), 0o755)
	inside := filepath.Join(dir, "cpan-sources", "authors", "id", "G", "GO", "GOOD", "Good-1.0.tar.gz")
	os.MkdirAll(filepath.Dir(inside), 0o755)
	os.WriteFile(inside, []byte("good"), 0o644)
	links := map[string]string{
		filepath.Join(run, "Evil-1.0.tar.gz"):                    outside,
		filepath.Join(run, "Good-1.0.tar.gz"):                    inside,
		filepath.Join(run, "Dangling-1.0.tar.gz"):                filepath.Join(run, "nothing"),
		filepath.Join(dir, "cpan-sources", "authors", "id", "X"): filepath.Dir(outside), // a directory outside
		filepath.Join(dir, "cpan-sources", "elsewhere.txt"):      outside,               // another name: not used as an archive
	}
	for l, target := range links {
		if err := os.Symlink(target, l); err != nil {
			t.Fatal(err)
		}
	}
	fifo := filepath.Join(run, "Fifo-1.0.tar.gz")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(run, "Dir-1.0.tar.gz"), 0o755) // a directory with an archive's name: walked as one (top level of a run: skipped)
	unreadable := filepath.Join(run, "Locked-1.0.tar.gz")
	os.WriteFile(unreadable, []byte("locked"), 0o000)
	lockedDir := filepath.Join(dir, "cpan-sources", "authors", "id", "L")
	os.MkdirAll(filepath.Join(lockedDir, "LO", "LOCK"), 0o755)
	os.WriteFile(filepath.Join(lockedDir, "LO", "LOCK", "Hidden-1.0.tar.gz"), []byte("hidden"), 0o644)
	os.Chmod(lockedDir, 0o000)
	t.Cleanup(func() { os.Chmod(lockedDir, 0o755) })

	done := make(chan map[string]UsedFile, 1)
	go func() { done <- used(t, p) }()
	var got map[string]UsedFile
	select {
	case got = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Used blocked (on the FIFO?)")
	}
	want := func(name, field, contains string) {
		t.Helper()
		u, ok := got[name]
		var v string
		switch field {
		case "unverified":
			v = u.Unverified
		case "unreadable":
			v = u.Unreadable
		}
		if !ok || !strings.Contains(v, contains) {
			t.Errorf("%s: %+v (listed: %v), want %s containing %q", name, u, ok, field, contains)
		}
	}
	want(filepath.Join(run, "Evil-1.0.tar.gz"), "unverified", "outside the directories")
	want(filepath.Join(dir, "cpan-sources", "authors", "id", "X"), "unverified", "outside the directories")
	want(fifo, "unverified", "not a regular file")
	want(filepath.Join(run, "Dangling-1.0.tar.gz"), "unreadable", "does not resolve")
	root := os.Geteuid() == 0 // root reads files whatever their mode
	if !root {
		want(unreadable, "unreadable", "permission denied")
		want(lockedDir, "unreadable", "permission denied")
	}
	if u := got[filepath.Join(run, "Good-1.0.tar.gz")]; u.SHA256 != sha256.Sum256([]byte("good")) || u.Unverified != "" || u.Unreadable != "" {
		t.Errorf("a symlink to a file inside: %+v, want the target's sha256", u)
	}
	if u, ok := got[inside]; !ok || u.SHA256 != sha256.Sum256([]byte("good")) {
		t.Errorf("the file itself: %+v", u)
	}
	for _, name := range []string{filepath.Join(dir, "cpan-sources", "elsewhere.txt"), filepath.Join(run, "Dir-1.0.tar.gz")} {
		if u, ok := got[name]; ok {
			t.Errorf("%s is listed: %+v", name, u)
		}
	}
}
