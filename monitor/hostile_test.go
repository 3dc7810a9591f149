package monitor

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	rmetrics "runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/client"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// hostileLog serves, from memory, a log of full entry bundles the test
// makes (the same bundle at every index), with the level-0 tiles and a
// checkpoint that are right for them: what a hostile log that keeps its
// tree correct can serve. It returns the URL and the verifier key.
func hostileLog(t testing.TB, bundle [][]byte, bundles int) (string, string) {
	t.Helper()
	if len(bundle) != layout.EntryBundleWidth {
		t.Fatalf("a bundle of %d entries, want %d", len(bundle), layout.EntryBundleWidth)
	}
	var raw, tile []byte
	for _, e := range bundle {
		raw = binary.BigEndian.AppendUint16(raw, uint16(len(e)))
		raw = append(raw, e...)
		tile = append(tile, rfc6962.DefaultHasher.HashLeaf(e)...)
	}
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	rng := rf.NewEmptyRange(0)
	for range bundles {
		for i := range bundle {
			if err := rng.Append(tile[32*i:32*i+32], nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	root, err := rng.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	skey, vkey, _ := note.GenerateKey(rand.Reader, tlog.DefaultOrigin)
	signer, _ := note.NewSigner(skey)
	cp, err := note.Sign(&note.Note{Text: string(flog.Checkpoint{Origin: tlog.DefaultOrigin, Size: rng.End(), Hash: root}.Marshal())}, signer)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"/" + layout.CheckpointPath: cp}
	for i := range uint64(bundles) {
		files["/"+layout.EntriesPath(i, 0)] = raw
		files["/"+layout.TilePath(0, i, 0)] = tile
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, vkey
}

// peakMemory measures what fn costs the process at its peak: the growth of
// its resident set (VmHWM after resetting it, less VmRSS before; Linux
// only, 0 elsewhere) and the peak of the Go heap's live objects, sampled
// every millisecond.
func peakMemory(t testing.TB, fn func()) (rss, heap uint64) {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	before := procStatus(t, "VmRSS")
	// Writing 5 to clear_refs resets the peak resident set to the current.
	resetPeak := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	sample := []rmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	rmetrics.Read(sample)
	heapBefore := sample[0].Value.Uint64()
	var peakHeap uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		s := []rmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			rmetrics.Read(s)
			peakHeap = max(peakHeap, s[0].Value.Uint64())
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	fn()
	close(stop)
	wg.Wait()
	if peakHeap > heapBefore {
		heap = peakHeap - heapBefore
	}
	if after := procStatus(t, "VmHWM"); resetPeak && after > before {
		rss = after - before
	}
	return rss, heap
}

// procStatus is a line of /proc/self/status, in bytes (0 if there is none).
func procStatus(t testing.TB, key string) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return kb << 10
		}
	}
	return 0
}

// maxAuditGrowth is what an audit may add to the monitor's resident set
// whatever the log serves: README's bound of 100 MB, less what the process
// holds before it audits anything (about 20 MB).
const maxAuditGrowth = 80 << 20

// TestJunkBundlesStayWithinMemoryBound: a log of junk (tiles and root
// correct), served over HTTP, costs the monitor no more memory than a log
// of ordinary entries, and every junk entry is reported:
//
//   - 256 bundles of one valid entry and 255 entries of 65,535 junk bytes:
//     each junk entry is hashed as it is read and never kept, and the valid
//     one does not keep its bundle's text alive (before, each waiting
//     bundle's 16 MB stayed alive through the valid entry's substrings:
//     the monitor reached 485–548 MB);
//   - 256 bundles of 8,192-byte entries of control bytes, whose parse
//     errors quote them escaped, four times their size: errors and
//     findings are clipped.
func TestJunkBundlesStayWithinMemoryBound(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("serves 4.5 GB of junk over loopback, and measures memory (the race detector's is not the monitor's)")
	}
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	valid := mkUpload(t, "authors/id/A/AB/ABC/Foo-1.0.tar.gz", "ABC", "foo", t0, nil)
	long := bytes.Repeat([]byte("j"), 65535)
	quoted := append(bytes.Repeat([]byte{1}, entry.MaxSize-1), '\n')
	for _, tc := range []struct {
		name  string
		entry func(i int) []byte
		bad   int // malformed entries a bundle
	}{
		{"one valid entry and 255 of 65,535 bytes", func(i int) []byte {
			if i == 0 {
				return valid
			}
			return long
		}, 255},
		{"256 entries of 8,192 control bytes", func(int) []byte { return quoted }, 256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bundle := make([][]byte, layout.EntryBundleWidth)
			for i := range bundle {
				bundle[i] = tc.entry(i)
			}
			const bundles = 256
			logURL, vkey := hostileLog(t, bundle, bundles)
			p, err := client.ParsePolicy(fmt.Appendf(nil, "log %s %s\nquorum none\n", vkey, logURL))
			if err != nil {
				t.Fatal(err)
			}
			m, err := New(Config{Policy: p, StateDir: t.TempDir(), Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			var syncErr, deliverErr error
			var n, malformed, summaries int
			var security bool
			rss, heap := peakMemory(t, func() {
				syncErr = m.Sync(context.Background())
				deliverErr = m.DeliverEach(context.Background(), func(f Finding) {
					n++
					security = security || f.Security
					if len(f.Message) > maxMessage {
						t.Errorf("a finding of %d bytes", len(f.Message))
					}
					if f.Kind == KindEntryMalformed {
						if f.Index == nil {
							summaries++
							malformed += int(mustAtoi(t, strings.Fields(f.Message)[0]))
						} else {
							malformed++
						}
					}
				})
			})
			t.Logf("%d bundles (%d MB served): peak RSS growth %d MB, peak live heap growth %d MB; %d findings (%d summaries)",
				bundles, bundles*len(bundle)*len(bundle[1])>>20, rss>>20, heap>>20, n, summaries)
			if syncErr != nil || deliverErr != nil {
				t.Fatal(syncErr, deliverErr)
			}
			if audited, _ := m.Audited(); audited != bundles*layout.EntryBundleWidth {
				t.Errorf("audited %d entries, want %d", audited, bundles*layout.EntryBundleWidth)
			}
			// Every junk entry is accounted for: one by one up to the
			// round's limit, then in one summary a batch.
			if malformed != bundles*tc.bad || summaries == 0 || security {
				t.Errorf("%d malformed entries reported (%d summaries), want %d; security %v", malformed, summaries, bundles*tc.bad, security)
			}
			if rss > maxAuditGrowth {
				t.Errorf("the audit of a junk log grew the resident set by %d MB, more than %d MB", rss>>20, maxAuditGrowth>>20)
			}
		})
	}
}

func mustAtoi(t testing.TB, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestIndexVersionUnauditable: a version of 02packages that points
// Try::Tiny at an unlogged file of another author is reported however the
// rest of it is broken, served by the log (a test server): the findings
// read before the point it breaks are kept, the version itself is
// index-version-unauditable (security), and it does not become the version
// the next one is compared with (the genuine index logged again after it
// is no finding). Before, any of these made the monitor drop the version's
// findings with a WARN, or (past 1 GiB) read it in part without a word.
func TestIndexVersionUnauditable(t *testing.T) {
	defer func(n int64) { maxIndexUncompressed = n }(maxIndexUncompressed)
	maxIndexUncompressed = 1 << 20 // the same code as at 1 GiB, in less time
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	const pk, pe = "modules/02packages.details.txt.gz", "modules/06perms.txt.gz"
	genuineLines := []string{"Try::Tiny 0.31 E/ET/ETHER/Try-Tiny-0.31.tar.gz", "Zzz 1.0 A/AB/ABC/Zzz-1.0.tar.gz"}
	hijack := "Try::Tiny 0.31 E/EV/EVIL/Try-Tiny-0.31.tar.gz"
	header := func(n int) string {
		return fmt.Sprintf("File:         02packages.details.txt\nLine-Count:   %d\n\n", n)
	}
	// As the issue had it at 1 GiB: valid lines of 4,000 bytes (fields
	// padded with spaces), sorted before Try::Tiny, filling the bound to
	// its last byte, no Line-Count, then the hijack: read in part, the
	// version ends cleanly at a line's end.
	oversized := "File:         02packages.details.txt\n\n"
	for i := 0; len(oversized) < int(maxIndexUncompressed); i++ {
		pad, rem := 3961, int(maxIndexUncompressed)-len(oversized) // a line is 39 bytes and its padding
		switch {
		case rem <= 4000:
			pad = rem - 39
		case rem < 4000+40:
			pad = rem/2 - 39
		}
		oversized += fmt.Sprintf("Aaa::P%05d%s1.0 A/AB/ABC/Zzz-1.0.tar.gz\n", i, strings.Repeat(" ", pad))
	}
	if len(oversized) != int(maxIndexUncompressed) {
		t.Fatalf("the oversized version is %d bytes before the hijack, want %d", len(oversized), maxIndexUncompressed)
	}
	oversized += hijack + "\n" + genuineLines[1] + "\n"
	all := func(lines ...string) []string { return append(slices.Clone(lines), genuineLines[1]) }
	unlogged := []string{KindIndexOwnerChanged, KindIndexUnlogged + "!", KindIndexUnauditable + "!"}
	for _, tc := range []struct {
		name    string
		path    string
		genuine string
		hostile string
		want    []string // kinds, "!" for security
		why     string   // in the message of index-version-unauditable
	}{
		{"a line of 5,000 bytes", pk, packagesText(genuineLines...), packagesText(append(all(hijack), "Zzz::Long 1.0 A/AB/ABC/Zzz-1.0.tar.gz"+strings.Repeat(" ", 5000))...), unlogged, "longer than 4096 bytes"},
		{"unsorted", pk, packagesText(genuineLines...), header(3) + hijack + "\n" + genuineLines[1] + "\nAaa 1.0 A/AB/ABC/Zzz-1.0.tar.gz\n", unlogged, "not sorted"},
		{"Line-Count says more", pk, packagesText(genuineLines...), strings.Replace(packagesText(all(hijack)...), "Line-Count:   2", "Line-Count:   3", 1), unlogged, "Line-Count says 3 records"},
		{"a NUL byte", pk, packagesText(genuineLines...), packagesText(all(hijack)...) + "Zzzz 1.0 A/AB/ABC/Zzz-1.0.tar.gz\x00\n", unlogged, "control byte 0x00"},
		{"larger than the monitor reads", pk, packagesText(genuineLines...), oversized, []string{KindIndexUnauditable + "!"}, "more than 1048576 bytes"},
		{"06perms with a bad permission", pe, permsText("Try::Tiny,ETHER,f"), permsText("Try::Tiny,ETHER,f", "Try::Tiny,EVIL,x"), []string{KindIndexUnauditable}, `permission "x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaves := [][]byte{
				mkUpload(t, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", "ETHER", "try tiny", t0, nil),
				mkUpload(t, "authors/id/A/AB/ABC/Zzz-1.0.tar.gz", "ABC", "zzz", t0, nil),
			}
			skey, vkey, _ := note.GenerateKey(rand.Reader, tlog.DefaultOrigin)
			signer, _ := note.NewSigner(skey)
			logURL, dir, _, _ := craftedLog(t, leaves, signer, "")
			state := t.TempDir()
			// Each version is logged, and its bytes kept by the log at
			// /index-files/<sha256>, as the log does.
			round := func(i int, text string) run {
				b := gz(text)
				sum := sha256.Sum256(b)
				os.MkdirAll(filepath.Join(dir, "index-files"), 0o755)
				if err := os.WriteFile(filepath.Join(dir, "index-files", hex.EncodeToString(sum[:])), b, 0o644); err != nil {
					t.Fatal(err)
				}
				appendLeaves(t, dir, signer, [][]byte{mkIndex(t, tc.path, b, t0.Add(time.Duration(i)*time.Hour))})
				return monitorWithMirror(t, logURL, vkey, state, "")
			}
			kinds := func(r run) []string {
				if len(r.findings) > 10 {
					return []string{fmt.Sprintf("%d findings", len(r.findings))}
				}
				var out []string
				for _, f := range r.findings {
					k := f.Kind
					if f.Security {
						k += "!"
					}
					out = append(out, k)
				}
				slices.Sort(out)
				return out
			}
			if r := round(1, tc.genuine); r.err != nil || len(r.findings) != 0 {
				t.Fatalf("the genuine version: %v %v", r.err, kinds(r))
			}
			r := round(2, tc.hostile)
			for _, f := range r.findings {
				if f.Kind == KindIndexUnauditable && !strings.Contains(f.Message, tc.why) {
					t.Errorf("%s does not say %q", f.Text(), tc.why)
				}
			}
			if r.err != nil || !slices.Equal(kinds(r), tc.want) {
				t.Errorf("the hostile version: %v %v, want %v", r.err, kinds(r), tc.want)
				for _, f := range r.findings[:min(len(r.findings), 5)] {
					t.Log(f.Text())
				}
			}
			// The genuine version again: compared with the last version
			// audited, it changes nothing.
			if r := round(3, tc.genuine); r.err != nil || len(r.findings) != 0 {
				t.Errorf("the genuine version after the hostile one: %v %v (the hostile version became the baseline)", r.err, kinds(r))
				for _, f := range r.findings[:min(len(r.findings), 5)] {
					t.Log(f.Text())
				}
			}
		})
	}
}

// tamperedLog serves the log tree in dir over HTTP, each response passed
// through tamper (nil: as it is; a nil body: 404).
func tamperedLog(t testing.TB, dir string, tamper *func(p string, b []byte) []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(r.URL.Path, "/"))))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		if *tamper != nil {
			if b = (*tamper)(strings.TrimPrefix(r.URL.Path, "/"), b); b == nil {
				http.NotFound(w, r)
				return
			}
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// reframe re-encodes a bundle with fn applied to its entries.
func reframe(t testing.TB, raw []byte, fn func([][]byte) [][]byte) []byte {
	t.Helper()
	var entries [][]byte
	for len(raw) >= 2 {
		n := int(binary.BigEndian.Uint16(raw))
		entries = append(entries, raw[2:2+n])
		raw = raw[2+n:]
	}
	var out []byte
	for _, e := range fn(entries) {
		out = binary.BigEndian.AppendUint16(out, uint16(len(e)))
		out = append(out, e...)
	}
	return out
}

// TestLogUnauditable: what a log serves that the monitor cannot audit is a
// security finding, log-unauditable, never a bare error: an entry bundle
// that does not frame, that holds fewer or more entries than it may, or
// that the log does not serve (the audit stops before it, with what came
// before committed and reported); a hash tile it does not serve or that
// is not one (the audit goes on: the tree is rebuilt from the entries); a
// checkpoint larger than any; tiles that cannot prove a new checkpoint
// consistent with the one trusted. Once the log serves what it must, the
// audit resumes where it stopped.
func TestLogUnauditable(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var leaves [][]byte
	for i := range 300 {
		leaves = append(leaves, mkUpload(t, fmt.Sprintf("authors/id/S/SY/SYNTH/D-%d.tar.gz", i), "SYNTH", fmt.Sprint(i), t0, nil))
	}
	leaves[5] = []byte("not an entry\n") // reported before the stop
	bundle1 := layout.EntriesPath(1, 300-256)
	for _, tc := range []struct {
		name    string
		tamper  func(p string, b []byte) []byte
		stops   bool   // the audit stops before bundle 1
		why     string // in the finding's message
		kinds   string // the round's findings
		audited uint64
	}{
		{"a bundle that ends inside an entry", func(p string, b []byte) []byte {
			if p == bundle1 {
				return b[:len(b)-10]
			}
			return b
		}, true, "ends inside entry 43", "entry-malformed,log-unauditable", 256},
		{"a bundle of fewer entries than committed", func(p string, b []byte) []byte {
			if p == bundle1 {
				return reframe(t, b, func(e [][]byte) [][]byte { return e[:40] })
			}
			return b
		}, true, "has 40 entries, the checkpoint commits to 44", "entry-malformed,log-unauditable", 256},
		{"a bundle of more than 256 entries", func(p string, b []byte) []byte {
			if p == layout.EntriesPath(0, 0) {
				return reframe(t, b, func(e [][]byte) [][]byte { return append(e, e[0]) })
			}
			return b
		}, true, "more than 256 entries", "log-unauditable", 0},
		{"a bundle the log does not serve", func(p string, b []byte) []byte {
			if strings.HasPrefix(p, "tile/entries/001") {
				return nil
			}
			return b
		}, true, "not found", "entry-malformed,log-unauditable", 256},
		{"a tile the log does not serve", func(p string, b []byte) []byte {
			if p == layout.TilePath(0, 0, 0) {
				return nil
			}
			return b
		}, false, "hash tile 0/0", "entry-malformed,log-unauditable", 300},
		{"a tile that is not one", func(p string, b []byte) []byte {
			if p == layout.TilePath(0, 1, 300-256) {
				return b[:31]
			}
			return b
		}, false, "is 31 bytes", "entry-malformed,log-unauditable", 300},
		{"a checkpoint larger than any", func(p string, b []byte) []byte {
			if p == layout.CheckpointPath {
				return append(b, bytes.Repeat([]byte("x"), client.MaxCheckpointSize)...)
			}
			return b
		}, true, fmt.Sprintf("larger than %d bytes", client.MaxCheckpointSize), "log-unauditable", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, dir, vkey, _ := craftedLog(t, leaves, nil, "")
			tamper := tc.tamper
			logURL := tamperedLog(t, dir, &tamper)
			state := t.TempDir()
			r := monitorOnce(t, logURL, vkey, state, nil)
			if tc.stops != (r.err != nil) {
				t.Errorf("the round's error: %v, want one: %v", r.err, tc.stops)
			}
			var got []string
			for _, f := range r.findings {
				got = append(got, f.Kind)
				if f.Kind == KindLogUnauditable && (!f.Security || !strings.Contains(f.Message, tc.why)) {
					t.Errorf("security %v, want true, and %q in: %s", f.Security, tc.why, f.Message)
				}
			}
			slices.Sort(got)
			if strings.Join(got, ",") != tc.kinds {
				t.Errorf("findings %v, want %s", got, tc.kinds)
			}
			m, err := New(Config{Policy: mustPolicy(t, vkey, logURL), StateDir: state, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := m.Audited(); n != tc.audited {
				t.Errorf("audited %d entries, want %d", n, tc.audited)
			}
			m.Close()
			// The log serves what it must: the audit resumes.
			tamper = nil
			r = monitorOnce(t, logURL, vkey, state, nil)
			if r.err != nil || (tc.audited == 0 && r.kinds() != KindEntryMalformed) || (tc.audited != 0 && len(r.findings) != 0) {
				t.Errorf("once the log serves what it must: %v %s", r.err, r.kinds())
			}
		})
	}

	// A new checkpoint whose consistency with the trusted one the log's
	// tiles cannot prove is not trusted: a fork could hide there.
	t.Run("tiles that cannot prove consistency", func(t *testing.T) {
		skey, vkey, _ := note.GenerateKey(rand.Reader, tlog.DefaultOrigin)
		signer, _ := note.NewSigner(skey)
		_, dir, _, _ := craftedLog(t, leaves[:100], signer, "")
		var tamper func(p string, b []byte) []byte
		logURL := tamperedLog(t, dir, &tamper)
		state := t.TempDir()
		if r := monitorOnce(t, logURL, vkey, state, nil); r.err != nil {
			t.Fatal(r.err)
		}
		appendLeaves(t, dir, signer, leaves[100:])
		tamper = func(p string, b []byte) []byte {
			if strings.HasPrefix(p, "tile/0/") || strings.HasPrefix(p, "tile/1/") {
				return b[:len(b)-1]
			}
			return b
		}
		r := monitorOnce(t, logURL, vkey, state, nil)
		if r.err == nil || r.kinds() != KindLogUnauditable || !r.findings[0].Security || !strings.Contains(r.findings[0].Message, "cannot prove its checkpoint of size 300 consistent") {
			t.Errorf("%v %+v", r.err, r.findings)
		}
	})
}

func mustPolicy(t testing.TB, vkey, logURL string) *client.Policy {
	t.Helper()
	p, err := client.ParsePolicy(fmt.Appendf(nil, "log %s %s\nquorum none\n", vkey, logURL))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMirrorUnauditable: audit-mirror judges what a mirror serves by the
// bytes a web server would send (symlinks resolved), reads every input
// bounded, and reports what it cannot read or judge as
// mirror-unauditable (security), going on with the rest.
func TestMirrorUnauditable(t *testing.T) {
	defer func(n int64) { maxMirrorFile = n }(maxMirrorFile)
	maxMirrorFile = 1 << 20
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	const tt, foo = "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", "authors/id/A/AB/ABC/Foo-1.0.tar.gz"
	files := map[string]string{tt: "try tiny", foo: "foo"}
	logURL, _, vkey, _ := craftedLog(t, [][]byte{mkUpload(t, tt, "ETHER", files[tt], t0, nil), mkUpload(t, foo, "ABC", files[foo], t0, nil)}, nil, "")
	mirror := func(t *testing.T) string {
		root := t.TempDir()
		for p, c := range files {
			os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
			if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return root
	}
	elsewhere := func(t *testing.T, content string) string {
		p := filepath.Join(t.TempDir(), "other")
		os.WriteFile(p, []byte(content), 0o644)
		return p
	}
	type want struct {
		kind     string
		path     string
		security bool
		why      string
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, root string)
		want  []want
	}{
		{"a tarball that is a symlink to other bytes", func(t *testing.T, root string) {
			os.Remove(filepath.Join(root, tt))
			os.Symlink(elsewhere(t, "evil"), filepath.Join(root, tt))
		}, []want{{KindMirrorMismatch, tt, true, "sha256"}}},
		{"a tarball that is a symlink to the logged bytes", func(t *testing.T, root string) {
			os.Remove(filepath.Join(root, tt))
			os.Symlink(elsewhere(t, files[tt]), filepath.Join(root, tt))
		}, nil},
		{"a directory that is a symlink", func(t *testing.T, root string) {
			d := t.TempDir()
			os.WriteFile(filepath.Join(d, "Try-Tiny-0.31.tar.gz"), []byte("evil"), 0o644)
			os.RemoveAll(filepath.Join(root, "authors/id/E/ET/ETHER"))
			os.Symlink(d, filepath.Join(root, "authors/id/E/ET/ETHER"))
		}, []want{{KindMirrorMismatch, tt, true, "sha256"}}},
		{"a dangling symlink", func(t *testing.T, root string) {
			os.Remove(filepath.Join(root, tt))
			os.Symlink(filepath.Join(root, "nowhere"), filepath.Join(root, tt))
		}, []want{{KindMirrorMissing, tt, false, "does not have it"}, {KindMirrorUnauditable, tt, true, "does not resolve"}}},
		{"a symlink to a directory above it", func(t *testing.T, root string) {
			os.Symlink("..", filepath.Join(root, "authors/id/E/ET/ETHER/up"))
		}, []want{{KindMirrorUnauditable, "authors/id/E/ET/ETHER/up", true, "directory above it"}}},
		{"a file larger than the audit hashes", func(t *testing.T, root string) {
			if err := os.Truncate(filepath.Join(root, tt), maxMirrorFile+1); err != nil {
				t.Fatal(err)
			}
		}, []want{{KindMirrorMissing, tt, false, "does not have it"}, {KindMirrorUnauditable, tt, true, "larger than 1048576 bytes"}}},
		{"a CHECKSUMS of 2 GiB", func(t *testing.T, root string) {
			// Sparse: 2 GiB of NULs that take no room on disk.
			f, err := os.Create(filepath.Join(root, "authors/id/E/ET/ETHER/CHECKSUMS"))
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
			if err := os.Truncate(f.Name(), 2<<30); err != nil {
				t.Fatal(err)
			}
		}, []want{{KindMirrorUnauditable, "authors/id/E/ET/ETHER/CHECKSUMS", true, "larger than 8388608 bytes"}}},
		{"a CHECKSUMS that is not one", func(t *testing.T, root string) {
			os.WriteFile(filepath.Join(root, "authors/id/E/ET/ETHER/CHECKSUMS"), []byte("system('rm -rf /');\n"), 0o644)
		}, []want{{KindMirrorUnauditable, "authors/id/E/ET/ETHER/CHECKSUMS", true, "malformed CHECKSUMS"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := mirror(t)
			tc.setup(t, root)
			var r run
			rss, _ := peakMemory(t, func() { r = auditMirror(t, logURL, vkey, t.TempDir(), root) })
			if r.err != nil {
				t.Fatal(r.err)
			}
			if rss > maxAuditGrowth && !raceEnabled {
				t.Errorf("the audit grew the resident set by %d MB, more than %d MB", rss>>20, maxAuditGrowth>>20)
			}
			if len(r.findings) != len(tc.want) {
				t.Fatalf("findings %+v, want %+v", r.findings, tc.want)
			}
			for _, w := range tc.want {
				i := slices.IndexFunc(r.findings, func(f Finding) bool { return f.Kind == w.kind })
				if i < 0 {
					t.Errorf("no %s finding: %s", w.kind, r.kinds())
					continue
				}
				if f := r.findings[i]; f.Path != w.path || f.Security != w.security || !strings.Contains(f.Message, w.why) {
					t.Errorf("finding %s, want %+v", f.Text(), w)
				}
			}
		})
	}

	// Over HTTP: a CHECKSUMS larger than any or that cannot be fetched is
	// reported, and the other directories are still audited.
	t.Run("over HTTP", func(t *testing.T) {
		big := bytes.Repeat([]byte("#"), 33<<20)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/authors/id/E/ET/ETHER/CHECKSUMS":
				w.Write(big)
			case "/authors/id/A/AB/ABC/CHECKSUMS":
				http.Error(w, "down", http.StatusInternalServerError)
			default:
				http.NotFound(w, r)
			}
		}))
		defer srv.Close()
		r := auditMirror(t, logURL, vkey, t.TempDir(), srv.URL)
		if r.err != nil {
			t.Fatal(r.err)
		}
		why := map[string]string{"authors/id/E/ET/ETHER/CHECKSUMS": "larger than 8388608 bytes", "authors/id/A/AB/ABC/CHECKSUMS": "500"}
		n := 0
		for _, f := range r.findings {
			switch f.Kind {
			case KindMirrorUnauditable:
				n++
				if !f.Security || !strings.Contains(f.Message, why[f.Path]) {
					t.Errorf("%s: want security and %q", f.Text(), why[f.Path])
				}
			case KindMirrorMissing:
			default:
				t.Errorf("unexpected %s", f.Text())
			}
		}
		if n != 2 {
			t.Errorf("%d mirror-unauditable findings, want 2: %s", n, r.kinds())
		}
	})
}

// TestIndexVersionTooLargeToDownload: a logged version larger than the
// monitor downloads is index-version-unauditable (security), without a
// byte of it fetched.
func TestIndexVersionTooLargeToDownload(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	const pk = "modules/02packages.details.txt.gz"
	e := &entry.Entry{Kind: entry.Index, Path: pk, Size: maxIndexDownload + 1, SHA256: sha256.Sum256([]byte("huge")), Time: t0}
	leaf, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	_, dir, vkey, _ := craftedLog(t, [][]byte{leaf}, nil, "")
	var fetched []string
	tamper := func(p string, b []byte) []byte {
		if strings.HasPrefix(p, "index-files/") {
			fetched = append(fetched, p)
		}
		return b
	}
	logURL := tamperedLog(t, dir, &tamper)
	r := monitorWithMirror(t, logURL, vkey, t.TempDir(), "")
	if r.err != nil || r.kinds() != KindIndexUnauditable || !r.findings[0].Security || !strings.Contains(r.findings[0].Message, "more than the 268435456 this monitor downloads") || len(fetched) != 0 {
		t.Errorf("%v %+v, fetched %v", r.err, r.findings, fetched)
	}
}

// TestMirrorChecksumsFlood: an HTTP mirror serving a CHECKSUMS as large as
// the audit reads, listing 84,000 files the log never recorded, costs the
// audit no more than its memory bound, and reports the first thousand one
// by one and the rest in one finding.
func TestMirrorChecksumsFlood(t *testing.T) {
	if raceEnabled {
		t.Skip("measures memory; the race detector's is not the monitor's")
	}
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	const tt = "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz"
	logURL, _, vkey, _ := craftedLog(t, [][]byte{mkUpload(t, tt, "ETHER", "x", t0, nil)}, nil, "")
	var b bytes.Buffer
	b.WriteString("$cksum = {\n")
	files := 0
	for ; b.Len() < maxMirrorChecksums-200; files++ {
		fmt.Fprintf(&b, "'f%d.tar.gz'=>{'size'=>1,'sha256'=>'%064d'},\n", files, files)
	}
	b.WriteString("};\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/authors/id/E/ET/ETHER/CHECKSUMS" {
			w.Write(b.Bytes())
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	m, err := New(Config{Policy: mustPolicy(t, vkey, logURL), StateDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	unlogged, more := 0, 0
	var auditErr, deliverErr error
	rss, heap := peakMemory(t, func() {
		auditErr = m.AuditMirror(context.Background(), srv.URL)
		deliverErr = m.DeliverEach(context.Background(), func(f Finding) {
			switch {
			case f.Kind == KindMirrorUnlogged && f.Path != "":
				unlogged++
			case f.Kind == KindMirrorUnlogged:
				more += int(mustAtoi(t, strings.Fields(f.Message)[3]))
			}
		})
	})
	t.Logf("a CHECKSUMS of %d bytes listing %d files: peak RSS growth %d MB, peak live heap growth %d MB", b.Len(), files, rss>>20, heap>>20)
	if auditErr != nil || deliverErr != nil {
		t.Fatal(auditErr, deliverErr)
	}
	if unlogged != maxMirrorGroup || unlogged+more != files {
		t.Errorf("%d unlogged files listed and %d more counted, want %d and %d", unlogged, more, maxMirrorGroup, files-maxMirrorGroup)
	}
	if rss > maxAuditGrowth {
		t.Errorf("the audit grew the resident set by %d MB, more than %d MB", rss>>20, maxAuditGrowth>>20)
	}
}
