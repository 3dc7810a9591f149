package main

// Nothing unlogged is built: each way code can reach a CPAN client
// (a mirror over HTTP or file://, a URL, a local file or directory, git,
// cpanfile sources, caches, the user's configuration, force) against
// each hostile input (a tampered tarball with forged CHECKSUMS, a forged,
// stale or plain-text index, an archive that rewrites itself, a
// junk-prefixed zip), with the real clients. Every hostile distribution
// here writes a marker file from its Makefile.PL and from its test: the
// tests assert that no marker exists (no code of it ran), and that the
// client failed naming the file, not merely that nothing was installed.

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
)

// markerPerl is Perl that leaves a file named what in
// $CPANTLOG_TEST_MARKERS (set by each test run): the trace of code that ran.
func markerPerl(what string) string {
	return fmt.Sprintf("{ my $d = $ENV{CPANTLOG_TEST_MARKERS} || '/tmp/cpantlog-test-markers'; if (open my $f, '>', \"$d/%s\") { print $f qq{ran\\n}; close $f } }\n", what)
}

// hostileFiles is a distribution whose every piece of code leaves a
// marker: Makefile.PL, its test, and the module itself.
func hostileFiles(distv, pkg string) map[string]string {
	name, version, _ := strings.Cut(distv, "-")
	if i := strings.LastIndex(distv, "-"); i > 0 {
		name, version = distv[:i], distv[i+1:]
	}
	pm := strings.ReplaceAll(pkg, "::", "/") + ".pm"
	return map[string]string{
		distv + "/Makefile.PL": markerPerl("Makefile.PL-"+distv) + fmt.Sprintf("use ExtUtils::MakeMaker;\nWriteMakefile(NAME => '%s', VERSION => '%s');\n", pkg, version),
		distv + "/t/marker.t":  markerPerl("test-"+distv) + "print qq{1..1\\nok 1\\n};\n",
		distv + "/lib/" + pm:   fmt.Sprintf("package %s;\nour $VERSION = '%s';\n%s1;\n", pkg, version, markerPerl("module-"+distv)),
		distv + "/META.json": fmt.Sprintf(`{"name":%q,"version":%q,"meta-spec":{"version":2},"abstract":"x","author":["x"],"license":["perl_5"],"dynamic_config":1,"release_status":"stable",`+
			`"prereqs":{"configure":{"requires":{"ExtUtils::MakeMaker":"0"}}}}`, name, version),
	}
}

// tarGz packs files (name => content) into a .tar.gz, in name order.
func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: time.Unix(1700000000, 0), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(files[n]))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// junkZip packs files into a .zip with junk bytes in front, which unzip
// accepts.
func junkZip(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteString("this is not a zip file, but unzip will skip it\n")
	zw := zip.NewWriter(&buf)
	zw.SetOffset(int64(buf.Len()))
	for n, c := range files {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(c))
	}
	zw.Close()
	return buf.Bytes()
}

// evilUpload is the attacker's own upload, genuinely logged: only the
// index decides whether anyone installs it.
const evilUpload = "authors/id/E/EV/EVIL/Evil-Module-1.0.tar.gz"

// hostileWorld is a mirror of the samples plus the attacker's logged
// upload, with the log's proofs, and the log stopped.
type hostileWorld struct {
	mirror, policy string
}

func newHostileWorld(t *testing.T) *hostileWorld {
	t.Helper()
	from := t.TempDir()
	if out, err := exec.Command("cp", "-r", "../../testdata/authors", from).CombinedOutput(); err != nil {
		t.Fatalf("copy samples: %v %s", err, out)
	}
	evil := filepath.Join(from, filepath.FromSlash(evilUpload))
	os.MkdirAll(filepath.Dir(evil), 0o755)
	os.WriteFile(evil, tarGz(t, hostileFiles("Evil-Module-1.0", "Evil::Module")), 0o644)

	mirror, policy := logMirror(t, from)
	return &hostileWorld{mirror: mirror, policy: policy}
}

// copyMirror returns a copy of the genuine mirror for one case to spoil.
func (w *hostileWorld) copyMirror(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "mirror")
	if out, err := exec.Command("cp", "-a", w.mirror, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy mirror: %v %s", err, out)
	}
	return dst
}

// serve serves a mirror directory over HTTP on loopback.
func serve(t *testing.T, dir string) string {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv.URL
}

// replaceWithHostile puts a hostile distribution (with its CHECKSUMS
// forged to match) at a logged path of mirror.
func replaceWithHostile(t *testing.T, mirror, cpanPath string, b []byte) {
	t.Helper()
	p := filepath.Join(mirror, filepath.FromSlash(cpanPath))
	good := mustRead(t, p)
	os.WriteFile(p, b, 0o644)
	forgeChecksums(t, filepath.Dir(p), good, b)
}

// forgeChecksums rewrites a CHECKSUMS so that bad passes where good did.
func forgeChecksums(t *testing.T, dir string, good, bad []byte) {
	sha256Hex := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	md5Hex := func(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }
	t.Helper()
	cks := filepath.Join(dir, "CHECKSUMS")
	text := string(mustRead(t, cks))
	text = strings.NewReplacer(sha256Hex(good), sha256Hex(bad), md5Hex(good), md5Hex(bad),
		fmt.Sprintf("=> %d", len(good)), fmt.Sprintf("=> %d", len(bad))).Replace(text)
	os.WriteFile(cks, []byte(text), 0o644)
}

// writeIndex replaces the mirror's 02packages with lines (package, version,
// path), gzipped unless plain.
func writeIndex(t *testing.T, mirror string, plain bool, lines ...string) {
	t.Helper()
	body := fmt.Sprintf("File:         02packages.details.txt\nLine-Count:   %d\nLast-Updated: %s\n\n%s\n",
		len(lines), time.Now().UTC().Format(time.RFC1123), strings.Join(lines, "\n"))
	b := []byte(body)
	if !plain {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(b)
		zw.Close()
		b = gz.Bytes()
	}
	p := filepath.Join(mirror, "modules/02packages.details.txt.gz")
	os.WriteFile(p, b, 0o644)
	// A date in the future, as a mirror that wants its copy to win would.
	future := time.Date(2037, 1, 1, 0, 0, 0, 0, time.UTC)
	os.Chtimes(p, future, future)
}

// writeTree writes files (relative names => content) below root and
// returns the directory of the first name's first element.
func writeTree(t *testing.T, root string, files map[string]string) string {
	t.Helper()
	var top string
	for n, c := range files {
		p := filepath.Join(root, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(n, "/")
		top = filepath.Join(root, first)
	}
	return top
}

// hostileMetaDB is a cpanmetadb that resolves every package to the
// attacker's upload; asked says how many requests it got.
func hostileMetaDB(t *testing.T) (url string, asked func() int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		fmt.Fprint(w, "---\ndistfile: E/EV/EVIL/Evil-Module-1.0.tar.gz\nversion: 9.99\n")
	}))
	t.Cleanup(srv.Close)
	return srv.URL, n.Load
}

// mirrorURL is a mirror directory as a file:// URL; a URL stays as it is.
func mirrorURL(mirror string) string {
	if strings.Contains(mirror, "://") {
		return mirror
	}
	return "file://" + mirror
}

// gitRepo makes a git repository (named *.git, as cpanm wants) holding
// one distribution's files at its top.
func gitRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	repo := filepath.Join(t.TempDir(), "Evil.git")
	inRepo := map[string]string{}
	for n, c := range files {
		_, rel, _ := strings.Cut(n, "/")
		inRepo[rel] = c
	}
	writeTree(t, repo, inRepo)
	for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"-c", "user.name=x", "-c", "user.email=x@x", "commit", "-qm", "x"}} {
		if out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	return repo
}

// clientRun is one run of a real client.
type clientRun struct {
	code    int
	out     string
	lib     string // where it installs
	markers string // where hostile code would leave its traces
}

// ran lists the markers hostile code left.
func (r clientRun) ran() []string { return ran(r.markers) }

// assertRefused: the client failed, named the file, and no code of the
// refused distribution ran.
func assertRefused(t *testing.T, r clientRun, names ...string) {
	t.Helper()
	if ran := r.ran(); len(ran) > 0 {
		t.Errorf("code of a refused distribution ran (markers %v); exit %d\n%s", ran, r.code, r.out)
	}
	if r.code == 0 {
		t.Errorf("exit 0, want a refusal\n%s", r.out)
	}
	for _, n := range names {
		if !strings.Contains(r.out, n) {
			t.Errorf("the output does not name %s\n%s", n, r.out)
		}
	}
}

// cleanEnv is the environment of a client run: HOME and the clients'
// homes fresh, nothing routed through a proxy, the user's options off.
func cleanEnv(t *testing.T, policy, markers string, extra ...string) []string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		lk := strings.ToLower(k)
		if strings.HasSuffix(lk, "_proxy") || k == "PERL_CPANM_OPT" || k == "PERL5OPT" || k == "CPANTLOG_NOVERIFY" || strings.HasPrefix(k, "PERL_MM") || strings.HasPrefix(k, "PERL_MB") || k == "PERL_LOCAL_LIB_ROOT" || k == "PERL5LIB" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, append([]string{"CPANTLOG_POLICY=" + policy, "HOME=" + t.TempDir(), "PERL_CPANM_HOME=" + t.TempDir(),
		"CPANTLOG_TEST_MARKERS=" + markers, "CPANTLOG_STATE=" + t.TempDir()}, extra...)...)
}

// cpanmTlog runs the checkout's cpanm-tlog with args, installing into a
// fresh lib.
func cpanmTlog(t *testing.T, policy string, env []string, args ...string) clientRun {
	t.Helper()
	markers := t.TempDir()
	lib := t.TempDir()
	script, _ := filepath.Abs("../../client/perl/bin/cpanm-tlog")
	cmd := exec.Command("perl", append([]string{script, "-n", "-L", lib}, args...)...)
	cmd.Env = cleanEnv(t, policy, markers, env...)
	cmd.Dir = t.TempDir()
	code, out := runExit(t, cmd)
	return clientRun{code: code, out: out, lib: lib, markers: markers}
}

// TestCpanmTlogBuildsOnlyWhatVerified: cpanm-tlog against each way code
// can reach cpanm, with each of cpanm's download backends.
func TestCpanmTlogBuildsOnlyWhatVerified(t *testing.T) {
	needCpanm(t)
	if !perlAvailable(t) {
		t.Skip("perl with CryptX not installed")
	}
	w := newHostileWorld(t)
	tampered := "authors/id/N/NE/NEILB/Text-Diff-1.45.tar.gz"

	t.Run("tampered tarball with forged CHECKSUMS by each backend", func(t *testing.T) {
		m := w.copyMirror(t)
		replaceWithHostile(t, m, tampered, tarGz(t, hostileFiles("Text-Diff-1.45", "Text::Diff")))
		url := serve(t, m)
		backends := map[string][]string{
			"file":       {"--mirror", m},
			"HTTP::Tiny": {"--mirror", url, "--no-lwp", "--no-wget", "--no-curl"},
			"wget":       {"--mirror", url, "--no-lwp", "--no-curl"},
			"curl":       {"--mirror", url, "--no-lwp", "--no-wget"},
			"default":    {"--mirror", url},
		}
		for name, args := range backends {
			r := cpanmTlog(t, w.policy, nil, append(args, "Text::Diff")...)
			if installed(r.lib, "Text/Diff.pm") {
				t.Errorf("%s: the tampered Text::Diff was installed", name)
			}
			assertRefused(t, r, "Text-Diff-1.45.tar.gz")
		}
	})

	// The hook asks the log its proof's checkpoint names (d33d61c): a
	// mirror serving the hostile tarball with a valid proof from a log of
	// its own (another origin and key, that logged exactly these bytes)
	// must not get it built.
	t.Run("a proof from a log the policy does not name", func(t *testing.T) {
		m := w.copyMirror(t)
		hostile := tarGz(t, hostileFiles("Text-Diff-1.45", "Text::Diff"))
		replaceWithHostile(t, m, tampered, hostile)
		dir := t.TempDir()
		if _, err := tlog.Keygen(dir, "evil.example/log"); err != nil {
			t.Fatal(err)
		}
		evil := startLog(t, dir)
		evil.add(t, tampered, hostile, "2024-01-02T03:04:05Z")
		proofFile := filepath.Join(m, filepath.FromSlash(cpan.ProofPath(tampered, sha256.Sum256(hostile))))
		os.MkdirAll(filepath.Dir(proofFile), 0o755)
		os.WriteFile(proofFile, fetch(t, evil.url+"/proof?path="+tampered), 0o644)
		for _, mirror := range []string{m, serve(t, m)} {
			r := cpanmTlog(t, w.policy, nil, "--mirror", mirror, "Text::Diff")
			if installed(r.lib, "Text/Diff.pm") {
				t.Errorf("%s: the hostile Text::Diff was installed", mirror)
			}
			assertRefused(t, r, "Text-Diff-1.45.tar.gz")
			if !strings.Contains(r.out, "checkpoint is from log 'evil.example/log', which the policy does not name") {
				t.Errorf("%s: the refusal does not say the proof is another log's\n%s", mirror, r.out)
			}
		}
	})

	t.Run("archive that rewrites itself", func(t *testing.T) {
		m := w.copyMirror(t)
		files := hostileFiles("Try-Tiny-0.31", "Try::Tiny")
		files["Try-Tiny-0.31.tar.gz"] = "plain text where the archive was\n"
		replaceWithHostile(t, m, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", tarGz(t, files))
		r := cpanmTlog(t, w.policy, nil, "--mirror", m, "Try::Tiny")
		assertRefused(t, r, "Try-Tiny-0.31.tar.gz")
	})

	t.Run("plain-text index pointing at a junk-prefixed zip", func(t *testing.T) {
		m := w.copyMirror(t)
		zipPath := "authors/id/E/EV/EVIL/Try-Tiny-0.32.zip"
		os.WriteFile(filepath.Join(m, zipPath), junkZip(t, hostileFiles("Try-Tiny-0.32", "Try::Tiny")), 0o644)
		writeIndex(t, m, true, "Try::Tiny 0.32 E/EV/EVIL/Try-Tiny-0.32.zip")
		for _, mirror := range []string{m, serve(t, m)} {
			r := cpanmTlog(t, w.policy, nil, "--mirror", mirror, "Try::Tiny")
			assertRefused(t, r, "02packages")
		}
	})

	t.Run("forged gzip index pointing at the attacker's logged upload", func(t *testing.T) {
		m := w.copyMirror(t)
		writeIndex(t, m, false, "Try::Tiny 9.99 E/EV/EVIL/Evil-Module-1.0.tar.gz")
		r := cpanmTlog(t, w.policy, nil, "--mirror", m, "Try::Tiny")
		assertRefused(t, r, "modules/02packages.details.txt.gz")
	})

	t.Run("a poisoned uncompressed index in cpanm's cache is not used", func(t *testing.T) {
		// One plain cpanm run against a mirror serving a forged index,
		// dated 2037, leaves its uncompressed copy in ~/.cpanm/sources.
		home := t.TempDir()
		plain := exec.Command("cpanm", "--mirror", w.mirror, "--mirror-only", "--info", "Try::Tiny")
		plain.Env = append(cleanEnv(t, w.policy, t.TempDir()), "PERL_CPANM_HOME="+home)
		runExit(t, plain)
		src, _ := filepath.Glob(filepath.Join(home, "sources", "*"))
		if len(src) != 1 {
			t.Fatalf("cpanm kept no index source: %v", src)
		}
		idx := "File: 02packages.details.txt\n\nTry::Tiny 9.99 E/EV/EVIL/Evil-Module-1.0.tar.gz\n"
		os.WriteFile(filepath.Join(src[0], "02packages.details.txt"), []byte(idx), 0o644)
		future := time.Date(2037, 1, 1, 0, 0, 0, 0, time.UTC)
		os.Chtimes(filepath.Join(src[0], "02packages.details.txt"), future, future)
		r := cpanmTlog(t, w.policy, []string{"PERL_CPANM_HOME=" + home}, "--mirror", w.mirror, "Try::Tiny")
		if ran := r.ran(); len(ran) > 0 || r.code != 0 || !installed(r.lib, "Try/Tiny.pm") {
			t.Errorf("cpanm-tlog with a poisoned cache: exit %d, markers %v\n%s", r.code, ran, r.out)
		}
	})

	t.Run("--mirror-index and PERL_CPANM_OPT", func(t *testing.T) {
		idx := filepath.Join(t.TempDir(), "forged.txt")
		os.WriteFile(idx, []byte("File: x\n\nTry::Tiny 9.99 E/EV/EVIL/Evil-Module-1.0.tar.gz\n"), 0o644)
		r := cpanmTlog(t, w.policy, nil, "--mirror", w.mirror, "--mirror-index", idx, "Try::Tiny")
		assertRefused(t, r, idx)
		// From the environment: ignored, and said.
		r = cpanmTlog(t, w.policy, []string{"PERL_CPANM_OPT=--mirror-index " + idx + " --no-mirror-only"}, "--mirror", w.mirror, "Try::Tiny")
		if ran := r.ran(); len(ran) > 0 || r.code != 0 || !installed(r.lib, "Try/Tiny.pm") || !strings.Contains(r.out, "PERL_CPANM_OPT") {
			t.Errorf("PERL_CPANM_OPT naming a forged index: exit %d, markers %v\n%s", r.code, ran, r.out)
		}
	})

	t.Run("cpanmetadb is not asked", func(t *testing.T) {
		metadb, asked := hostileMetaDB(t)
		r := cpanmTlog(t, w.policy, nil, "--mirror", w.mirror, "--no-mirror-only", "--cpanmetadb", metadb+"/v1.0/", "Try::Tiny")
		if ran := r.ran(); len(ran) > 0 || asked() != 0 || r.code != 0 || !installed(r.lib, "Try/Tiny.pm") {
			t.Errorf("--no-mirror-only with a hostile cpanmetadb: asked %d times, exit %d, markers %v\n%s", asked(), r.code, ran, r.out)
		}
	})

	t.Run("git URL", func(t *testing.T) {
		if _, err := exec.LookPath("git"); err != nil {
			t.Skip("git not installed")
		}
		repo := gitRepo(t, hostileFiles("Evil-Module-1.0", "Evil::Module"))
		r := cpanmTlog(t, w.policy, nil, "--mirror", w.mirror, repo)
		assertRefused(t, r, repo)
		if installed(r.lib, "Evil/Module.pm") || strings.Contains(r.out, "Cloning") {
			t.Errorf("the git repository was cloned or installed\n%s", r.out)
		}
	})

	t.Run("local directory or tarball or URL outside authors-id", func(t *testing.T) {
		dir := writeTree(t, t.TempDir(), hostileFiles("Evil-Module-1.0", "Evil::Module"))
		r := cpanmTlog(t, w.policy, nil, "--mirror", w.mirror, dir)
		assertRefused(t, r, dir)
		// Named in CPANTLOG_NOVERIFY: built, and listed as exempt.
		r = cpanmTlog(t, w.policy, []string{"CPANTLOG_NOVERIFY=" + filepath.Dir(dir)}, "--mirror", w.mirror, dir)
		if r.code != 0 || !installed(r.lib, "Evil/Module.pm") || !strings.Contains(r.out, "not verified (exempt by "+filepath.Dir(dir)+")") {
			t.Errorf("an exempt local directory: exit %d\n%s", r.code, r.out)
		}

		tarball := filepath.Join(t.TempDir(), "Evil-Module-1.0.tar.gz")
		os.WriteFile(tarball, tarGz(t, hostileFiles("Evil-Module-1.0", "Evil::Module")), 0o644)
		r = cpanmTlog(t, w.policy, nil, "--mirror", w.mirror, tarball)
		assertRefused(t, r, tarball)
		// Exempt by its directory: built, and listed.
		r = cpanmTlog(t, w.policy, []string{"CPANTLOG_NOVERIFY=" + filepath.Dir(tarball)}, "--mirror", w.mirror, tarball)
		if r.code != 0 || !installed(r.lib, "Evil/Module.pm") || !strings.Contains(r.out, "not verified (exempt by "+filepath.Dir(tarball)+")") {
			t.Errorf("an exempt local tarball: exit %d\n%s", r.code, r.out)
		}

		url := serve(t, filepath.Dir(tarball)) + "/Evil-Module-1.0.tar.gz"
		r = cpanmTlog(t, w.policy, nil, "--mirror", w.mirror, url)
		assertRefused(t, r, url)

		// A local copy of a logged file, where CPAN keeps it: its bytes
		// are what the log has, so it builds.
		r = cpanmTlog(t, w.policy, nil, "--mirror", w.mirror, filepath.Join(w.mirror, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz"))
		if r.code != 0 || !installed(r.lib, "Try/Tiny.pm") {
			t.Errorf("a local copy of a logged tarball: exit %d\n%s", r.code, r.out)
		}
	})

	t.Run("look at a tampered distribution", func(t *testing.T) {
		m := w.copyMirror(t)
		replaceWithHostile(t, m, tampered, tarGz(t, hostileFiles("Text-Diff-1.45", "Text::Diff")))
		markers := t.TempDir()
		shell := filepath.Join(t.TempDir(), "shell")
		os.WriteFile(shell, []byte("#!/bin/sh\ntouch "+filepath.Join(markers, "look-shell")+"\n"), 0o755)
		r := cpanmTlog(t, w.policy, []string{"SHELL=" + shell, "CPANTLOG_TEST_MARKERS=" + markers}, "--mirror", m, "--look", "Text::Diff")
		r.markers = markers
		assertRefused(t, r, "Text-Diff-1.45.tar.gz")
	})

	t.Run("a leftover CPANTLOG_EXEC_CHECK", func(t *testing.T) {
		m := w.copyMirror(t)
		replaceWithHostile(t, m, tampered, tarGz(t, hostileFiles("Text-Diff-1.45", "Text::Diff")))
		yes := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }))
		defer yes.Close()
		r := cpanmTlog(t, w.policy, []string{"CPANTLOG_EXEC_CHECK=" + yes.URL + "/.cpantlog/check", "CPANTLOG_EXEC_TOKEN=x"}, "--mirror", m, "Text::Diff")
		assertRefused(t, r, "Text-Diff-1.45.tar.gz", "CPANTLOG_EXEC_CHECK")
	})

	t.Run("--installdeps of a directory", func(t *testing.T) {
		dir := writeTree(t, t.TempDir(), hostileFiles("Evil-Module-1.0", "Evil::Module"))
		// Without a cpanfile cpanm would run its Makefile.PL.
		r := cpanmTlog(t, w.policy, nil, "--mirror", w.mirror, "--installdeps", dir)
		assertRefused(t, r, dir)
		// With one, it is the user's project: the cpanfile is read, its
		// dependencies installed, nothing of it built.
		os.WriteFile(filepath.Join(dir, "cpanfile"), []byte("requires 'Try::Tiny';\n"), 0o644)
		r = cpanmTlog(t, w.policy, nil, "--mirror", w.mirror, "--installdeps", dir)
		if ran := r.ran(); len(ran) > 0 || r.code != 0 || !installed(r.lib, "Try/Tiny.pm") || installed(r.lib, "Evil/Module.pm") || !strings.Contains(r.out, "--installdeps: your project") {
			t.Errorf("--installdeps of a project with a cpanfile: exit %d, markers %v\n%s", r.code, ran, r.out)
		}
	})

	t.Run("an exemption does not stretch", func(t *testing.T) {
		d := t.TempDir()
		os.MkdirAll(filepath.Join(d, "myorg"), 0o755)
		os.MkdirAll(filepath.Join(d, "evil"), 0o755)
		os.WriteFile(filepath.Join(d, "evil", "Evil-Module-1.0.tar.gz"), tarGz(t, hostileFiles("Evil-Module-1.0", "Evil::Module")), 0o644)
		srv := serve(t, d)
		for _, backend := range [][]string{{"--no-lwp", "--no-wget", "--no-curl"}, {"--no-lwp", "--no-wget"}} {
			url := srv + "/myorg/../evil/Evil-Module-1.0.tar.gz"
			r := cpanmTlog(t, w.policy, []string{"CPANTLOG_NOVERIFY=" + srv + "/myorg"}, append(append([]string{"--mirror", w.mirror}, backend...), url)...)
			assertRefused(t, r, url)
		}
		url := srv + "/evil/Evil-Module-1.0.tar.gz?/authors/id/M/MY/MYCO/Evil-Module-1.0.tar.gz"
		r := cpanmTlog(t, w.policy, []string{"CPANTLOG_NOVERIFY=authors/id/M/MY/MYCO"}, "--mirror", w.mirror, url)
		assertRefused(t, r, url)
	})

	t.Run("PERL5LIB cannot shadow a module the hook uses", func(t *testing.T) {
		m := w.copyMirror(t)
		replaceWithHostile(t, m, tampered, tarGz(t, hostileFiles("Text-Diff-1.45", "Text::Diff")))
		evil := t.TempDir()
		os.MkdirAll(filepath.Join(evil, "File"), 0o755)
		os.WriteFile(filepath.Join(evil, "File", "Temp.pm"), []byte(`{ local @INC = grep { ref || $_ ne '`+evil+`' } @INC; delete $INC{'File/Temp.pm'}; require File::Temp; }
INIT { no warnings; *CPAN::TLog::Cpanm::arrive = sub { my ($s,$f)=@_; open my $h,'<:raw',$f; local $/; my $b=<$h>; ('verified',$b,'0' x 64) } }
1;
`), 0o644)
		r := cpanmTlog(t, w.policy, []string{"PERL5LIB=" + evil}, "--mirror", m, "Text::Diff")
		assertRefused(t, r, "Text-Diff-1.45.tar.gz")
	})

	t.Run("PERL5OPT cannot unwrap the hook", func(t *testing.T) {
		m := w.copyMirror(t)
		replaceWithHostile(t, m, tampered, tarGz(t, hostileFiles("Text-Diff-1.45", "Text::Diff")))
		unwrap := filepath.Join(t.TempDir(), "Unwrap.pm")
		os.WriteFile(unwrap, []byte("package Unwrap; INIT { no warnings; *CPAN::TLog::Cpanm::arrive = sub { ('verified', '', '') } } 1;\n"), 0o644)
		r := cpanmTlog(t, w.policy, []string{"PERL5OPT=-I" + filepath.Dir(unwrap) + " -MUnwrap"}, "--mirror", m, "Text::Diff")
		assertRefused(t, r, "Text-Diff-1.45.tar.gz", "PERL5OPT")
	})
}

// TestCartonTlogBuildsOnlyWhatVerified: carton-tlog with cpanfile
// sources that name code outside the verified index.
func TestCartonTlogBuildsOnlyWhatVerified(t *testing.T) {
	if _, err := exec.LookPath("carton"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("carton missing in CI: .ci/run installs Debian's carton")
		}
		t.Skip("carton not installed (Debian: carton)")
	}
	if !perlAvailable(t) {
		t.Skip("perl with CryptX not installed")
	}
	w := newHostileWorld(t)
	carton := func(mirror, cpanfile string, env ...string) clientRun {
		t.Helper()
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "cpanfile"), []byte(cpanfile), 0o644)
		script, _ := filepath.Abs("../../client/perl/bin/carton-tlog")
		markers := t.TempDir()
		args := []string{script}
		if mirror != "" {
			args = append(args, "--mirror", mirror)
		}
		cmd := exec.Command("perl", append(args, "install")...)
		cmd.Dir = dir
		cmd.Env = append(cleanEnv(t, w.policy, markers, env...), "PERL_CARTON_PATH=", "PERL_CARTON_MIRROR=")
		code, out := runExit(t, cmd)
		return clientRun{code: code, out: out, lib: filepath.Join(dir, "local"), markers: markers}
	}

	t.Run("tampered tarball over HTTP", func(t *testing.T) {
		m := w.copyMirror(t)
		replaceWithHostile(t, m, "authors/id/N/NE/NEILB/Text-Diff-1.45.tar.gz", tarGz(t, hostileFiles("Text-Diff-1.45", "Text::Diff")))
		r := carton(serve(t, m), "requires 'Text::Diff';\n")
		assertRefused(t, r, "Text-Diff-1.45.tar.gz")
	})

	t.Run("cpanfile url outside authors/id", func(t *testing.T) {
		d := t.TempDir()
		os.WriteFile(filepath.Join(d, "Evil-Module-1.0.tar.gz"), tarGz(t, hostileFiles("Evil-Module-1.0", "Evil::Module")), 0o644)
		url := serve(t, d) + "/Evil-Module-1.0.tar.gz"
		r := carton(w.mirror, fmt.Sprintf("requires 'Evil::Module', url => '%s';\n", url))
		assertRefused(t, r, url)
	})

	t.Run("cpanfile dist pinned to a tampered file", func(t *testing.T) {
		m := w.copyMirror(t)
		replaceWithHostile(t, m, "authors/id/N/NE/NEILB/Text-Diff-1.45.tar.gz", tarGz(t, hostileFiles("Text-Diff-1.45", "Text::Diff")))
		r := carton(m, "requires 'Text::Diff', dist => 'NEILB/Text-Diff-1.45.tar.gz';\n")
		assertRefused(t, r, "Text-Diff-1.45.tar.gz")
	})

	t.Run("cpanfile mirror with a forged index", func(t *testing.T) {
		forged := w.copyMirror(t)
		writeIndex(t, forged, false, "Text::Diff 9.99 E/EV/EVIL/Evil-Module-1.0.tar.gz")
		r := carton(w.mirror, fmt.Sprintf("requires 'Text::Diff', mirror => 'file://%s';\n", forged))
		// Menlo may not read a requirement's mirror at all; whatever it
		// does, nothing of the forged index's choice runs or installs.
		pm, _ := os.ReadFile(filepath.Join(r.lib, "lib/perl5/Text/Diff.pm"))
		if ran := r.ran(); len(ran) > 0 || bytes.Contains(pm, []byte("CPANTLOG_TEST_MARKERS")) || (r.code == 0) != (len(pm) > 0) {
			t.Errorf("a cpanfile mirror with a forged index: exit %d, markers %v\n%s", r.code, ran, r.out)
		}
	})

	t.Run("cpanfile git", func(t *testing.T) {
		if _, err := exec.LookPath("git"); err != nil {
			t.Skip("git not installed")
		}
		// A package no index has: only the git repository could supply it.
		repo := gitRepo(t, hostileFiles("Evil-Git-1.0", "Evil::Git"))
		r := carton(w.mirror, fmt.Sprintf("requires 'Evil::Git', git => '%s';\n", repo))
		if ran := r.ran(); len(ran) > 0 || r.code == 0 || installed(r.lib, "Evil/Git.pm") {
			t.Errorf("cpanfile git: exit %d, markers %v\n%s", r.code, ran, r.out)
		}
	})

	t.Run("deployment from cpanfile.snapshot with a tampered tarball", func(t *testing.T) {
		m := w.copyMirror(t)
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "cpanfile"), []byte("requires 'Text::Diff';\n"), 0o644)
		script, _ := filepath.Abs("../../client/perl/bin/carton-tlog")
		run := func(args ...string) clientRun {
			markers := t.TempDir()
			cmd := exec.Command("perl", append([]string{script, "--mirror", m}, args...)...)
			cmd.Dir = dir
			cmd.Env = append(cleanEnv(t, w.policy, markers), "PERL_CARTON_PATH=", "PERL_CARTON_MIRROR=")
			code, out := runExit(t, cmd)
			return clientRun{code: code, out: out, lib: filepath.Join(dir, "local"), markers: markers}
		}
		if r := run("install"); r.code != 0 || !installed(r.lib, "Text/Diff.pm") {
			t.Fatalf("carton-tlog install: exit %d\n%s", r.code, r.out)
		}
		os.RemoveAll(filepath.Join(dir, "local"))
		replaceWithHostile(t, m, "authors/id/N/NE/NEILB/Text-Diff-1.45.tar.gz", tarGz(t, hostileFiles("Text-Diff-1.45", "Text::Diff")))
		r := run("install", "--deployment")
		if installed(r.lib, "Text/Diff.pm") {
			t.Errorf("--deployment installed the tampered Text::Diff")
		}
		assertRefused(t, r, "Text-Diff-1.45.tar.gz")
	})

	t.Run("no mirror given: cpanmetadb is not asked", func(t *testing.T) {
		metadb, asked := hostileMetaDB(t)
		// Carton's default mirror, routed nowhere: the only answer it
		// could get is the hostile cpanmetadb's.
		r := carton("", "requires 'Evil::Module';\n", "PERL_CPANM_OPT=--cpanmetadb "+metadb+"/v1.0/")
		if ran := r.ran(); len(ran) > 0 || asked() != 0 || r.code == 0 || installed(r.lib, "Evil/Module.pm") {
			t.Errorf("carton-tlog with its default mirror: cpanmetadb asked %d times, exit %d, markers %v\n%s", asked(), r.code, ran, r.out)
		}
	})
}

// TestCPANPluginBuildsOnlyWhatVerified: CPAN.pm with the plugin, a
// file:// mirror: a tampered distribution's Makefile.PL never runs, with
// or without force; a forged index builds nothing; a build directory
// left from an earlier session is fetched and verified again; a local
// directory is refused.
func TestCPANPluginBuildsOnlyWhatVerified(t *testing.T) {
	if _, err := exec.LookPath("cpan"); err != nil {
		t.Skip("cpan (CPAN.pm) not installed")
	}
	if !perlAvailable(t) {
		t.Skip("perl with CryptX not installed")
	}
	w := newHostileWorld(t)
	lib, _ := filepath.Abs("../../client/perl/lib")
	type session struct{ home, base string }
	newSession := func() session { return session{t.TempDir(), t.TempDir()} }
	cpan := func(s session, mirror string, reuse bool, dir string, args ...string) clientRun {
		t.Helper()
		conf := filepath.Join(t.TempDir(), "CPANConfig.pm")
		os.WriteFile(conf, []byte(fmt.Sprintf(`require CPAN::HandleConfig;
{ local $CPAN::Be_Silent = 1; CPAN::HandleConfig->load(write_file => 0); }
$CPAN::Config->{urllist} = [q[%s/]];
$CPAN::Config->{plugin_list} = [q[CPAN::Plugin::TLog]];
$CPAN::Config->{cpan_home} = q[%s/.cpan];
$CPAN::Config->{keep_source_where} = q[%s/sources];
$CPAN::Config->{build_dir} = q[%s/build];
$CPAN::Config->{prefs_dir} = q[%s/prefs];
$CPAN::Config->{build_dir_reuse} = %d;
$CPAN::Config->{yaml_module} = q[YAML];
$CPAN::Config->{connect_to_internet_ok} = 1;
$CPAN::Config->{pushy_https} = 0;
$CPAN::Config->{build_requires_install_policy} = q[yes];
$CPAN::Config->{prerequisites_policy} = q[follow];
1;
`, mirrorURL(mirror), s.home, s.home, s.home, s.home, map[bool]int{false: 0, true: 1}[reuse])), 0o600)
		markers := t.TempDir()
		var env []string // arguments CPANTLOG_X=... are the environment's
		for len(args) > 0 && strings.HasPrefix(args[len(args)-1], "CPANTLOG_") {
			if args[len(args)-1] == "CPANTLOG_PRELOAD" {
				env = append(env, "PERL5OPT=-MCPAN::Plugin::TLog")
			} else {
				env = append(env, args[len(args)-1])
			}
			args = args[:len(args)-1]
		}
		cmd := exec.Command("cpan", append([]string{"-j", conf}, args...)...)
		if args[0] == "look" {
			// cpan(1) has no look: CPAN::Shell's, with the same configuration.
			shell := filepath.Join(t.TempDir(), "shell")
			os.WriteFile(shell, []byte("#!/bin/sh\ntouch "+filepath.Join(markers, "look-shell")+"\n"), 0o755)
			cmd = exec.Command("perl", "-MCPAN", "-e", `do $ARGV[0] or die "config: $@ $!"; $CPAN::Config->{shell} = $ARGV[1]; CPAN::Shell->look($ARGV[2]); exit 0`, conf, shell, args[1])
		}
		cmd.Dir = dir
		cmd.Env = append(cleanEnv(t, w.policy, markers, env...), "HOME="+s.home, "PERL5LIB="+lib+":"+filepath.Join(s.base, "lib/perl5"),
			"PERL_MM_OPT=INSTALL_BASE="+s.base, "PERL_MB_OPT=--install_base "+s.base, "PERL_MM_USE_DEFAULT=1", "CPAN_OPTS=")
		code, out := runExit(t, cmd)
		return clientRun{code: code, out: out, lib: s.base, markers: markers}
	}

	t.Run("tampered tarball from an HTTP mirror", func(t *testing.T) {
		m := w.copyMirror(t)
		replaceWithHostile(t, m, "authors/id/N/NE/NEILB/Text-Diff-1.45.tar.gz", tarGz(t, hostileFiles("Text-Diff-1.45", "Text::Diff")))
		r := cpan(newSession(), serve(t, m), false, "", "-T", "Text::Diff")
		if installed(r.lib, "Text/Diff.pm") {
			t.Error("cpan installed the tampered Text::Diff from an HTTP mirror")
		}
		assertRefused(t, r, "authors/id/N/NE/NEILB/Text-Diff-1.45.tar.gz")
	})

	t.Run("tampered tarball with and without force", func(t *testing.T) {
		m := w.copyMirror(t)
		replaceWithHostile(t, m, "authors/id/N/NE/NEILB/Text-Diff-1.45.tar.gz", tarGz(t, hostileFiles("Text-Diff-1.45", "Text::Diff")))
		for _, args := range [][]string{{"-T", "Text::Diff"}, {"-f", "-i", "Text::Diff"}, {"-t", "Text::Diff"}} {
			r := cpan(newSession(), m, false, "", args...)
			if installed(r.lib, "Text/Diff.pm") {
				t.Errorf("cpan %v installed the tampered Text::Diff", args)
			}
			assertRefused(t, r, "authors/id/N/NE/NEILB/Text-Diff-1.45.tar.gz")
		}
	})

	t.Run("look at a tampered distribution", func(t *testing.T) {
		m := w.copyMirror(t)
		replaceWithHostile(t, m, "authors/id/N/NE/NEILB/Text-Diff-1.45.tar.gz", tarGz(t, hostileFiles("Text-Diff-1.45", "Text::Diff")))
		r := cpan(newSession(), m, false, "", "look", "Text::Diff")
		assertRefused(t, r, "authors/id/N/NE/NEILB/Text-Diff-1.45.tar.gz")
	})

	t.Run("forged index pointing at the attacker's logged upload", func(t *testing.T) {
		m := w.copyMirror(t)
		writeIndex(t, m, false, "Sub::Install 9.99 E/EV/EVIL/Evil-Module-1.0.tar.gz")
		r := cpan(newSession(), m, false, "", "-T", "Sub::Install")
		assertRefused(t, r, "modules/02packages.details.txt.gz")
	})

	t.Run("a build directory from an earlier session", func(t *testing.T) {
		// CPAN.pm keeps a session's state for the next only with YAML.
		if err := exec.Command("perl", "-MYAML", "-e1").Run(); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("YAML missing in CI: .ci/run installs Debian's libyaml-perl")
			}
			t.Skip("YAML not installed (Debian: libyaml-perl): CPAN.pm reuses no build directory without it")
		}
		// Evil::Module is the attacker's logged (and indexed) upload: its
		// code may run, since the log has it; no system perl has it.
		s := newSession()
		r := cpan(s, w.mirror, true, "", "-T", "Evil::Module")
		if r.code != 0 {
			t.Fatalf("first session: exit %d\n%s", r.code, r.out)
		}
		// Someone rewrites the tree CPAN.pm left behind.
		pls, _ := filepath.Glob(filepath.Join(s.home, "build", "Evil-Module-1.0-*", "Makefile.PL"))
		if len(pls) != 1 {
			t.Fatalf("the first session left no build directory: %v", pls)
		}
		os.WriteFile(pls[0], []byte(markerPerl("Makefile.PL-leftover")+string(mustRead(t, pls[0]))), 0o644)
		test := filepath.Join(filepath.Dir(pls[0]), "t", "marker.t")
		os.WriteFile(test, []byte(markerPerl("test-leftover")+string(mustRead(t, test))), 0o644)
		r = cpan(s, w.mirror, true, "", "-f", "-t", "Evil::Module")
		if ran := r.ran(); slices.Contains(ran, "Makefile.PL-leftover") || slices.Contains(ran, "test-leftover") || !slices.Contains(ran, "test-Evil-Module-1.0") {
			t.Errorf("a leftover build directory: markers %v (want the verified tree's own test marker only)\n%s", ran, r.out)
		}
	})

	t.Run("distroprefs patch from the mirror", func(t *testing.T) {
		m := w.copyMirror(t)
		patch := "--- Makefile.PL\n+++ Makefile.PL\n@@ -1,1 +1,2 @@\n+" + strings.TrimSuffix(markerPerl("Makefile.PL-patched"), "\n") + "\n use strict;\n"
		p := filepath.Join(m, "authors/id/N/NE/NEILB/patches/Text-Diff-evil.patch")
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(patch), 0o644)
		s := newSession()
		os.MkdirAll(filepath.Join(s.home, "prefs"), 0o755)
		os.WriteFile(filepath.Join(s.home, "prefs", "textdiff.yml"), []byte("---\nmatch:\n  distribution: \"^NEILB/Text-Diff-\"\npatches:\n  - \"NEILB/patches/Text-Diff-evil.patch\"\n"), 0o644)
		r := cpan(s, m, false, "", "-T", "Text::Diff")
		assertRefused(t, r, "authors/id/N/NE/NEILB/patches/Text-Diff-evil.patch")
	})

	t.Run("clean in a leftover tree", func(t *testing.T) {
		if err := exec.Command("perl", "-MYAML", "-e1").Run(); err != nil {
			t.Skip("YAML not installed (Debian: libyaml-perl)")
		}
		s := newSession()
		if r := cpan(s, w.mirror, true, "", "-T", "Evil::Module"); r.code != 0 {
			t.Fatalf("first session: exit %d\n%s", r.code, r.out)
		}
		mks, _ := filepath.Glob(filepath.Join(s.home, "build", "Evil-Module-1.0-*", "Makefile"))
		if len(mks) != 1 {
			t.Fatalf("no Makefile left: %v", mks)
		}
		os.WriteFile(mks[0], append([]byte("clean ::\n\ttouch $(CPANTLOG_TEST_MARKERS)/make-clean-leftover\n\n"), mustRead(t, mks[0])...), 0o644)
		// cpan -c is no hook of CPAN.pm's: the plugin is loaded by perl.
		r := cpan(s, w.mirror, true, "", "-c", "Evil::Module", "CPANTLOG_PRELOAD")
		if ran := r.ran(); len(ran) > 0 {
			t.Errorf("make clean ran in a leftover tree (markers %v)\n%s", ran, r.out)
		}
	})

	t.Run("a policy that cannot be read", func(t *testing.T) {
		empty := filepath.Join(t.TempDir(), "empty")
		os.WriteFile(empty, nil, 0o644)
		r := cpan(newSession(), w.mirror, false, "", "-T", "Text::Diff", "CPANTLOG_POLICY="+empty)
		if ran := r.ran(); len(ran) > 0 || r.code != 2 || installed(r.lib, "Text/Diff.pm") {
			t.Errorf("an empty policy: exit %d (want 2, could not check), markers %v\n%s", r.code, ran, r.out)
		}
	})

	t.Run("a file mirror's tarball swapped after the check", func(t *testing.T) {
		m := w.copyMirror(t)
		target := filepath.Join(m, "authors/id/N/NE/NEILB/Text-Diff-1.45.tar.gz")
		bad := filepath.Join(m, "bad.tar.gz")
		os.WriteFile(bad, tarGz(t, hostileFiles("Text-Diff-1.45", "Text::Diff")), 0o644)
		// The genuine bytes are read (and verified); then the file is
		// replaced, before CPAN.pm unpacks it.
		swapped := swapAfterReads(t, target, bad, 5)
		r := cpan(newSession(), m, false, "", "-T", "Text::Diff")
		if ran := r.ran(); len(ran) > 0 {
			t.Errorf("the swapped tarball's code ran (markers %v; swapped: %v)\n%s", ran, swapped(), r.out)
		}
	})

	t.Run("local directory", func(t *testing.T) {
		dir := writeTree(t, t.TempDir(), hostileFiles("Evil-Module-1.0", "Evil::Module"))
		r := cpan(newSession(), w.mirror, false, dir, "-t", ".")
		assertRefused(t, r, dir)
		r = cpan(newSession(), w.mirror, false, dir, "-t", ".", "CPANTLOG_NOVERIFY="+dir)
		if ran := r.ran(); r.code != 0 || len(ran) != 2 || !strings.Contains(r.out, "not verified (exempt by "+dir+")") {
			t.Errorf("cpan . exempt: exit %d, markers %v\n%s", r.code, ran, r.out)
		}
	})
}
