package monitor

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// mkUpload makes a valid upload leaf.
func mkUpload(t testing.TB, path, uploader, content string, when time.Time, sig *entry.Sigstore) []byte {
	t.Helper()
	e := &entry.Entry{Kind: entry.Upload, Path: path, Size: uint64(len(content)), SHA256: sha256.Sum256([]byte(content)), Uploader: uploader, Time: when.UTC().Truncate(time.Second), Sigstore: sig}
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// craftedLog writes arbitrary leaves, valid or not, into a Tessera POSIX
// tree signed with a fresh key (or signer, when given) and serves the tree
// as static files, as a CDN would. It returns the URL, the tree directory
// and the verifier key.
func craftedLog(t testing.TB, leaves [][]byte, signer note.Signer, dir string) (string, string, string, *atomic.Int64) {
	t.Helper()
	var vkey string
	if signer == nil {
		skey, v, err := note.GenerateKey(rand.Reader, tlog.DefaultOrigin)
		if err != nil {
			t.Fatal(err)
		}
		signer, _ = note.NewSigner(skey)
		vkey = v
	}
	if dir == "" {
		dir = t.TempDir()
	}
	appendLeaves(t, dir, signer, leaves)
	var bundleFetches atomic.Int64
	fs := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/tile/entries/") {
			bundleFetches.Add(1)
		}
		fs.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, dir, vkey, &bundleFetches
}

func appendLeaves(t testing.TB, dir string, signer note.Signer, leaves [][]byte) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	driver, err := posix.New(ctx, posix.Config{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	app, shutdown, _, err := tessera.NewAppender(ctx, driver, tessera.NewAppendOptions().
		WithCheckpointSigner(signer).WithCheckpointInterval(100*time.Millisecond).WithBatching(1024, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var futures []tessera.IndexFuture
	for _, l := range leaves {
		futures = append(futures, app.Add(ctx, tessera.NewEntry(l)))
	}
	for _, f := range futures {
		if _, err := f(); err != nil {
			t.Fatal(err)
		}
	}
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

type run struct {
	findings []Finding
	err      error
}

func (r run) kinds() string {
	var k []string
	for _, f := range r.findings {
		k = append(k, f.Kind)
	}
	return strings.Join(k, ",")
}

// monitorOnce runs one round and delivers, like 'cpantlog-monitor --once'.
func monitorOnce(t testing.TB, logURL, vkey, stateDir string, watch []WatchRule, peers ...string) run {
	t.Helper()
	p, err := client.ParsePolicy([]byte(fmt.Sprintf("log %s %s\nquorum none\n", vkey, logURL)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Policy: p, StateDir: stateDir, Watch: watch, Peers: peers, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	err = m.Sync(context.Background())
	var out bytes.Buffer
	fs, derr := m.Deliver(context.Background(), WriterSink{W: &out})
	if derr != nil {
		t.Fatal(derr)
	}
	if len(fs) > 0 && !strings.Contains(out.String(), fs[0].Kind) {
		t.Errorf("text output lacks the finding: %q", out.String())
	}
	return run{findings: fs, err: err}
}

func TestRulesOnCraftedLogs(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	idA := &entry.Sigstore{ArtifactSHA256: sha256.Sum256([]byte("A-1")), Issuer: "https://token.actions.githubusercontent.com", SAN: "https://github.com/a/a/.github/workflows/r.yml@refs/tags/v1", SourceRepo: "https://github.com/a/a"}
	idB := &entry.Sigstore{ArtifactSHA256: sha256.Sum256([]byte("A-2")), Issuer: "https://token.actions.githubusercontent.com", SAN: "https://github.com/evil/a/.github/workflows/r.yml@refs/tags/v2", SourceRepo: "https://github.com/evil/a"}
	base := func(t *testing.T) [][]byte {
		return [][]byte{
			mkUpload(t, "authors/id/A/AB/ABC/Foo-1.0.tar.gz", "ABC", "foo1", t0, nil),
			mkUpload(t, "authors/id/A/AB/ABC/README", "ABC", "v1", t0, nil),
			mkUpload(t, "authors/id/A/AB/ABC/README", "ABC", "v2", t0.Add(time.Hour), nil), // PAUSE allows this
			mkUpload(t, "authors/id/A/AB/ABC/Foo-1.1.tar.gz", "ABC", "foo11", t0.Add(2*time.Hour), nil),
		}
	}
	cases := []struct {
		name  string
		extra func(t *testing.T) [][]byte
		watch string
		want  string // comma-separated kinds
	}{
		{"clean", nil, "", ""},
		{"path rewritten", func(t *testing.T) [][]byte {
			return [][]byte{mkUpload(t, "authors/id/A/AB/ABC/Foo-1.0.tar.gz", "ABC", "evil", t0.Add(3*time.Hour), nil)}
		}, "", KindPathRewritten},
		{"same file logged again", func(t *testing.T) [][]byte {
			return [][]byte{mkUpload(t, "authors/id/A/AB/ABC/Foo-1.0.tar.gz", "ABC", "foo1", t0.Add(3*time.Hour), nil)}
		}, "", ""},
		{"uploader mismatch", func(t *testing.T) [][]byte {
			return [][]byte{mkUpload(t, "authors/id/A/AB/ABC/Foo-2.0.tar.gz", "MALLORY", "foo2", t0.Add(3*time.Hour), nil)}
		}, "", KindUploaderMismatch},
		{"watched dist", func(t *testing.T) [][]byte {
			return [][]byte{mkUpload(t, "authors/id/X/XY/XYZ/Bar-2.0.tar.gz", "XYZ", "bar", t0.Add(3*time.Hour), nil)}
		}, "dist Bar\n", KindWatched},
		{"watched author", func(t *testing.T) [][]byte {
			return [][]byte{mkUpload(t, "authors/id/X/XY/XYZ/Bar-2.0.tar.gz", "XYZ", "bar", t0.Add(3*time.Hour), nil)}
		}, "author XYZ\n", KindWatched},
		{"watched path", func(t *testing.T) [][]byte {
			return [][]byte{mkUpload(t, "authors/id/X/XY/XYZ/Bar-2.0.tar.gz", "XYZ", "bar", t0.Add(3*time.Hour), nil)}
		}, "path authors/id/X/*/*/*.tar.gz\n", KindWatched},
		{"watch not matching", func(t *testing.T) [][]byte {
			return [][]byte{mkUpload(t, "authors/id/X/XY/XYZ/Bar-2.0.tar.gz", "XYZ", "bar", t0.Add(3*time.Hour), nil)}
		}, "dist Baz\nauthor ABD\npath authors/id/Q/*\n", ""},
		{"watched deletion", func(t *testing.T) [][]byte {
			e := &entry.Entry{Kind: entry.Delete, Path: "authors/id/A/AB/ABC/Foo-1.0.tar.gz", Time: t0.Add(5 * time.Hour)}
			b, _ := e.Marshal()
			return [][]byte{b}
		}, "dist Foo\n", "watched,watched,watched"}, // two uploads of Foo and the deletion
		{"malformed entry", func(t *testing.T) [][]byte { return [][]byte{[]byte("cpan-tlog/v1 upload\npath x\n")} }, "", KindEntryMalformed},
		{"sigstore same identity", func(t *testing.T) [][]byte {
			id2 := *idA
			return [][]byte{
				mkUpload(t, "authors/id/A/AB/ABC/A-1.tar.gz", "ABC", "A-1", t0, nil),
				mkUpload(t, "authors/id/A/AB/ABC/A-1.tar.gz.sigstore.json", "ABC", "bundle1", t0, idA),
				mkUpload(t, "authors/id/A/AB/ABC/A-2.tar.gz", "ABC", "A-2", t0.Add(time.Hour), nil),
				mkUpload(t, "authors/id/A/AB/ABC/A-2.tar.gz.sigstore.json", "ABC", "bundle2", t0.Add(time.Hour), &id2),
				mkUpload(t, "authors/id/A/AB/ABC/Later-1.tar.gz", "ABC", "later", t0.Add(48*time.Hour), nil),
			}
		}, "", ""},
		{"sigstore identity changed", func(t *testing.T) [][]byte {
			return [][]byte{
				mkUpload(t, "authors/id/A/AB/ABC/A-1.tar.gz", "ABC", "A-1", t0, nil),
				mkUpload(t, "authors/id/A/AB/ABC/A-1.tar.gz.sigstore.json", "ABC", "bundle1", t0, idA),
				mkUpload(t, "authors/id/A/AB/ABC/A-2.tar.gz", "ABC", "A-2", t0.Add(time.Hour), nil),
				mkUpload(t, "authors/id/A/AB/ABC/A-2.tar.gz.sigstore.json", "ABC", "bundle2", t0.Add(time.Hour), idB),
			}
		}, "", KindSigstoreChanged},
		{"sigstore identity missing", func(t *testing.T) [][]byte {
			return [][]byte{
				mkUpload(t, "authors/id/A/AB/ABC/A-1.tar.gz", "ABC", "A-1", t0, nil),
				mkUpload(t, "authors/id/A/AB/ABC/A-1.tar.gz.sigstore.json", "ABC", "bundle1", t0, idA),
				mkUpload(t, "authors/id/A/AB/ABC/A-2.tar.gz", "ABC", "A-2", t0.Add(time.Hour), nil),
				mkUpload(t, "authors/id/A/AB/ABC/Later-1.tar.gz", "ABC", "later", t0.Add(48*time.Hour), nil),
			}
		}, "", KindSigstoreMissing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			leaves := base(t)
			if c.extra != nil {
				leaves = append(leaves, c.extra(t)...)
			}
			url, _, vkey, _ := craftedLog(t, leaves, nil, "")
			watch, err := ParseWatch([]byte(c.watch))
			if err != nil {
				t.Fatal(err)
			}
			state := t.TempDir()
			r := monitorOnce(t, url, vkey, state, watch)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if got := r.kinds(); got != c.want {
				t.Errorf("findings %q, want %q: %+v", got, c.want, r.findings)
			}
			// A path PAUSE never lets change, logged with other content, is
			// the log breaking its own rule (it refuses such an add): a
			// rewritten tarball that verifies. Security, exit 3.
			for _, f := range r.findings {
				if f.Kind == KindPathRewritten && !f.Security {
					t.Errorf("%s is not a security finding: %+v", f.Kind, f)
				}
			}
			// Never re-alerted: a second round reports nothing new.
			if r2 := monitorOnce(t, url, vkey, state, watch); len(r2.findings) != 0 || r2.err != nil {
				t.Errorf("second round: %v %+v", r2.err, r2.findings)
			}
		})
	}
}

func TestTamperedTreeIsFound(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var leaves [][]byte
	for i := range 10 {
		leaves = append(leaves, mkUpload(t, fmt.Sprintf("authors/id/A/AB/ABC/F-%d.tar.gz", i), "ABC", fmt.Sprint(i), t0, nil))
	}
	for _, c := range []struct {
		file string
		want string
	}{
		{"tile/entries/000.p/10", KindRootMismatch},
		{"tile/0/000.p/10", KindTileMismatch},
	} {
		t.Run(c.file, func(t *testing.T) {
			url, dir, vkey, _ := craftedLog(t, leaves, nil, "")
			p := filepath.Join(dir, c.file)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			i := bytes.Index(b, []byte("F-3")) // inside an entry; for the tile, any byte
			if i < 0 {
				i = 100
			}
			b[i+2] ^= 0x01
			os.WriteFile(p, b, 0o644)
			r := monitorOnce(t, url, vkey, t.TempDir(), nil)
			if !strings.Contains(r.kinds(), c.want) {
				t.Fatalf("findings %q (%v), want %s", r.kinds(), r.err, c.want)
			}
			for _, f := range r.findings {
				if f.Kind == c.want && !f.Security {
					t.Errorf("%s is not marked as a security finding", c.want)
				}
			}
		})
	}
}

// realLog runs the real log server on loopback.
func realLog(t *testing.T, dir string) (*tlog.Log, string, func()) {
	t.Helper()
	l := testlog.Start(t, tlog.Config{DataDir: dir})
	return l.Log, l.URL, l.Stop
}

func addSample(t *testing.T, l *tlog.Log, url, path string, content []byte, when string) {
	t.Helper()
	add(t, l, url, path, content, when, "?wait=1")
}

// add logs a file; query "?wait=1" waits for a covering checkpoint.
func add(t *testing.T, l *tlog.Log, url, path string, content []byte, when, query string) {
	t.Helper()
	(&testlog.Log{Log: l, URL: url}).Add(t, path, content, when, query != "")
}

type sampleFile struct {
	path    string
	content []byte
}

func samples(t *testing.T) []sampleFile {
	t.Helper()
	var out []sampleFile
	err := filepath.Walk("../testdata/authors", func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out = append(out, sampleFile{path: strings.TrimPrefix(filepath.ToSlash(p), "../testdata/"), content: b})
		return err
	})
	if err != nil || len(out) < 8 {
		t.Fatalf("samples: %v (%d)", err, len(out))
	}
	return out
}

func TestRealLogCleanForkRollbackResume(t *testing.T) {
	smp := samples(t)
	dirA := t.TempDir()
	a, urlA, _ := realLog(t, dirA)
	for _, s := range smp {
		addSample(t, a, urlA, s.path, s.content, "2024-01-02T03:04:05Z")
	}
	state := t.TempDir()
	var progress bytes.Buffer
	p, _ := client.ParsePolicy([]byte(fmt.Sprintf("log %s %s\nquorum none\n", a.VerifierKey(), urlA)))
	m, err := New(Config{Policy: p, StateDir: state, Progress: &progress, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fs, _ := m.Deliver(context.Background()); len(fs) != 0 {
		t.Errorf("the sample log is not clean: %+v", fs)
	}
	if n, _ := m.Audited(); n != uint64(len(smp)) {
		t.Errorf("audited %d, want %d", n, len(smp))
	}
	m.Close()

	// A restart resumes: one new entry costs one bundle fetch, not all.
	var bundles atomic.Int64
	counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/tile/entries/") {
			bundles.Add(1)
		}
		resp, err := http.Get(urlA + r.URL.Path)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	defer counting.Close()
	for i := range 300 { // more than a bundle
		add(t, a, urlA, fmt.Sprintf("authors/id/S/SY/SYNTH/S-%d.tar.gz", i), []byte(fmt.Sprint(i)), "2024-01-02T03:04:05Z", "")
	}
	addSample(t, a, urlA, "authors/id/S/SY/SYNTH/last.tar.gz", nil, "2024-01-02T03:04:05Z")
	if r := monitorOnce(t, counting.URL, a.VerifierKey(), state, nil); r.err != nil || len(r.findings) != 0 {
		t.Fatalf("after growth: %v %+v", r.err, r.findings)
	}
	if got := bundles.Load(); got != 2 {
		t.Errorf("resumed sync fetched %d entry bundles, want 2 (the rest of bundle 0, then bundle 1)", got)
	}
	bundles.Store(0)
	if r := monitorOnce(t, counting.URL, a.VerifierKey(), state, nil); r.err != nil || bundles.Load() != 0 {
		t.Errorf("a round with nothing new fetched %d bundles (%v)", bundles.Load(), r.err)
	}

	// A fork: same key and origin, another history of the same files.
	dirB := t.TempDir()
	for _, f := range []string{tlog.KeyFile, tlog.VKeyFile} {
		b, _ := os.ReadFile(filepath.Join(dirA, f))
		os.WriteFile(filepath.Join(dirB, f), b, 0o600)
	}
	b, urlB, _ := realLog(t, dirB)
	for _, s := range smp {
		addSample(t, b, urlB, s.path, s.content, "2025-06-07T08:09:10Z")
	}
	r := monitorOnce(t, urlB, a.VerifierKey(), state, nil)
	if r.kinds() != KindRollback || !r.findings[0].Security || r.findings[0].Evidence == "" {
		t.Errorf("monitor of the real log meets a smaller fork: %q %+v", r.kinds(), r.findings)
	}
	for i := range 400 {
		add(t, b, urlB, fmt.Sprintf("authors/id/F/FO/FORK/F-%d.tar.gz", i), []byte(fmt.Sprint(i)), "2025-06-07T08:09:10Z", "")
	}
	addSample(t, b, urlB, "authors/id/F/FO/FORK/last.tar.gz", nil, "2025-06-07T08:09:10Z")
	r = monitorOnce(t, urlB, a.VerifierKey(), state, nil)
	if r.kinds() != KindFork || !r.findings[0].Security {
		t.Errorf("monitor meets a larger fork: %q %+v", r.kinds(), r.findings)
	}
	// Split view through a peer: B's checkpoint as a saved file, seen by
	// a monitor of A once A has grown past it.
	for i := range 200 {
		add(t, a, urlA, fmt.Sprintf("authors/id/S/SY/SYNTH/T-%d.tar.gz", i), []byte(fmt.Sprint(i)), "2024-01-02T03:04:05Z", "")
	}
	addSample(t, a, urlA, "authors/id/S/SY/SYNTH/last2.tar.gz", nil, "2024-01-02T03:04:05Z")
	cpB := filepath.Join(t.TempDir(), "peer.checkpoint")
	resp, _ := http.Get(urlB + "/checkpoint")
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	os.WriteFile(cpB, raw, 0o644)
	r = monitorOnce(t, urlA, a.VerifierKey(), state, nil, cpB)
	if r.kinds() != KindSplitView || !r.findings[0].Security {
		t.Errorf("peer with a forked checkpoint: %q %+v", r.kinds(), r.findings)
	}
	// A consistent peer (A's own checkpoint) is no finding.
	resp, _ = http.Get(urlA + "/checkpoint")
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	os.WriteFile(cpB, raw, 0o644)
	if r := monitorOnce(t, urlA, a.VerifierKey(), t.TempDir(), nil, cpB); len(r.findings) != 0 {
		t.Errorf("consistent peer: %+v", r.findings)
	}
}

func TestParseWatch(t *testing.T) {
	rules, err := ParseWatch([]byte("# comment\ndist Try-Tiny\n\nauthor ETHER  # trailing\npath authors/id/E/*/*/*.tar.gz\n"))
	if err != nil || len(rules) != 3 || rules[1] != (WatchRule{"author", "ETHER"}) {
		t.Fatalf("%v %+v", err, rules)
	}
	for _, bad := range []string{"dist\n", "dist a b\n", "author ether\n", "path [\n", "distro X\n", "watch everything now\n"} {
		if _, err := ParseWatch([]byte(bad)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("ParseWatch(%q): %v", bad, err)
		}
	}
}

func FuzzParseWatch(f *testing.F) {
	f.Add("dist Try-Tiny\nauthor ETHER\npath authors/id/E/*\n")
	f.Fuzz(func(t *testing.T, s string) {
		rules, err := ParseWatch([]byte(s))
		if err != nil {
			return
		}
		for _, r := range rules {
			if r.Kind != "dist" && r.Kind != "author" && r.Kind != "path" {
				t.Fatalf("rule kind %q", r.Kind)
			}
		}
	})
}

// TestMetricsAfterRestart: a monitor restarted with nothing new reports
// the audited size and checkpoint size its state holds, not 0.
func TestMetricsAfterRestart(t *testing.T) {
	l, url, _ := realLog(t, t.TempDir())
	for _, s := range samples(t)[:3] {
		addSample(t, l, url, s.path, s.content, "2024-01-02T03:04:05Z")
	}
	state := t.TempDir()
	if r := monitorOnce(t, url, l.VerifierKey(), state, nil); r.err != nil {
		t.Fatal(r.err)
	}
	p, _ := client.ParsePolicy([]byte(fmt.Sprintf("log %s %s\nquorum none\n", l.VerifierKey(), url)))
	m, err := New(Config{Policy: p, StateDir: state, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rec := httptest.NewRecorder()
	m.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	if !strings.Contains(body, "cpantlog_monitor_audited_size 3") || !strings.Contains(body, "cpantlog_monitor_checkpoint_size 3") {
		t.Errorf("metrics after a restart:\n%s", body)
	}
}

// TestHealthAndDeliveryMetrics: /healthz's verdict follows the rounds, a
// webhook that refuses findings is counted, and findings are counted by
// kind and security flag.
func TestHealthAndDeliveryMetrics(t *testing.T) {
	l, url, _ := realLog(t, t.TempDir())
	s := samples(t)[0]
	addSample(t, l, url, s.path, s.content, "2024-01-02T03:04:05Z")
	p, _ := client.ParsePolicy([]byte(fmt.Sprintf("log %s %s\nquorum none\n", l.VerifierKey(), url)))
	watch, _ := ParseWatch([]byte("path authors/id/*/*/*/*\n"))
	m, err := New(Config{Policy: p, StateDir: t.TempDir(), Watch: watch, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if why := m.Unhealthy(time.Minute); !strings.Contains(why, "no round has completed") {
		t.Errorf("before any round: %q", why)
	}
	m.RoundDone(errors.New("log unreachable"))
	if why := m.Unhealthy(time.Minute); !strings.Contains(why, "log unreachable") {
		t.Errorf("after a failed round: %q", why)
	}
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusBadRequest) }))
	defer refusing.Close()
	err = m.Sync(context.Background())
	if _, derr := m.Deliver(context.Background(), WebhookSink{URL: refusing.URL}); derr != nil {
		t.Fatal(derr)
	}
	m.RoundDone(err)
	if why := m.Unhealthy(time.Minute); why != "" {
		t.Errorf("after a good round: %q", why)
	}
	rec := httptest.NewRecorder()
	m.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{`cpantlog_monitor_delivery_failures_total{sink="webhook"} 1`, `cpantlog_monitor_findings_total{kind="watched",security="false"} 1`,
		"cpantlog_monitor_round_errors_total 1", "cpantlog_monitor_last_round_timestamp_seconds 1"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
