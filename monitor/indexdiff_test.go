package monitor

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

func gz(s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

// packagesText is an 02packages.details.txt of "Package version path"
// lines, sorted as PAUSE sorts them.
func packagesText(lines ...string) string {
	slices.SortFunc(lines, func(a, b string) int {
		return strings.Compare(sortKey(strings.Fields(a)[0]), sortKey(strings.Fields(b)[0]))
	})
	s := fmt.Sprintf("File:         02packages.details.txt\nLine-Count:   %d\n\n", len(lines))
	for _, l := range lines {
		s += l + "\n"
	}
	return s
}

func permsText(lines ...string) string {
	slices.Sort(lines)
	s := fmt.Sprintf("File:        06perms.txt\nLine-Count:  %d\n\n", len(lines))
	for _, l := range lines {
		s += l + "\n"
	}
	return s
}

func mkIndex(t testing.TB, path string, content []byte, when time.Time) []byte {
	t.Helper()
	e := &entry.Entry{Kind: entry.Index, Path: path, Size: uint64(len(content)), SHA256: sha256.Sum256(content), Time: when}
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIndexDiff: ordinary index updates are silent; a hostile one raises
// each index finding kind once, and a permission change in 06perms is
// reported.
func TestIndexDiff(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	uploads := [][]byte{
		mkUpload(t, "authors/id/A/AB/ABC/Foo-1.0.tar.gz", "ABC", "foo 1.0", t0, nil),
		mkUpload(t, "authors/id/A/AB/ABC/Foo-1.1.tar.gz", "ABC", "foo 1.1", t0, nil),
		mkUpload(t, "authors/id/A/AB/ABC/Bar-2.0.tar.gz", "ABC", "bar 2.0", t0, nil),
		mkUpload(t, "authors/id/X/XY/XYZ/Foo-Evil-1.0.tar.gz", "XYZ", "evil", t0, nil),
	}
	skey, vkey, _ := note.GenerateKey(rand.Reader, tlog.DefaultOrigin)
	signer, _ := note.NewSigner(skey)
	logURL, dir, _, _ := craftedLog(t, uploads, signer, "")
	mirror := t.TempDir()
	os.MkdirAll(filepath.Join(mirror, "modules"), 0o755)
	state := t.TempDir()
	const pk, pe = "modules/02packages.details.txt.gz", "modules/06perms.txt.gz"

	versions := []struct {
		name            string
		packages, perms string
		want            []string
	}{
		{"first", packagesText("Foo 1.0 A/AB/ABC/Foo-1.0.tar.gz", "Bar 2.0 A/AB/ABC/Bar-2.0.tar.gz", "Baz undef A/AB/ABC/Bar-2.0.tar.gz"),
			permsText("Foo,ABC,f", "Bar,ABC,f", "Baz,ABC,f"), nil},
		{"ordinary update", packagesText("Foo 1.1 A/AB/ABC/Foo-1.1.tar.gz", "Bar 2.0 A/AB/ABC/Bar-2.0.tar.gz", "Baz undef A/AB/ABC/Bar-2.0.tar.gz", "Qux 0.1 A/AB/ABC/Bar-2.0.tar.gz"),
			permsText("Foo,ABC,f", "Bar,ABC,f", "Baz,ABC,f", "Qux,ABC,f"), nil},
		{"hostile", packagesText("Foo 0.9 X/XY/XYZ/Foo-Evil-1.0.tar.gz", "Bar 2.0 A/AB/ABC/Unlogged-1.0.tar.gz", "Qux 0.1 A/AB/ABC/Bar-2.0.tar.gz"),
			permsText("Foo,ABC,f", "Foo,XYZ,c", "Baz,ABC,f", "Qux,ABC,f"),
			[]string{KindIndexOwnerChanged, KindIndexPackageRemoved, KindIndexUnlogged, KindIndexVersionDown, KindPermsChanged, KindPermsChanged}},
	}
	for i, v := range versions {
		when := t0.Add(time.Duration(i+1) * time.Hour)
		p, q := gz(v.packages), gz(v.perms)
		os.WriteFile(filepath.Join(mirror, filepath.FromSlash(pk)), p, 0o644)
		os.WriteFile(filepath.Join(mirror, filepath.FromSlash(pe)), q, 0o644)
		appendLeaves(t, dir, signer, [][]byte{mkIndex(t, pk, p, when), mkIndex(t, pe, q, when)})
		r := monitorWithMirror(t, logURL, vkey, state, mirror)
		if r.err != nil {
			t.Fatalf("%s: %v", v.name, r.err)
		}
		var kinds []string
		for _, f := range r.findings {
			kinds = append(kinds, f.Kind)
		}
		slices.Sort(kinds)
		if !slices.Equal(kinds, v.want) {
			t.Errorf("%s: findings %v, want %v", v.name, kinds, v.want)
			for _, f := range r.findings {
				t.Log(f.Message)
			}
		}
		for _, f := range r.findings {
			if f.Kind == KindIndexUnlogged && (!f.Security || !strings.Contains(f.Message, "Unlogged-1.0.tar.gz")) {
				t.Errorf("unlogged finding: %+v", f)
			}
		}
	}
	// Nothing is reported twice: another round is clean.
	if r := monitorWithMirror(t, logURL, vkey, state, mirror); r.err != nil || len(r.findings) != 0 {
		t.Errorf("idle round: %v %s", r.err, r.kinds())
	}
}

// TestIndexDiffMirrorMismatch: a mirror serving other bytes than the
// logged version is not diffed (nothing is claimed about its bytes), and
// with a log that does not give the version's bytes either, the version
// cannot be audited: a security finding, not a log line.
func TestIndexDiffMirrorMismatch(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	p := gz(packagesText("Foo 1.0 A/AB/ABC/Foo-1.0.tar.gz"))
	leaves := [][]byte{mkUpload(t, "authors/id/A/AB/ABC/Foo-1.0.tar.gz", "ABC", "foo", t0, nil), mkIndex(t, "modules/02packages.details.txt.gz", p, t0)}
	logURL, _, vkey, _ := craftedLog(t, leaves, nil, "")
	mirror := t.TempDir()
	os.MkdirAll(filepath.Join(mirror, "modules"), 0o755)
	os.WriteFile(filepath.Join(mirror, "modules", "02packages.details.txt.gz"), gz(packagesText("Foo 1.0 A/AB/ABC/Unlogged-1.0.tar.gz")), 0o644)
	r := monitorWithMirror(t, logURL, vkey, t.TempDir(), mirror)
	if r.err != nil || r.kinds() != KindIndexUnavailable || !r.findings[0].Security || !strings.Contains(r.findings[0].Message, "another sha256") {
		t.Errorf("mirror with another version, log without the bytes: %v %s %+v", r.err, r.kinds(), r.findings)
	}
}

// TestShortLivedHijackIsAudited: a version of 02packages that moved a
// package to another author and was replaced before the monitor's round
// (mirrors serve only the current version) is still diffed, from the
// bytes the log keeps.
func TestShortLivedHijackIsAudited(t *testing.T) {
	tl := testlog.Start(t, tlog.Config{DataDir: t.TempDir()})
	tl.Add(t, "authors/id/A/AB/ABC/Foo-1.0.tar.gz", []byte("foo"), "2026-11-01T00:00:00Z", false)
	tl.Add(t, "authors/id/X/XY/XYZ/Foo-Evil-1.0.tar.gz", []byte("evil"), "2026-11-01T00:00:00Z", false)
	const pk = "modules/02packages.details.txt.gz"
	genuine := gz(packagesText("Foo 1.0 A/AB/ABC/Foo-1.0.tar.gz"))
	hijack := gz(packagesText("Foo 1.0 X/XY/XYZ/Foo-Evil-1.0.tar.gz"))
	tl.Add(t, pk, genuine, "2026-11-01T01:00:00Z", false)
	tl.Add(t, pk, hijack, "2026-11-01T01:10:00Z", false)
	tl.Add(t, pk, genuine, "2026-11-01T01:20:00Z", true)
	mirror := t.TempDir()
	os.MkdirAll(filepath.Join(mirror, "modules"), 0o755)
	os.WriteFile(filepath.Join(mirror, filepath.FromSlash(pk)), genuine, 0o644) // the mirror moved on
	r := monitorWithMirror(t, tl.URL, tl.VerifierKey(), t.TempDir(), mirror)
	if r.err != nil {
		t.Fatal(r.err)
	}
	var hijacked bool
	for _, f := range r.findings {
		if f.Kind == KindIndexOwnerChanged && strings.Contains(f.Message, "Foo-Evil-1.0.tar.gz") && f.Index != nil && *f.Index == 3 {
			hijacked = true
		}
		if f.Kind == KindIndexUnavailable {
			t.Errorf("unexpected: %s", f.Message)
		}
	}
	if !hijacked {
		t.Errorf("the short-lived hijack (index 3) was not reported: %s", r.kinds())
		for _, f := range r.findings {
			t.Log(f.Message)
		}
	}
	// Without --mirror too: the log is the source.
	if r := monitorWithMirror(t, tl.URL, tl.VerifierKey(), t.TempDir(), ""); r.err != nil || !strings.Contains(r.kinds(), KindIndexOwnerChanged) {
		t.Errorf("without a mirror: %v %s", r.err, r.kinds())
	}
}

func monitorWithMirror(t testing.TB, logURL, vkey, stateDir, mirror string) run {
	t.Helper()
	p, err := client.ParsePolicy([]byte(fmt.Sprintf("log %s %s\nquorum none\n", vkey, logURL)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Policy: p, StateDir: stateDir, Mirror: mirror, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	err = m.Sync(context.Background())
	fs, derr := m.Deliver(context.Background(), WriterSink{W: &bytes.Buffer{}})
	if derr != nil {
		t.Fatal(derr)
	}
	return run{findings: fs, err: err}
}

func TestPerlVersionLess(t *testing.T) {
	for _, c := range []struct {
		a, b     string
		less, ok bool
	}{
		{"0.9", "1.0", true, true}, {"1.10", "1.9", true, true}, // decimal: 1.100 < 1.900 {"1.10", "1.100", false, true},
		{"1.2", "1.10", false, true}, {"0.017", "0.02", true, true}, {"v1.2.3", "v1.10.0", true, true},
		{"1.2.3", "1.2.3", false, true}, {"1.02_01", "1.02", false, true}, {"undef", "1.0", false, false},
		{"1.0", "x", false, false}, {"1.0", "1.000", false, true},
	} {
		less, ok := perlVersionLess(c.a, c.b)
		if less != c.less || ok != c.ok {
			t.Errorf("perlVersionLess(%s, %s) = %v, %v; want %v, %v", c.a, c.b, less, ok, c.less, c.ok)
		}
	}
}

// BenchmarkIndexDiff diffs two synthetic 02packages of 270,000 lines (the
// size of CPAN's) with 1,000 changed lines, reporting the peak heap: the
// diff streams, so it stays flat whatever the size.
//
//	go test -run '^$' -bench IndexDiff -benchtime 3x ./monitor/
func BenchmarkIndexDiff(b *testing.B) {
	const n = 270_000
	dir := b.TempDir()
	write := func(name string, changed bool) string {
		var buf bytes.Buffer
		fmt.Fprintf(&buf, "File:         02packages.details.txt\nLine-Count:   %d\n\n", n)
		for i := range n {
			v := "1.0"
			if changed && i%270 == 0 {
				v = "1.1"
			}
			fmt.Fprintf(&buf, "Pkg%07d::Sub %s A/AB/ABC/Dist-%d-1.0.tar.gz\n", i, v, i/10)
		}
		p := filepath.Join(dir, name)
		os.WriteFile(p, gz(buf.String()), 0o644)
		return p
	}
	prev, cur := write("prev", false), write("cur", true)
	st, err := openState(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer st.close()
	var peak, base uint64
	runtime.GC()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	base = ms0.HeapAlloc
	b.ResetTimer()
	for range b.N {
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc)
				select {
				case <-stop:
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
		}()
		fs, err := diffIndexFiles(st.uploads, "modules/02packages.details.txt.gz", 1, prev, cur)
		if err == nil && len(fs) != 0 {
			err = fmt.Errorf("%d findings on an ordinary update", len(fs))
		}
		close(stop)
		<-done
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(peak-base)/(1<<20), "peak-heap-growth-MB")
	b.ReportMetric(float64(2*n)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

func TestOwner(t *testing.T) {
	for p, want := range map[string]string{
		"E/ET/ETHER/Try-Tiny-0.31.tar.gz": "ETHER",
		"E/ET/ETHER/sub/dir/file":         "ETHER",
		"E/ET/ETHER/":                     "ETHER",
		"E/ET/ETHER":                      "",
		"E/ET":                            "",
		"":                                "",
	} {
		if got := owner(p); got != want {
			t.Errorf("owner(%q) = %q, want %q", p, got, want)
		}
	}
}
