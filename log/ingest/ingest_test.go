package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/internal/sigstoretest"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func openLog(t testing.TB, dir string) *tlog.Log {
	t.Helper()
	l, err := tlog.Open(context.Background(), tlog.Config{DataDir: dir, CheckpointInterval: 100 * time.Millisecond, BatchMaxAge: 10 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func samples(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	filepath.Walk("../../testdata/authors", func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			b, _ := os.ReadFile(p)
			out[strings.TrimPrefix(filepath.ToSlash(p), "../../testdata/")] = b
		}
		return err
	})
	if len(out) < 8 {
		t.Fatalf("%d samples", len(out))
	}
	return out
}

// checksumsFile writes a CHECKSUMS body in CPAN::Checksums' format.
func checksumsFile(files map[string][]byte) []byte {
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	b.WriteString("# CHECKSUMS file written by cpan-tlog tests\n$cksum = {\n")
	for i, n := range names {
		sum := sha256.Sum256(files[n])
		fmt.Fprintf(&b, "  '%s' => {\n    'sha256' => '%x',\n    'size' => %d\n  }", n, sum, len(files[n]))
		if i < len(names)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("};\n")
	return b.Bytes()
}

type event struct {
	epoch, path, typ string // path relative to authors/
}

// testMirror is a CPAN mirror on loopback with RECENT files and CHECKSUMS.
type testMirror struct {
	mu       sync.Mutex
	files    map[string][]byte // CPAN path → content
	sums     map[string][]byte // CPAN path → content CHECKSUMS vouches for (default: files)
	events   []event
	inHour   int    // how many of the newest events RECENT-1h holds (0: all)
	failPath string // answered 503
	srv      *httptest.Server
}

func newMirror(t *testing.T) *testMirror {
	m := &testMirror{files: map[string][]byte{}, sums: map[string][]byte{}}
	m.srv = httptest.NewServer(m)
	t.Cleanup(m.srv.Close)
	return m
}

func (m *testMirror) add(epoch int, p string, content []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files[p] = content
	m.sums[p] = content
	m.events = append(m.events, event{fmt.Sprintf("%d.%06d", 1700000000+epoch, epoch), strings.TrimPrefix(p, "authors/"), "new"})
}

// addAll adds files as uploads at epochs 0, 1, 2, ...
func (m *testMirror) addAll(files map[string][]byte) {
	i := 0
	for p, c := range files {
		m.add(i, p, c)
		i++
	}
}

func (m *testMirror) remove(epoch int, p string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.files, p)
	delete(m.sums, p)
	m.events = append(m.events, event{fmt.Sprintf("%d.%06d", 1700000000+epoch, epoch), strings.TrimPrefix(p, "authors/"), "delete"})
}

func (m *testMirror) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := strings.TrimPrefix(r.URL.Path, "/")
	if p == m.failPath {
		http.Error(w, "try later", 503)
		return
	}
	switch {
	case p == "authors/RECENT-1h.json" || p == "authors/RECENT-6h.json":
		evs := m.events
		if p == "authors/RECENT-1h.json" && m.inHour > 0 && m.inHour < len(evs) {
			evs = evs[len(evs)-m.inHour:]
		}
		var recent []map[string]any
		for i := len(evs) - 1; i >= 0; i-- { // newest first, as on CPAN
			recent = append(recent, map[string]any{"epoch": evs[i].epoch, "path": evs[i].path, "type": evs[i].typ})
		}
		json.NewEncoder(w).Encode(map[string]any{"meta": map[string]any{"interval": strings.TrimSuffix(strings.TrimPrefix(p, "authors/RECENT-"), ".json")}, "recent": recent})
	case strings.HasSuffix(p, "/CHECKSUMS"):
		dir := path.Dir(p)
		files := map[string][]byte{}
		for fp, c := range m.sums {
			if path.Dir(fp) == dir {
				files[path.Base(fp)] = c
			}
		}
		w.Write(checksumsFile(files))
	default:
		b, ok := m.files[p]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}
}

func logged(t *testing.T, l *tlog.Log, p string) []*entry.Entry {
	t.Helper()
	recs, err := l.History(p)
	if err != nil {
		t.Fatal(err)
	}
	var out []*entry.Entry
	for _, r := range recs {
		out = append(out, r.Entry)
	}
	return out
}

func TestFollower(t *testing.T) {
	smp := samples(t)
	var paths []string
	for p := range smp {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	m := newMirror(t)
	for i, p := range paths {
		m.add(i, p, smp[p])
	}
	dir := t.TempDir()
	l := openLog(t, dir)
	f := &Follower{Log: l, Mirror: m.srv.URL, Logger: quiet}
	m.failPath = paths[5] // the mirror stalls in the middle of the list
	if err := f.Poll(context.Background()); err == nil {
		t.Fatal("poll through a failing download succeeded")
	}
	pos, _ := f.Position()
	if !strings.HasPrefix(pos.String(), "1700000004.") {
		t.Errorf("position after the failure %s, want the 5th event's", pos)
	}
	// Restart: a new log process and follower; the mirror recovers.
	if err := l.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	m.failPath = ""
	l = openLog(t, dir)
	defer l.Shutdown(context.Background())
	f = &Follower{Log: l, Mirror: m.srv.URL, Logger: quiet}
	if err := f.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, p := range paths {
		es := logged(t, l, p)
		sum := sha256.Sum256(smp[p])
		if len(es) != 1 || es[0].SHA256 != sum || es[0].Size != uint64(len(smp[p])) || es[0].Time.Unix() != int64(1700000000+i) || es[0].Uploader != strings.Split(p, "/")[4] {
			t.Errorf("%s: logged %+v", p, es)
		}
	}
	// Later: one new upload, one deletion, one tampered file (CHECKSUMS
	// disagrees), and one more upload after it; RECENT-1h only holds the
	// newest two, so the follower must widen to RECENT-6h.
	newPath := "authors/id/E/ET/ETHER/Try-Tiny-0.32.tar.gz"
	m.add(100, newPath, []byte("new release"))
	m.remove(101, paths[0])
	evil := "authors/id/E/ET/ETHER/Evil-1.0.tar.gz"
	m.add(102, evil, []byte("evil"))
	m.mu.Lock()
	m.sums[evil] = []byte("what PAUSE published")
	m.mu.Unlock()
	last := "authors/id/R/RJ/RJBS/Last-1.0.tar.gz"
	m.add(103, last, []byte("last"))
	m.inHour = 2
	if err := f.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if es := logged(t, l, newPath); len(es) != 1 {
		t.Errorf("new upload: %+v", es)
	}
	if es := logged(t, l, paths[0]); len(es) != 2 || es[1].Kind != entry.Delete {
		t.Errorf("deletion: %+v", es)
	}
	if es := logged(t, l, evil); len(es) != 0 {
		t.Errorf("a file its CHECKSUMS disagrees with was logged: %+v", es)
	}
	if es := logged(t, l, last); len(es) != 1 {
		t.Errorf("upload after the refused one: %+v", es)
	}
	// Nothing is logged twice, however often it polls.
	size := func() uint64 { n, _ := l.Index().Size(); return n }
	waitFor(t, func() bool { return size() == uint64(len(paths)+3) })
	if err := f.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if n := size(); n != uint64(len(paths)+3) {
		t.Errorf("log holds %d entries after a repeated poll, want %d", n, len(paths)+3)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeTree writes files into a CPAN tree with the given mtimes and a
// CHECKSUMS per directory.
func writeTree(t testing.TB, root string, files map[string][]byte, mtime func(p string) time.Time) {
	t.Helper()
	dirs := map[string]map[string][]byte{}
	for p, c := range files {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, c, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(full, mtime(p), mtime(p))
		d := path.Dir(p)
		if dirs[d] == nil {
			dirs[d] = map[string][]byte{}
		}
		dirs[d][path.Base(p)] = c
	}
	for d, fs := range dirs {
		os.WriteFile(filepath.Join(root, d, "CHECKSUMS"), checksumsFile(fs), 0o644)
	}
}

func TestImportDeterministicAndResumable(t *testing.T) {
	files := samples(t)
	for i := range 1000 {
		files[fmt.Sprintf("authors/id/S/SY/SYNTH%d/Synth-%d.tar.gz", i%7, i)] = []byte(fmt.Sprint(i))
	}
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	tree := t.TempDir()
	writeTree(t, tree, files, func(p string) time.Time { return base.Add(time.Duration(len(p)%13) * time.Hour) })
	// The tree's current index is logged after the uploads.
	idx := filepath.Join(tree, "modules", "02packages.details.txt.gz")
	os.MkdirAll(filepath.Dir(idx), 0o755)
	os.WriteFile(idx, []byte("an index"), 0o644)
	os.Chtimes(idx, base, base.Add(24*time.Hour))
	total := len(files) + 1
	root := func(l *tlog.Log) string {
		waitFor(t, func() bool {
			cp, err := l.Reader().ReadCheckpoint(context.Background())
			return err == nil && bytes.Contains(cp, []byte(fmt.Sprintf("\n%d\n", total)))
		})
		cp, _ := l.Reader().ReadCheckpoint(context.Background())
		lines := strings.Split(string(cp), "\n")
		return lines[1] + " " + lines[2]
	}
	importBatch = 100
	defer func() { importBatch = 512 }()

	// One log imports straight through.
	a := openLog(t, t.TempDir())
	st, err := Import(context.Background(), a, tree, io.Discard, quiet)
	if err != nil || st.Logged != total || st.Failed != 0 {
		t.Fatalf("import: %+v %v", st, err)
	}
	if es := logged(t, a, "modules/02packages.details.txt.gz"); len(es) != 1 || es[0].Kind != entry.Index || !es[0].Time.Equal(base.Add(24*time.Hour)) {
		t.Errorf("index version: %+v", es)
	}
	if recs, _ := a.History("modules/02packages.details.txt.gz"); len(recs) != 1 || recs[0].Index != uint64(total-1) {
		t.Errorf("the index version is not the last entry: %+v", recs)
	}
	rootA := root(a)
	a.Shutdown(context.Background())

	// Another is interrupted after three batches, then re-run.
	dirB := t.TempDir()
	b := openLog(t, dirB)
	ctx, cancel := context.WithCancel(context.Background())
	afterBatch = func(done int) {
		if done >= 300 {
			cancel()
		}
	}
	if _, err := Import(ctx, b, tree, io.Discard, quiet); err == nil {
		t.Fatal("interrupted import returned no error")
	}
	afterBatch = nil
	b.Shutdown(context.Background())
	b = openLog(t, dirB)
	defer b.Shutdown(context.Background())
	var progress bytes.Buffer
	st, err = Import(context.Background(), b, tree, &progress, quiet)
	if err != nil || st.Skipped != 300 || st.Logged != total-300 {
		t.Fatalf("re-run: %+v %v", st, err)
	}
	if !strings.Contains(progress.String(), "MB/s") || !strings.Contains(progress.String(), "ETA") {
		t.Errorf("progress: %q", progress.String())
	}
	if rootB := root(b); rootB != rootA {
		t.Errorf("the same tree gave different logs: %s vs %s", rootA, rootB)
	}
	// A third run logs nothing.
	st, err = Import(context.Background(), b, tree, io.Discard, quiet)
	if err != nil || st.Logged != 0 || st.Skipped != total {
		t.Errorf("third run: %+v %v", st, err)
	}
}

func TestImportRefusesChecksumsMismatch(t *testing.T) {
	files := samples(t)
	tree := t.TempDir()
	writeTree(t, tree, files, func(string) time.Time { return time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC) })
	p := filepath.Join(tree, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz")
	b, _ := os.ReadFile(p)
	b[7] ^= 1
	os.WriteFile(p, b, 0o644)
	l := openLog(t, t.TempDir())
	defer l.Shutdown(context.Background())
	st, err := Import(context.Background(), l, tree, io.Discard, quiet)
	if err != nil || st.Failed != 1 || st.Logged != len(files)-1 {
		t.Errorf("%+v %v", st, err)
	}
	if es := logged(t, l, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz"); len(es) != 0 {
		t.Errorf("tampered file logged: %+v", es)
	}
}

func TestImportAndFollowSigstoreBundles(t *testing.T) {
	vs, v := virtualSigstore(t)
	smp := samples(t)
	const tt = "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz"
	const tf = "authors/id/R/RJ/RJBS/Test-Fatal-0.017.tar.gz"
	files := map[string][]byte{
		tt: smp[tt], tt + ".sigstore.json": sigstoretest.BundleFor(t, vs, "ether@example.org", "https://issuer.example", smp[tt]),
		tf: smp[tf], tf + ".sigstore.json": sigstoretest.BundleFor(t, vs, "rjbs@example.org", "https://issuer.example", []byte("not the tarball")),
	}
	tree := t.TempDir()
	same := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC) // bundle and tarball in one batch
	writeTree(t, tree, files, func(string) time.Time { return same })
	l, err := tlog.Open(context.Background(), tlog.Config{DataDir: t.TempDir(), Sigstore: v, CheckpointInterval: 100 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Shutdown(context.Background())
	st, err := Import(context.Background(), l, tree, io.Discard, quiet)
	if err != nil || st.Logged != 4 {
		t.Fatalf("%+v %v", st, err)
	}
	if es := logged(t, l, tt+".sigstore.json"); len(es) != 1 || es[0].Sigstore == nil || es[0].Sigstore.SAN != "ether@example.org" {
		t.Errorf("valid bundle not annotated: %+v", es)
	}
	if es := logged(t, l, tf+".sigstore.json"); len(es) != 1 || es[0].Sigstore != nil {
		t.Errorf("bundle for another artifact was annotated: %+v", es)
	}

	// The follower annotates too.
	m := newMirror(t)
	sub := "authors/id/H/HA/HAARG/Role-Tiny-2.002004.tar.gz"
	m.add(1, sub, smp[sub])
	m.add(2, sub+".sigstore.json", sigstoretest.BundleFor(t, vs, "haarg@example.org", "https://issuer.example", smp[sub]))
	f := &Follower{Log: l, Mirror: m.srv.URL, Logger: quiet}
	if err := f.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if es := logged(t, l, sub+".sigstore.json"); len(es) != 1 || es[0].Sigstore == nil || es[0].Sigstore.SAN != "haarg@example.org" {
		t.Errorf("followed bundle not annotated: %+v", es)
	}
}

// TestFollowerStallAndGarbage: a mirror that stalls or sends garbage gives
// a clear error and logs nothing; once it behaves, everything is followed.
func TestFollowerStallAndGarbage(t *testing.T) {
	smp := samples(t)
	m := newMirror(t)
	m.addAll(smp)
	var mode atomic.Value
	mode.Store("garbage")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch mode.Load() {
		case "garbage":
			if strings.Contains(r.URL.Path, "RECENT") {
				w.Write([]byte("<html>Service temporarily unavailable</html>"))
				return
			}
		case "stall":
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return
		}
		m.ServeHTTP(w, r)
	}))
	defer srv.Close()
	l := openLog(t, t.TempDir())
	defer l.Shutdown(context.Background())
	f := &Follower{Log: l, Mirror: srv.URL, Logger: quiet, HTTP: &http.Client{Timeout: 300 * time.Millisecond}}
	err := f.Poll(context.Background())
	if err == nil || !strings.Contains(err.Error(), "malformed RECENT") {
		t.Errorf("garbage RECENT: %v", err)
	}
	mode.Store("stall")
	if err := f.Poll(context.Background()); err == nil || !strings.Contains(err.Error(), "Timeout") {
		t.Errorf("stalled mirror: %v", err)
	}
	if n, _ := l.Index().Size(); n != 0 {
		t.Errorf("%d entries logged from a broken mirror", n)
	}
	mode.Store("ok")
	if err := f.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	for p := range smp {
		if es := logged(t, l, p); len(es) != 1 {
			t.Errorf("%s after recovery: %+v", p, es)
		}
	}
}

// TestFollowerBoundsDownloads: a RECENT entry pointing at an endless
// stream neither fills memory nor gets logged. Listed in CHECKSUMS, the
// download stops at the listed size; not listed, it streams to disk up to
// MaxFileSize with a flat heap.
func TestFollowerBoundsDownloads(t *testing.T) {
	m := newMirror(t)
	listed := "authors/id/E/ET/ETHER/Endless-1.0.tar.gz"
	unlisted := "authors/id/E/ET/ETHER/Endless-2.0.tar.gz"
	m.add(1, listed, bytes.Repeat([]byte("x"), 100))
	m.add(2, unlisted, []byte("y"))
	delete(m.sums, unlisted)
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimPrefix(r.URL.Path, "/")
		if p != listed && p != unlisted {
			m.ServeHTTP(w, r)
			return
		}
		chunk := bytes.Repeat([]byte("z"), 64<<10)
		for {
			n, err := w.Write(chunk)
			served.Add(int64(n))
			if err != nil || r.Context().Err() != nil {
				return
			}
		}
	}))
	defer srv.Close()
	l := openLog(t, t.TempDir())
	defer l.Shutdown(context.Background())
	const maxFile = 64 << 20
	f := &Follower{Log: l, Mirror: srv.URL, Logger: quiet, MaxFileSize: maxFile}

	var base runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	err := f.Poll(context.Background())
	close(stop)
	<-done
	if err != nil {
		t.Fatalf("poll: %v", err)
	}
	for _, p := range []string{listed, unlisted} {
		if es := logged(t, l, p); len(es) != 0 {
			t.Errorf("%s logged: %+v", p, es)
		}
	}
	growth := int64(peak.Load()) - int64(base.HeapAlloc)
	t.Logf("served %d bytes in all, heap grew by at most %d bytes", served.Load(), growth)
	if growth > 24<<20 {
		t.Errorf("heap grew by %d MiB while downloading: the download is held in memory", growth>>20)
	}
	// Each path is tried twice (CHECKSUMS is read again once); the listed
	// one stops at its 100 bytes, the other at MaxFileSize.
	if s := served.Load(); s > 2*maxFile+2*(32<<20) {
		t.Errorf("the mirror served %d bytes: downloads are not bounded", s)
	}
}

// TestFollowerHashesBytesAsServed: a mirror labelling tarballs
// Content-Encoding: gzip (as servers do for .gz files) still gets them
// logged with the sha256 of the file itself, not of its decompression.
func TestFollowerHashesBytesAsServed(t *testing.T) {
	smp := samples(t)
	m := newMirror(t)
	m.addAll(smp)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".tar.gz") {
			w.Header().Set("Content-Encoding", "gzip")
		}
		m.ServeHTTP(w, r)
	}))
	defer srv.Close()
	l := openLog(t, t.TempDir())
	defer l.Shutdown(context.Background())
	f := &Follower{Log: l, Mirror: srv.URL, Logger: quiet}
	if err := f.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	for p, c := range smp {
		es := logged(t, l, p)
		if len(es) != 1 || es[0].SHA256 != sha256.Sum256(c) {
			t.Errorf("%s: %+v, want one entry with the file's sha256", p, es)
		}
	}
}

// TestFollowerLogsIndexVersions: a changed 02packages is logged within one
// poll, an unchanged one never again, not even by a restarted follower.
func TestFollowerLogsIndexVersions(t *testing.T) {
	m := newMirror(t)
	m.add(0, "authors/id/E/ET/ETHER/Try-Tiny-0.31.readme", []byte("readme"))
	const p = "modules/02packages.details.txt.gz"
	var mu sync.Mutex
	content, modTime := []byte("version one"), time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	var conditional atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.TrimPrefix(r.URL.Path, "/") != p {
			m.ServeHTTP(w, r)
			return
		}
		if r.Header.Get("If-Modified-Since") != "" {
			conditional.Add(1)
		}
		mu.Lock()
		defer mu.Unlock()
		http.ServeContent(w, r, "", modTime, bytes.NewReader(content))
	}))
	defer srv.Close()
	l := openLog(t, t.TempDir())
	defer l.Shutdown(context.Background())
	versions := func() []*entry.Entry { return logged(t, l, p) }
	f := &Follower{Log: l, Mirror: srv.URL, Logger: quiet}
	for range 2 {
		if err := f.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if vs := versions(); len(vs) != 1 || vs[0].Kind != entry.Index || vs[0].SHA256 != sha256.Sum256([]byte("version one")) || !vs[0].Time.Equal(modTime) {
		t.Fatalf("after two polls: %+v", vs)
	}
	if conditional.Load() == 0 {
		t.Error("the second poll was not a conditional GET")
	}
	mu.Lock()
	content, modTime = []byte("version two"), modTime.Add(time.Hour)
	mu.Unlock()
	if err := f.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if vs := versions(); len(vs) != 2 || vs[1].SHA256 != sha256.Sum256([]byte("version two")) {
		t.Fatalf("the changed index was not logged within one poll: %+v", vs)
	}
	// A restarted follower fetches again but logs nothing twice.
	f2 := &Follower{Log: l, Mirror: srv.URL, Logger: quiet}
	if err := f2.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if vs := versions(); len(vs) != 2 {
		t.Errorf("after a restart: %d versions, want 2", len(vs))
	}
}

// TestFollowerDistrustsFutureLastModified: a mirror's Last-Modified of
// 2099 is not a version's time (the log would refuse it, and it would keep
// the version fresh for ever), and its conditional requests never stop
// the follower from logging the next version.
func TestFollowerDistrustsFutureLastModified(t *testing.T) {
	m := newMirror(t)
	m.add(0, "authors/id/E/ET/ETHER/Try-Tiny-0.31.readme", []byte("readme"))
	const p = "modules/02packages.details.txt.gz"
	var mu sync.Mutex
	content := []byte("version one")
	future := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.TrimPrefix(r.URL.Path, "/") != p {
			m.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		http.ServeContent(w, r, "", future, bytes.NewReader(content))
	}))
	defer srv.Close()
	l := openLog(t, t.TempDir())
	defer l.Shutdown(context.Background())
	f := &Follower{Log: l, Mirror: srv.URL, Logger: quiet}
	if err := f.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	vs := logged(t, l, p)
	if len(vs) != 1 || vs[0].Time.After(time.Now()) {
		t.Fatalf("after the first poll: %+v, want one version with a time not in the future", vs)
	}
	mu.Lock()
	content = []byte("version two")
	mu.Unlock()
	if err := f.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if vs := logged(t, l, p); len(vs) != 2 || vs[1].SHA256 != sha256.Sum256([]byte("version two")) {
		t.Fatalf("a new version behind Last-Modified: 2099 was not logged: %d versions", len(vs))
	}
}

// TestFollowerPollMetrics: each poll of a followed mirror is counted by
// outcome, and the last good one is timed, for alerts.
func TestFollowerPollMetrics(t *testing.T) {
	m := newMirror(t)
	m.add(0, "authors/id/E/ET/ETHER/Try-Tiny-0.31.readme", []byte("readme"))
	var broken atomic.Bool
	broken.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if broken.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		m.ServeHTTP(w, r)
	}))
	defer srv.Close()
	l := openLog(t, t.TempDir())
	defer l.Shutdown(context.Background())
	f := &Follower{Log: l, Mirror: srv.URL, Interval: 20 * time.Millisecond, Logger: quiet}
	metrics := func() string {
		rec := httptest.NewRecorder()
		l.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(metrics(), `cpantlog_follow_polls_total{mirror="`+srv.URL+`",outcome="error"}`); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no failed poll counted")
		}
	}
	if strings.Contains(metrics(), "cpantlog_follow_last_success_timestamp_seconds{") {
		t.Error("a last success is reported while every poll failed")
	}
	broken.Store(false)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(metrics(), `cpantlog_follow_last_success_timestamp_seconds{mirror="`+srv.URL+`"}`); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no good poll counted")
		}
	}
	cancel()
	<-done
}
