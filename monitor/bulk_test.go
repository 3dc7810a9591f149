package monitor

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/transparency-dev/tessera/api/layout"
	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/client"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// syncWith runs one round with BulkAudit bulk and returns what it found;
// stop, if not nil, is called every millisecond during the round until it
// returns true, and then the round is canceled.
func syncWith(t *testing.T, logURL, vkey, state string, bulk int, stop func(*Monitor) bool) ([]Finding, error) {
	t.Helper()
	p, err := client.ParsePolicy(fmt.Appendf(nil, "log %s %s\nquorum none\n", vkey, logURL))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Policy: p, StateDir: state, Logger: quiet, BulkAudit: bulk})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if stop != nil {
		done := make(chan struct{})
		defer func() { <-done }()
		go func() {
			defer close(done)
			for ctx.Err() == nil && !stop(m) {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
	}
	serr := m.Sync(ctx)
	cancel()
	fs, err := m.Deliver(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return fs, serr
}

// latestUploads is every path's latest record in the state in dir.
func latestUploads(t *testing.T, dir string) map[string]upload {
	t.Helper()
	st, err := openState(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	got := map[string]upload{}
	err = st.uploads.each(func(p string, rec upload) error {
		got[p] = rec
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func mkDeletion(t *testing.T, path string, when time.Time) []byte {
	t.Helper()
	b, err := (&entry.Entry{Kind: entry.Delete, Path: path, Time: when.UTC().Truncate(time.Second)}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBulkAuditFindsWhatChecksAsTheyComeFind: path checks deferred to the
// end of an audit (bulkPaths) report the same findings, with the same
// words, and leave the same latest record of every path, as checks made as
// each entry comes; over rewrites, identical re-uploads, deletions of
// paths never uploaded, re-uploads after a deletion, files PAUSE lets
// change, and a path whose latest entry is a deletion; in a first audit
// and in a second one over a state that already holds paths (which reads
// their records back), in all four combinations.
func TestBulkAuditFindsWhatChecksAsTheyComeFind(t *testing.T) {
	skey, vkey, _ := note.GenerateKey(rand.Reader, tlog.DefaultOrigin)
	signer, _ := note.NewSigner(skey)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	i := 0
	up := func(name, content string) []byte {
		i++
		return mkUpload(t, "authors/id/A/AB/ABC/"+name, "ABC", content, t0.Add(time.Duration(i)*time.Minute), nil)
	}
	del := func(name string) []byte {
		i++
		return mkDeletion(t, "authors/id/A/AB/ABC/"+name, t0.Add(time.Duration(i)*time.Minute))
	}
	fill := func(from, n int) (out [][]byte) {
		for k := from; k < from+n; k++ {
			out = append(out, up(fmt.Sprintf("Fill-%d.tar.gz", k), fmt.Sprint(k)))
		}
		return out
	}
	first := [][]byte{
		up("A.tar.gz", "a1"), up("B.tar.gz", "b1"), up("A.tar.gz", "a1"), up("A.tar.gz", "a2"), // A rewritten
		del("C.tar.gz"),                                                              // never uploaded
		del("B.tar.gz"), up("B.tar.gz", "b1"), del("B.tar.gz"), up("B.tar.gz", "b2"), // the deleted upload stays on record: rewritten
		up("README", "r1"), up("README", "r2"), // PAUSE lets it change
		del("D.tar.gz"), up("D.tar.gz", "d1"),
		up("E.tar.gz", "e1"), del("E.tar.gz"), // ends deleted
		up("F.tar.gz", "f1"), del("F.tar.gz"), del("F.tar.gz"),
	}
	for k := range 40 { // one path rewritten over and over
		first = append(first, up("Flood.tar.gz", fmt.Sprint("flood", k)))
	}
	first = append(first, fill(0, 300)...)
	second := [][]byte{
		up("E.tar.gz", "e2"), // rewrites a deleted upload
		up("F.tar.gz", "f1"), up("G.tar.gz", "g1"), up("A.tar.gz", "a2"), up("A.tar.gz", "a3"),
		up("C.tar.gz", "c1"), del("D.tar.gz"), up("D.tar.gz", "d2"),
		up("Fill-7.tar.gz", "other"), del("Fill-8.tar.gz"),
	}
	second = append(second, fill(300, 700)...)
	dir := t.TempDir()
	logURL, _, _, _ := craftedLog(t, first, signer, dir)

	// The deferred checks commit findings a few at a time on the way.
	defer func(n int) { bulkFindings = n }(bulkFindings)
	bulkFindings = 5
	modes := [][2]int{{-1, -1}, {1, 1}, {1, -1}, {-1, 1}}
	states := make([]string, len(modes))
	rounds := make([][2][]Finding, len(modes))
	for k, mode := range modes {
		states[k] = t.TempDir()
		fs, err := syncWith(t, logURL, vkey, states[k], mode[0], nil)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(fs, compareFindings)
		rounds[k][0] = fs
	}
	appendLeaves(t, dir, signer, second)
	for k, mode := range modes {
		fs, err := syncWith(t, logURL, vkey, states[k], mode[1], nil)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(fs, compareFindings)
		rounds[k][1] = fs
	}
	kinds := func(fs []Finding) (out []string) {
		for _, f := range fs {
			out = append(out, fmt.Sprintf("%s:%d", f.Kind, *f.Index))
		}
		return out
	}
	// What checks as they come find, worked out by hand.
	// B (uploaded at 1, deleted at 5) and F (15, deleted at 16 and 17) are
	// logged again with their content: uploads after their delete.
	want := [2][]string{{"path-rewritten:3", "upload-after-delete:6", "path-rewritten:8"}, {"path-rewritten:358", "upload-after-delete:359", "path-rewritten:362", "path-rewritten:365", "path-rewritten:366"}}
	for k := 19; k < 58; k++ {
		want[0] = append(want[0], fmt.Sprintf("path-rewritten:%d", k))
	}
	for r := range 2 {
		if diff := cmp.Diff(want[r], kinds(rounds[0][r])); diff != "" {
			t.Errorf("round %d checked as it came (-want +got):\n%s", r+1, diff)
		}
	}
	// The repeats name their delete, in every mode (the words are compared
	// below): F's was recorded in round 1, by whichever check.
	for r, words := range map[int][2]string{0: {"upload-after-delete", "at index 6 with the same content as its upload at 1, deleted at 5 "}, 1: {"upload-after-delete", "at index 359 with the same content as its upload at 15, deleted at 16 "}} {
		found := false
		for _, f := range rounds[0][r] {
			if f.Kind == words[0] {
				found = true
				if !strings.Contains(f.Message, words[1]) || !f.Security {
					t.Errorf("round %d: %s (security %v), want it to say %q", r+1, f.Message, f.Security, words[1])
				}
			}
		}
		if !found {
			t.Errorf("round %d: no %s finding", r+1, words[0])
		}
	}
	ignoreSeen := cmpopts.IgnoreFields(Finding{}, "Seen")
	reference := latestUploads(t, states[0])
	if len(reference) != 1000+9 {
		t.Errorf("%d paths on record, want 1,009", len(reference))
	}
	for k := 1; k < len(modes); k++ {
		for r := range 2 {
			if diff := cmp.Diff(rounds[0][r], rounds[k][r], ignoreSeen); diff != "" {
				t.Errorf("bulk audit %v, round %d: findings differ from checks as they come (-want +got):\n%s", modes[k], r+1, diff)
			}
		}
		if diff := cmp.Diff(reference, latestUploads(t, states[k])); diff != "" {
			t.Errorf("bulk audit %v: latest records differ (-want +got):\n%s", modes[k], diff)
		}
	}
}

// TestBulkAuditResumes: a bulk audit stopped midway (its references to
// paths lost with the process) resumes from the state, reads back the
// records it had, and still finds every rewrite, including those whose
// first upload came before the stop and the rewrite after.
func TestBulkAuditResumes(t *testing.T) {
	skey, vkey, _ := note.GenerateKey(rand.Reader, tlog.DefaultOrigin)
	signer, _ := note.NewSigner(skey)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 50_000
	leaves := make([][]byte, n)
	want := map[string]bool{}
	for i := range leaves {
		k, content := i, "first"
		if i%1000 == 999 {
			k, content = i-990, "rewritten" // a path of 990 entries before
			want[fmt.Sprintf("%s:%d", KindPathRewritten, i)] = true
		}
		leaves[i] = mkUpload(t, fmt.Sprintf("authors/id/S/SY/SYNTH/Dist-%d-1.0.tar.gz", k), "SYNTH", fmt.Sprint(content, k), t0.Add(time.Duration(i)*time.Second), nil)
	}
	srv := newGatedLog(t, signer, leaves, 0)
	state := t.TempDir()
	got := map[string]bool{}
	stops := 0
	// Stopped after the first batch committed, then after the next, then
	// to the end: each round's audit waits at the gate (the bundle after
	// the batch it is to commit) until it is stopped.
	for k, at := range []uint64{1, 2*batchBundles*layout.EntryBundleWidth - 1, n + 1} {
		srv.gate.Store(uint64(k+1) * batchBundles)
		if at > n {
			srv.gate.Store(math.MaxUint64)
		}
		fs, err := syncWith(t, srv.URL, vkey, state, 1000, func(m *Monitor) bool {
			a, _ := m.Audited()
			return a >= at
		})
		for _, f := range fs {
			if got[f.ID] {
				t.Errorf("%s reported twice", f.ID)
			}
			got[f.ID] = true
		}
		if err != nil {
			stops++
			continue
		}
		break
	}
	if stops != 2 {
		t.Fatalf("%d audits stopped midway, want 2", stops)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings after %d stops (-want +got):\n%s", stops, diff)
	}
	if m, _ := filepath.Glob(filepath.Join(state, "*.runs")); len(m) != 0 {
		t.Errorf("runs left after the bulk ended: %v", m)
	}
	// The table the bulk wrote serves the next rounds: mapped, every path.
	st, err := openState(state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	if !st.uploads.saved || st.uploads.used != n-n/1000 {
		t.Errorf("after the bulk: table saved %v with %d paths, want saved with %d", st.uploads.saved, st.uploads.used, n-n/1000)
	}
	if rec, ok, err := st.uploads.get("authors/id/S/SY/SYNTH/Dist-9-1.0.tar.gz"); !ok || err != nil || rec.Index != 999 {
		t.Errorf("Dist-9's latest record: %+v %v %v, want the rewrite at 999", rec, ok, err)
	}
}

// TestSlotWriterWraps: entries written in home order land where linear
// probing looks for them, those pushed past the last slot included (they
// wrap to the front, after the slots taken there).
func TestSlotWriterWraps(t *testing.T) {
	const n = 8
	homeOf := func(slot int, salt uint64) uint64 { // a hash whose home is slot
		return salt<<48 | uint64(slot)<<32/n + 1
	}
	hashes := []uint64{homeOf(0, 1), homeOf(0, 2), homeOf(6, 3), homeOf(7, 4), homeOf(7, 5), homeOf(7, 6), homeOf(7, 7)}
	sw, err := newSlotWriter(filepath.Join(t.TempDir(), "table"), n)
	if err != nil {
		t.Fatal(err)
	}
	defer sw.f.Close()
	for k, h := range hashes {
		if homeSlot(h, n) != int(uint32(h)>>29) {
			t.Fatalf("hash %x homes at %d", h, homeSlot(h, n))
		}
		if err := sw.add(h, int64(8*(k+1))); err != nil {
			t.Fatal(err)
		}
	}
	table, err := sw.finish()
	if err != nil {
		t.Fatal(err)
	}
	defer table.free()
	u := &uploads{slots: table}
	for k, h := range hashes {
		want := fingerprint(h)<<slotOffsetBits | uint64(k+1)
		i := u.home(h)
		for ; table.get(i) != want; i = u.next(i) {
			if table.get(i) == 0 {
				t.Fatalf("entry %d (home %d) not found before an empty slot", k, u.home(h))
			}
		}
	}
	if got := table.get(5); got != 0 {
		t.Errorf("slot 5 holds %x: the wrapped entries should take 2, 3 and 4 only", got)
	}
}

// TestSortRefs: sortRefs orders references as a comparison sort does,
// equal keys (a path logged more than once) by offset, skewed keys too.
func TestSortRefs(t *testing.T) {
	for _, n := range []int{0, 1, 2, 100, 70_000} {
		for _, skew := range []uint64{0, 1<<56 - 1} {
			refs := make([]pathRef, n)
			for i := range refs {
				k := mrand.Uint64()
				if i%7 == 3 && i > 0 {
					k = refs[i/2].key // logged again
				}
				refs[i] = pathRef{key: k &^ skew, ref: mrand.Uint64N(1 << 40)}
			}
			if skew != 0 && n > 0 {
				// One path logged many times, its records out of order.
				for i := range refs[:n/2] {
					refs[i].key = refs[0].key
				}
			}
			want := slices.Clone(refs)
			slices.SortFunc(want, comparePathRefs)
			sortRefs(refs)
			if !slices.Equal(refs, want) {
				t.Fatalf("%d references (mask %x): not sorted as a comparison sort sorts them", n, ^skew)
			}
		}
	}
}

func BenchmarkSortRefs(b *testing.B) {
	refs := make([]pathRef, bulkRun)
	for i := range refs {
		refs[i] = pathRef{key: mrand.Uint64(), ref: uint64(i)}
	}
	work := make([]pathRef, len(refs))
	b.Run("radix", func(b *testing.B) {
		for b.Loop() {
			copy(work, refs)
			sortRefs(work)
		}
	})
	b.Run("pdqsort", func(b *testing.B) {
		for b.Loop() {
			copy(work, refs)
			slices.SortFunc(work, comparePathRefs)
		}
	})
}

// TestBulkAuditFinishesAfterFailing: when the checks at the end of a bulk
// audit fail (here by a hook; a full disk, say), the round fails with every
// entry audited and the checks still deferred, and the next round, with
// nothing left to audit, runs them: every rewrite is reported, once.
func TestBulkAuditFinishesAfterFailing(t *testing.T) {
	skey, vkey, _ := note.GenerateKey(rand.Reader, tlog.DefaultOrigin)
	signer, _ := note.NewSigner(skey)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var leaves [][]byte
	for i := range 2000 {
		content := "first"
		if i >= 1000 {
			content = "rewritten"
		}
		leaves = append(leaves, mkUpload(t, fmt.Sprintf("authors/id/S/SY/SYNTH/Dist-%d-1.0.tar.gz", i%1000), "SYNTH", content, t0.Add(time.Duration(i)*time.Second), nil))
	}
	logURL, _, _, _ := craftedLog(t, leaves, signer, "")
	state := t.TempDir()
	defer func() { testHookFinishBulk = nil }()
	testHookFinishBulk = func() error { return errors.New("disk full") }
	fs, err := syncWith(t, logURL, vkey, state, 1, nil)
	if err == nil || !strings.Contains(err.Error(), "disk full") || len(fs) != 0 {
		t.Fatalf("round with failing checks: %v, %d findings; want the failure and none", err, len(fs))
	}
	if from := func() int64 {
		st, err := openState(state)
		if err != nil {
			t.Fatal(err)
		}
		defer st.close()
		if n, _, _ := st.position(); n != uint64(len(leaves)) {
			t.Fatalf("audited %d of %d entries", n, len(leaves))
		}
		return st.bulkFrom()
	}(); from != 0 {
		t.Fatalf("checks deferred from %d after the failure, want 0", from)
	}
	testHookFinishBulk = nil
	fs, err = syncWith(t, logURL, vkey, state, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1000 {
		t.Errorf("%d findings after the checks ran, want the 1,000 rewrites", len(fs))
	}
	if fs, _ := syncWith(t, logURL, vkey, state, 1, nil); len(fs) != 0 {
		t.Errorf("a third round reported %d findings again", len(fs))
	}
}

// TestBulkAuditHashCollision: two paths with the same 64-bit hash (forced
// here; with a seeded hash about once in 10^19 pairs) keep separate
// histories in the deferred checks: a rewrite of one is found, the other's
// different content is no rewrite, and the table holds both.
func TestBulkAuditHashCollision(t *testing.T) {
	u, err := openUploads(filepath.Join(t.TempDir(), "uploads"), 0, 0, nil, nil, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer u.close()
	if err := u.beginBulk(); err != nil {
		t.Fatal(err)
	}
	a, b := testPath(1), testPath(2)
	h := hashPath(u.seed, a) // b is put under a's hash too
	for _, put := range []struct {
		p   string
		rec upload
	}{{a, testUpload(0)}, {b, testUpload(1)}, {a, testUpload(0)}, {b, testUpload(1)}, {a, testUpload(2)}} {
		if err := u.putDeferred(put.p, h, put.rec); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := u.flush(); err != nil {
		t.Fatal(err)
	}
	fs, err := u.checkDeferred(io.Discard, func([]Finding) error { return errors.New("no findings expected on the way") })
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].Kind != KindPathRewritten || fs[0].Path != a || *fs[0].Index != 2 {
		t.Fatalf("findings %+v, want one rewrite of %s at index 2", fs, a)
	}
	if u.used != 2 {
		t.Errorf("%d paths in the table, want 2", u.used)
	}
	got := map[string]upload{}
	for i := u.home(h); u.slots.get(i) != 0; i = u.next(i) {
		p, rec, err := u.read(int64(u.slots.get(i)&slotOffsetMask) * recordAlign)
		if err != nil {
			t.Fatal(err)
		}
		got[p] = rec
	}
	if diff := cmp.Diff(map[string]upload{a: testUpload(2), b: testUpload(1)}, got); diff != "" {
		t.Errorf("the table from the colliding hash's home (-want +got):\n%s", diff)
	}
}
