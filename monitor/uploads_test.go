package monitor

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/client"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

func testUpload(i int) upload {
	return upload{Index: uint64(i), Size: uint64(1000 + i), SHA256: sha256.Sum256(fmt.Append(nil, i))}
}

func testPath(i int) string {
	return fmt.Sprintf("authors/id/S/SY/SYNTH%d/Dist-%d-1.0.tar.gz", i%100, i)
}

// TestUploadsRoundTrip: many paths (the table grows from its minimum
// several times), rewrites and deletions, then a reopen: every path reads
// back as its latest record, from the pending buffer, the file and a table
// rebuilt from the file.
func TestUploadsRoundTrip(t *testing.T) {
	file := filepath.Join(t.TempDir(), "uploads")
	u, err := openUploads(file, 0, 0, nil, nil, -1)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]upload{}
	const n = 5000
	for i := range n {
		rec := testUpload(i)
		if err := u.put(testPath(i), rec); err != nil {
			t.Fatal(err)
		}
		want[testPath(i)] = rec
	}
	// Rewrite every tenth path, delete every seventh.
	for i := 0; i < n; i += 10 {
		rec := testUpload(n + i)
		u.put(testPath(i), rec)
		want[testPath(i)] = rec
	}
	for i := 0; i < n; i += 7 {
		rec := want[testPath(i)]
		rec.Deleted = true
		u.put(testPath(i), rec)
		want[testPath(i)] = rec
	}
	check := func(u *uploads, when string) {
		t.Helper()
		for p, rec := range want {
			got, ok, err := u.get(p)
			if err != nil || !ok || got != rec {
				t.Fatalf("%s: get(%s) = %+v, %v, %v; want %+v", when, p, got, ok, err, rec)
			}
		}
		if _, ok, err := u.get("authors/id/N/NO/NOONE/never-1.0.tar.gz"); ok || err != nil {
			t.Fatalf("%s: a path never put was found (err %v)", when, err)
		}
		all := map[string]upload{}
		if err := u.each(func(p string, rec upload) error {
			if _, dup := all[p]; dup {
				return fmt.Errorf("each gave %s twice", p)
			}
			all[p] = rec
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, all); diff != "" {
			t.Fatalf("%s: each (-want +got):\n%s", when, diff)
		}
	}
	check(u, "pending")
	size, err := u.flush()
	if err != nil {
		t.Fatal(err)
	}
	check(u, "flushed")
	u.close()
	u, err = openUploads(file, size, n, nil, nil, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer u.close()
	check(u, "reopened")
	if u.used != n {
		t.Errorf("table holds %d paths, want %d", u.used, n)
	}
}

// TestUploadsDropUncommitted: records written after the last committed
// length (a batch whose transaction never committed) are gone on reopen,
// and reload does the same in a running monitor.
func TestUploadsDropUncommitted(t *testing.T) {
	file := filepath.Join(t.TempDir(), "uploads")
	u, _ := openUploads(file, 0, 0, nil, nil, -1)
	u.put(testPath(1), testUpload(1))
	committed, _ := u.flush()
	u.put(testPath(2), testUpload(2))
	u.put(testPath(1), testUpload(3)) // a rewrite in the lost batch
	if _, err := u.flush(); err != nil {
		t.Fatal(err)
	}
	u.close()

	u, err := openUploads(file, committed, 1, nil, nil, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := u.get(testPath(2)); ok {
		t.Error("a record of the uncommitted batch survived reopening")
	}
	if got, _, _ := u.get(testPath(1)); got != testUpload(1) {
		t.Errorf("path 1 reads %+v, want the committed %+v", got, testUpload(1))
	}
	if fi, _ := os.Stat(file); fi.Size() != committed {
		t.Errorf("file has %d bytes after reopening, want the committed %d", fi.Size(), committed)
	}

	u.put(testPath(4), testUpload(4))
	if err := u.reload(committed, 0); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := u.get(testPath(4)); ok {
		t.Error("a pending record survived reload")
	}
	u.close()
}

// TestUploadsCorrupt: a file that does not decode, or is shorter than the
// state committed, is refused with errUploadsCorrupt and left as it was.
func TestUploadsCorrupt(t *testing.T) {
	good := appendRecord(nil, testPath(1), testUpload(1))
	for name, tc := range map[string]struct {
		data      []byte
		committed int64
	}{
		"bad flags":              {append([]byte{7}, good[1:]...), int64(len(good))},
		"cut short":              {good[:len(good)-3], int64(len(good) - 3)},
		"path length absurd":     {append(good[:1+1+2+32:1+1+2+32], binary.AppendUvarint(nil, 1<<40)...), int64(1 + 1 + 2 + 32 + 6)},
		"shorter than committed": {good, int64(len(good) + 1)},
	} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "uploads")
			os.WriteFile(file, tc.data, 0o600)
			_, err := openUploads(file, tc.committed, 0, nil, nil, -1)
			if !errors.Is(err, errUploadsCorrupt) {
				t.Fatalf("openUploads = %v, want errUploadsCorrupt", err)
			}
			if b, _ := os.ReadFile(file); !bytes.Equal(b, tc.data) {
				t.Error("the refused file was changed")
			}
		})
	}
}

// TestMigrateUploads: a state written before the uploads file keeps its
// per-path records (with deletions) when opened by this version.
func TestMigrateUploads(t *testing.T) {
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "monitor.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := func(rec upload) []byte {
		v := binary.BigEndian.AppendUint64(nil, rec.Index)
		v = binary.BigEndian.AppendUint64(v, rec.Size)
		return append(v, rec.SHA256[:]...)
	}
	db.Update(func(tx *bolt.Tx) error {
		up, _ := tx.CreateBucket([]byte("uploads"))
		del, _ := tx.CreateBucket([]byte("deleted"))
		up.Put([]byte(testPath(1)), old(testUpload(1)))
		up.Put([]byte(testPath(2)), old(testUpload(2)))
		return del.Put([]byte(testPath(2)), nil)
	})
	db.Close()

	for range 2 { // the second open finds nothing left to migrate
		st, err := openState(dir)
		if err != nil {
			t.Fatal(err)
		}
		gone := testUpload(2)
		gone.Deleted = true
		for p, want := range map[string]upload{testPath(1): testUpload(1), testPath(2): gone} {
			if got, ok, err := st.uploads.get(p); !ok || err != nil || got != want {
				t.Errorf("%s = %+v, %v, %v; want %+v", p, got, ok, err, want)
			}
		}
		st.db.View(func(tx *bolt.Tx) error {
			if tx.Bucket([]byte("uploads")) != nil || tx.Bucket([]byte("deleted")) != nil {
				t.Error("the old buckets are still there")
			}
			return nil
		})
		st.close()
	}
}

func TestHashChildren(t *testing.T) {
	l, r := sha256.Sum256([]byte("l")), sha256.Sum256([]byte("r"))
	if got, want := hashChildren(l[:], r[:]), rfc6962.DefaultHasher.HashChildren(l[:], r[:]); !bytes.Equal(got, want) {
		t.Errorf("hashChildren = %x, want %x", got, want)
	}
}

// FuzzDecodeRecord: any bytes either decode to a record that encodes back
// to the bytes it used, or are refused.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, testPath(1), testUpload(1)))
	f.Add(appendRecord(nil, "", upload{Deleted: true}))
	f.Add(appendRecord(nil, testPath(2), upload{Index: 5, DeferredDelete: true}))
	f.Add(appendRecord(nil, testPath(3), upload{Index: 5, Deleted: true, DeletedAt: 9}))
	for _, p := range authorPathCases {
		f.Add(appendRecord(nil, p, testUpload(2)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, rec, n, err := decodeRecord(b)
		if err != nil {
			return
		}
		if enc := appendRecord(nil, p, rec); !bytes.Equal(enc, b[:n]) {
			// Uvarints have more than one encoding, and an author path may
			// be written whole; only the shortest form is written, so only
			// it must round-trip.
			if p2, rec2, _, err := decodeRecord(enc); err != nil || rec2 != rec || p2 != p {
				t.Fatalf("re-encoding %q %+v decodes to %q %+v: %v", p, rec, p2, rec2, err)
			}
		}
	})
}

// TestDeferredDeletionRecord: a deferred deletion's record reads back as
// one, and a record that says both "deleted upload" and "deferred
// deletion" (which no writer makes) is damage.
func TestDeferredDeletionRecord(t *testing.T) {
	b := appendRecord(nil, testPath(2), upload{Index: 5, DeferredDelete: true})
	if p, rec, _, err := decodeRecord(b); err != nil || p != testPath(2) || rec != (upload{Index: 5, DeferredDelete: true}) {
		t.Fatalf("decodes to %q %+v, %v", p, rec, err)
	}
	both := appendRecord(nil, testPath(2), upload{Index: 5, Deleted: true, DeferredDelete: true})
	if _, _, _, err := decodeRecord(both); err == nil {
		t.Error("a record with both deletion flags decoded")
	}
}

var authorPathCases = []string{
	"authors/id/A/AB/ABC/Foo-1.0.tar.gz", "authors/id/A/AB/AB/x", "authors/id/A/AB/AB", "authors/id/A/AB/ABC",
	"authors/id/A/AB/XYZ/Foo.tar.gz", "authors/id/A/AC/ABC/Foo.tar.gz", "authors/id/A/AB//Foo", "authors/id/A/A/A/Foo",
	"authors/id/A/AB/A/BC", "authors/id/A/AB/ABC/", "authors/id/AB/ABC/Foo", "authors/id/", "authors/id/A/A/",
	"modules/02packages.details.txt.gz", "authors/01mailrc.txt.gz", "authors/id/Ü/ÜB/ÜBER/x", "",
}

// TestAuthorPaths: every path reads back from its record exactly as it
// was put, and an author path's record is 16 bytes shorter.
func TestAuthorPaths(t *testing.T) {
	for _, p := range authorPathCases {
		b := appendRecord(nil, p, testUpload(3))
		got, rec, n, err := decodeRecord(b)
		if err != nil || got != p || rec != testUpload(3) || n != len(b) {
			t.Errorf("%q: decodes to %q %+v (%d of %d bytes), %v", p, got, rec, n, len(b), err)
		}
		short, ok := authorPath(p)
		if want := len(appendRecord(nil, "x"+p, testUpload(3))) - 1; ok && len(b) != want-16 {
			t.Errorf("%q (as %q): record of %d bytes, want %d", p, short, len(b), want-16)
		}
	}
	if _, ok := authorPath("authors/id/A/AB/ABC/Foo-1.0.tar.gz"); !ok {
		t.Error("a PAUSE author path is not kept short")
	}
}

// TestCanceledSyncReportsNothing: a sync stopped mid-audit (shutdown) is an
// error, not a root mismatch over the entries audited so far, and the next
// sync finishes the audit with nothing to report.
// gatedLog serves a new log of leaves, signed by signer, and holds every
// request for an entry bundle at or past its gate until the request is
// canceled: an audit of it stops at the gate however fast or slow the
// machine, until the caller cancels it. Tests that stop an audit midway
// used a log that was merely slow, and a poller that had to see the
// audit's position before it finished: on a busy machine the poller could
// run too late (TestBulkAuditResumes failed once in CI, "no audit was
// stopped midway", reproduced by delaying the poller by a second).
type gatedLog struct {
	*httptest.Server
	gate atomic.Uint64 // bundles served; math.MaxUint64 for all
}

func newGatedLog(t *testing.T, signer note.Signer, leaves [][]byte, gate uint64) *gatedLog {
	t.Helper()
	dir := t.TempDir()
	appendLeaves(t, dir, signer, leaves)
	g := &gatedLog{}
	g.gate.Store(gate)
	files := http.FileServer(http.Dir(dir))
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := strings.CutPrefix(r.URL.Path, "/tile/entries/"); ok {
			if idx, err := bundleIndex(rest); err == nil && idx >= g.gate.Load() {
				<-r.Context().Done()
				return
			}
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(g.Close)
	return g
}

// bundleIndex is the index of an entry bundle from its path below
// tile/entries/ (x001/234, with .p/N for a partial one).
func bundleIndex(p string) (uint64, error) {
	p, _, _ = strings.Cut(p, ".p/")
	return strconv.ParseUint(strings.NewReplacer("x", "", "/", "").Replace(p), 10, 64)
}

func TestCanceledSyncReportsNothing(t *testing.T) {
	skey, vkey, _ := note.GenerateKey(rand.Reader, tlog.DefaultOrigin)
	signer, _ := note.NewSigner(skey)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	leaves := make([][]byte, 20_000)
	for i := range leaves {
		leaves[i] = mkUpload(t, fmt.Sprintf("authors/id/S/SY/SYNTH/Dist-%d-1.0.tar.gz", i), "SYNTH", fmt.Sprint(i), t0.Add(time.Duration(i)*time.Second), nil)
	}
	// The audit commits a batch of bundles, then waits at the gate until
	// the timeout cancels it.
	srv := newGatedLog(t, signer, leaves, batchBundles+6)
	p, err := client.ParsePolicy(fmt.Appendf(nil, "log %s %s\nquorum none\n", vkey, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	m, err := New(Config{Policy: p, StateDir: state, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	err = m.Sync(ctx)
	cancel()
	srv.gate.Store(math.MaxUint64)
	if err == nil {
		t.Fatal("a sync canceled mid-audit returned no error")
	}
	if n, _ := m.Audited(); n >= uint64(len(leaves)) {
		t.Fatalf("audited %d entries before the cancel: the test proves nothing", n)
	}
	if err := m.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fs, _ := m.Deliver(context.Background()); len(fs) != 0 {
		t.Errorf("findings after a canceled then finished audit: %+v", fs)
	}
	m.Close()
}

// TestStateSizesTableOnOpen: the state commits how many paths the uploads
// file holds, so that a restarted monitor builds its table at the right
// size in one pass over the file instead of doubling its way there.
func TestStateSizesTableOnOpen(t *testing.T) {
	dir := t.TempDir()
	st, err := openState(dir)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20_000
	err = st.commitBatch(func(*bolt.Tx) error {
		for i := range n {
			if err := st.uploads.put(testPath(i), testUpload(i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Not closed (a closed state saves its table, mapped again as it is).
	st.uploads.close()
	st.db.Close()
	st, err = openState(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	if _, paths := st.committedUploads(); paths != n {
		t.Errorf("state committed %d paths, want %d", paths, n)
	}
	if got, want := st.uploads.slots.len(), n*100/maxLoad; got != want {
		t.Errorf("table of %d slots after reopening, want %d (sized once for %d paths)", got, want, n)
	}
	if got, ok, err := st.uploads.get(testPath(n - 1)); !ok || err != nil || got != testUpload(n-1) {
		t.Errorf("last path after reopening: %+v, %v, %v", got, ok, err)
	}
}

// TestUploadsFlippedBit: any one flipped bit in the uploads file is a
// refusal to start, never a path silently forgotten or changed.
func TestUploadsFlippedBit(t *testing.T) {
	var good []byte
	for i := 1; i <= 3; i++ {
		for len(good)%recordAlign != 0 {
			good = append(good, 0)
		}
		good = appendRecord(good, testPath(i), testUpload(i))
	}
	file := filepath.Join(t.TempDir(), "uploads")
	for bit := 0; bit < 8*len(good); bit++ {
		bad := bytes.Clone(good)
		bad[bit/8] ^= 1 << (bit % 8)
		os.WriteFile(file, bad, 0o600)
		u, err := openUploads(file, int64(len(bad)), 3, nil, nil, -1)
		if errors.Is(err, errUploadsCorrupt) {
			continue
		}
		if err != nil {
			t.Fatalf("bit %d: %v, want errUploadsCorrupt", bit, err)
		}
		// Only a bit in the padding between records may go unnoticed,
		// and then every record must read as written.
		for i := 1; i <= 3; i++ {
			if got, ok, err := u.get(testPath(i)); !ok || err != nil || got != testUpload(i) {
				t.Errorf("bit %d (byte %d) flipped: %s reads %+v %v %v", bit, bit/8, testPath(i), got, ok, err)
			}
		}
		u.close()
	}
}

// TestRewriteLegacyUploads: a file of records written before checksums
// is rewritten once, with every path's latest record, and the old file is
// removed.
func TestRewriteLegacyUploads(t *testing.T) {
	dir := t.TempDir()
	var legacy []byte
	recs := map[string]upload{testPath(1): testUpload(1), testPath(2): testUpload(2)}
	for i, p := range []string{testPath(1), testPath(2), testPath(1)} {
		for len(legacy)%recordAlign != 0 {
			legacy = append(legacy, 0)
		}
		r := recs[p]
		if i == 2 {
			r.Deleted = true
			recs[p] = r
		}
		b := appendRecord(nil, p, r)
		b[0] &^= flagChecksum
		legacy = append(legacy, b[:len(b)-4]...)
	}
	os.WriteFile(filepath.Join(dir, "uploads"), legacy, 0o600)
	db, _ := bolt.Open(filepath.Join(dir, "monitor.db"), 0o600, nil)
	db.Update(func(tx *bolt.Tx) error {
		m, _ := tx.CreateBucketIfNotExists(bMeta)
		v := binary.BigEndian.AppendUint64(nil, uint64(len(legacy)))
		return m.Put(kUploads, binary.BigEndian.AppendUint64(v, 2))
	})
	db.Close()
	for range 2 {
		st, err := openState(dir)
		if err != nil {
			t.Fatal(err)
		}
		if st.uploads.legacy != 0 {
			t.Errorf("%d legacy records after open", st.uploads.legacy)
		}
		for p, want := range recs {
			if got, ok, err := st.uploads.get(p); !ok || err != nil || got != want {
				t.Errorf("%s = %+v %v %v, want %+v", p, got, ok, err, want)
			}
		}
		st.close()
	}
	if _, err := os.Stat(filepath.Join(dir, "uploads")); !os.IsNotExist(err) {
		t.Errorf("the legacy file is still there: %v", err)
	}
}

// TestUploadsTableSaved: a state closed cleanly saves its uploads table
// and the next start maps it instead of rebuilding it (the same hash seed;
// a rebuild draws a new one); the first change after that forgets the
// saved table before the table file changes, so that a crash from then on
// (the state not closed) leaves a table that is rebuilt; and a saved table
// whose file was damaged is rebuilt, never trusted. Every path reads back
// as its latest record each time.
func TestUploadsTableSaved(t *testing.T) {
	dir := t.TempDir()
	want := map[string]upload{}
	putBatch := func(st *state, from, to int) {
		t.Helper()
		err := st.commitBatch(func(*bolt.Tx) error {
			for i := from; i < to; i++ {
				if err := st.uploads.put(testPath(i), testUpload(i)); err != nil {
					return err
				}
				want[testPath(i)] = testUpload(i)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	check := func(st *state, when string) {
		t.Helper()
		for p, rec := range want {
			if got, ok, err := st.uploads.get(p); !ok || err != nil || got != rec {
				t.Fatalf("%s: get(%s) = %+v, %v, %v; want %+v", when, p, got, ok, err, rec)
			}
		}
		if _, ok, err := st.uploads.get(testPath(1 << 30)); ok || err != nil {
			t.Fatalf("%s: a path never put was found (err %v)", when, err)
		}
	}
	open := func() *state {
		t.Helper()
		st, err := openState(dir)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	st := open()
	putBatch(st, 0, 3000)
	seed := st.uploads.seed
	if err := st.close(); err != nil {
		t.Fatal(err)
	}
	st = open()
	if st.savedTable() == nil || !st.uploads.saved {
		t.Fatal("a cleanly closed state saved no table")
	}
	if st.uploads.seed != seed || st.uploads.used != 3000 {
		t.Fatalf("reopened: seed %x and %d paths, want the saved table's %x and 3000 (rebuilt instead of mapped)", st.uploads.seed, st.uploads.used, seed)
	}
	check(st, "mapped")

	// A change forgets the saved table first; then a crash (no close).
	putBatch(st, 3000, 3500)
	if st.savedTable() != nil || st.uploads.saved {
		t.Fatal("the table changed while the state still held it as saved")
	}
	seed = st.uploads.seed
	st.uploads.close()
	st.db.Close()
	st = open()
	if st.uploads.seed == seed {
		t.Fatal("after a crash the table was mapped, not rebuilt")
	}
	check(st, "rebuilt after a crash")
	seed = st.uploads.seed
	if err := st.close(); err != nil {
		t.Fatal(err)
	}

	// A flipped bit in a saved table: rebuilt from the records.
	table := filepath.Join(dir, "uploads.table")
	b, err := os.ReadFile(table)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		if b[i] != 0 {
			b[i] ^= 0x10
			break
		}
	}
	if err := os.WriteFile(table, b, 0o600); err != nil {
		t.Fatal(err)
	}
	st = open()
	defer st.close()
	if st.uploads.seed == seed || st.savedTable() != nil {
		t.Fatal("a damaged saved table was mapped")
	}
	check(st, "rebuilt after damage")
}

// TestReserveLeavesRoom: a table reserved for a first audit still has room
// for the next round's few new paths (a table sized exactly would be
// rebuilt, from every record, by the next round of any size).
func TestReserveLeavesRoom(t *testing.T) {
	u, err := openUploads(filepath.Join(t.TempDir(), "uploads"), 0, 0, nil, nil, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer u.close()
	const n = 40_000
	if err := u.reserve(n); err != nil {
		t.Fatal(err)
	}
	slots := u.slots.len()
	for i := range n {
		if err := u.put(testPath(i), testUpload(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := u.reserve(1000); err != nil {
		t.Fatal(err)
	}
	if u.slots.len() != slots {
		t.Errorf("the next round of 1,000 paths grew the table from %d to %d slots", slots, u.slots.len())
	}
}

// TestUploadsTableNotSaved: a table that cannot be written when the state
// closes is an error for the caller to report, and nothing else: the next
// start rebuilds the table from the records, with every path.
func TestUploadsTableNotSaved(t *testing.T) {
	dir := t.TempDir()
	st, err := openState(dir)
	if err != nil {
		t.Fatal(err)
	}
	err = st.commitBatch(func(*bolt.Tx) error {
		for i := range 500 {
			if err := st.uploads.put(testPath(i), testUpload(i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A directory where the table file goes: even root cannot write it.
	if err := os.Mkdir(filepath.Join(dir, "uploads.table"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := st.close(); err == nil {
		t.Fatal("closing the state reported no error, though its table could not be saved")
	}
	os.Remove(filepath.Join(dir, "uploads.table"))
	st, err = openState(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	if st.savedTable() != nil {
		t.Fatal("a table that was never written is recorded as saved")
	}
	for i := range 500 {
		if got, ok, err := st.uploads.get(testPath(i)); !ok || err != nil || got != testUpload(i) {
			t.Fatalf("%s after reopening: %+v, %v, %v", testPath(i), got, ok, err)
		}
	}
}

// TestAuditBundleRehashesAfterReseed: a bundle whose paths were hashed
// under another seed than the table's (the table was rebuilt after the
// workers hashed them) is looked up under the table's seed: a rewrite of a
// path already on record is still found.
func TestAuditBundleRehashesAfterReseed(t *testing.T) {
	_, vkey, _ := note.GenerateKey(rand.Reader, tlog.DefaultOrigin)
	p, err := client.ParsePolicy(fmt.Appendf(nil, "log %s http://127.0.0.1:1\nquorum none\n", vkey))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Policy: p, StateDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	const path = "authors/id/A/AB/ABC/Foo-1.0.tar.gz"
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	parse := func(content string) *entry.Entry {
		e, err := entry.ParseString(string(mkUpload(t, path, "ABC", content, t0, nil)))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	first := parse("one")
	err = m.st.commitBatch(func(*bolt.Tx) error {
		return m.st.uploads.put(path, upload{Index: 0, Size: first.Size, SHA256: first.SHA256})
	})
	if err != nil {
		t.Fatal(err)
	}
	stale := m.st.uploads.seed + 1
	b := checkedBundle{
		ri:         layout.RangeInfo{Index: 0, First: 1, N: 1},
		leafHashes: make([]byte, 64),
		entries:    []*entry.Entry{nil, parse("two")},
		parseErrs:  make([]error, 2),
		pathHashes: []uint64{0, hashPath(stale, path)},
		seed:       stale,
		tileOK:     true,
		width:      2,
	}
	rng := (&compact.RangeFactory{Hash: hashChildren}).NewEmptyRange(1)
	var findings []Finding
	err = m.st.commitBatch(func(tx *bolt.Tx) error {
		findings, _, err = m.auditBundle(tx, b, rng)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) != 1 || findings[0].Kind != KindPathRewritten {
		t.Fatalf("findings %+v, want one %s", findings, KindPathRewritten)
	}
}
