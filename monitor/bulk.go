package monitor

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"
)

// Bulk path checks. The rules that need a path's previous upload (a
// rewrite, and what a deletion marks) look it up in the uploads table as
// each entry is audited, and the table is most of the monitor's memory: 6
// bytes a slot, 80 MB at 10M paths, five times what Tessera's fsck needs
// to check the same log. An audit of many new entries (a first audit, or a
// monitor far behind) defers those rules instead: each entry's record is
// appended as usual, with a deferred-deletion record for a deletion, and
// a reference to it (the path's hash and the record's offset) goes into a
// buffer of bulkRun references that is sorted and written to a file of
// runs when full. At the end of the audit the runs are merged: references
// to the same path meet, the records of a path logged more than once are
// read back and the rules run over them in log order, and the table comes
// out of the merge in slot order, so it is written to its file
// sequentially and never held in memory. A path seen once, almost every
// path, costs its reference, not a lookup.
//
// Crash story. The state records, with every batch, that checks are
// deferred from the records' offset from on; the findings, the records
// that resolve deferred deletions and the saved table commit in one
// transaction that ends the bulk. The runs are not durable: a start with
// checks deferred rebuilds the references by reading the records (the
// file is the truth) and goes on deferring, so a crash anywhere costs
// rereading the records, never a finding.

// bulkRun is how many references are sorted in memory at a time (16 bytes
// each): 4 MiB.
const bulkRun = 1 << 18

// bulkFindings is how many findings the deferred checks hold before
// committing them.
var bulkFindings = 4096

// DefaultBulkAudit is Config.BulkAudit's default: at fewer new entries the
// table in memory is a few megabytes and checking as it goes is faster.
const DefaultBulkAudit = 1 << 18

// pathRef refers to one record of a path.
type pathRef struct {
	// key is the path's hash rotated by 32 bits: sorted by key, references
	// are in the order of their home slots (which the hash's low 32 bits
	// decide), and references to the same path are next to each other.
	key uint64
	// ref is the record's offset shifted left once, with the low bit set
	// for a deferred deletion (which never goes into the table).
	ref uint64
}

func (r pathRef) hash() uint64         { return bits.RotateLeft64(r.key, 32) }
func (r pathRef) off() int64           { return int64(r.ref >> 1) }
func (r pathRef) deferredDelete() bool { return r.ref&1 != 0 }

func comparePathRefs(a, b pathRef) int {
	if c := cmp.Compare(a.key, b.key); c != 0 {
		return c
	}
	return cmp.Compare(a.ref, b.ref)
}

// bulkPaths is the uploads' memory of deferred path checks.
type bulkPaths struct {
	from  int64     // records before from were checked as they were put
	cover int64     // records from cover on have their references in runs or buf
	buf   []pathRef // of capacity bulkRun, outside the Go heap (see allocRefs)
	free  func()
	runs  []int64 // run i holds references [runs[i-1], runs[i]) of the file
	file  *os.File
	bytes []byte // encoding scratch
}

func (u *uploads) runsPath() string { return strings.TrimSuffix(u.tablePath, ".table") + ".runs" }

// beginBulk defers path checks from the end of the records on. The table
// is dropped (its memory is what this saves) and the paths of the entries
// put from now on are hashed under a new seed.
func (u *uploads) beginBulk() error {
	if len(u.pending) > 0 {
		return errors.New("monitor state: deferring path checks with records not flushed")
	}
	if err := u.unsave(); err != nil {
		return err
	}
	return u.openBulk(u.flushed)
}

// openBulk sets up deferred checks from offset from, with no references
// yet: those of the records already in the file are read back at the end.
func (u *uploads) openBulk(from int64) error {
	f, err := os.OpenFile(u.runsPath(), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	u.slots.free()
	u.slots = slotTable{}
	u.seed = rand.Uint64()
	u.used = 0
	buf, free := allocRefs(bulkRun)
	u.bulk = &bulkPaths{from: from, cover: u.flushed, buf: buf, free: free, file: f}
	return nil
}

// endBulk forgets the runs once the checks committed.
func (u *uploads) endBulk() {
	if u.bulk == nil {
		return
	}
	u.bulk.close()
	os.Remove(u.runsPath())
	u.bulk = nil
}

func (b *bulkPaths) close() {
	b.free()
	b.buf = nil
	b.file.Close()
}

// reset drops every reference: the records up to size are read back at
// the end instead (after a batch failed and its records were cut off).
func (b *bulkPaths) reset(size int64) error {
	b.buf, b.runs, b.cover = b.buf[:0], b.runs[:0], size
	return b.file.Truncate(0)
}

// putDeferred appends a record for p (whose hash is h) without checking
// it: an upload, or a deletion of whatever p holds (rec.DeferredDelete,
// with the deletion's Index).
func (u *uploads) putDeferred(p string, h uint64, rec upload) error {
	off, err := u.appendPending(p, rec)
	if err != nil {
		return err
	}
	return u.bulk.add(h, off, rec.DeferredDelete)
}

func (b *bulkPaths) add(h uint64, off int64, deletion bool) error {
	ref := uint64(off) << 1
	if deletion {
		ref |= 1
	}
	b.buf = append(b.buf, pathRef{key: bits.RotateLeft64(h, 32), ref: ref})
	if len(b.buf) == cap(b.buf) {
		return b.spill()
	}
	return nil
}

// spill sorts the buffer and writes it as a run.
func (b *bulkPaths) spill() error {
	if len(b.buf) == 0 {
		return nil
	}
	sortRefs(b.buf)
	start := int64(0)
	if len(b.runs) > 0 {
		start = b.runs[len(b.runs)-1]
	}
	const chunk = 4096
	if cap(b.bytes) < 16*chunk {
		b.bytes = make([]byte, 16*chunk)
	}
	at := 16 * start
	for i := 0; i < len(b.buf); i += chunk {
		out := b.bytes[:0]
		for _, r := range b.buf[i:min(i+chunk, len(b.buf))] {
			out = binary.LittleEndian.AppendUint64(out, r.key)
			out = binary.LittleEndian.AppendUint64(out, r.ref)
		}
		if _, err := b.file.WriteAt(out, at); err != nil {
			return fmt.Errorf("monitor state: writing sorted paths: %w", err)
		}
		at += int64(len(out))
	}
	b.runs = append(b.runs, start+int64(len(b.buf)))
	b.buf = b.buf[:0]
	return nil
}

// sortRefs sorts refs by comparePathRefs, a few times faster than a
// comparison sort (it runs on the audit's serial path, once per bulkRun
// entries). The keys are hashes, evenly spread: an in-place pass places
// each reference in the bucket of the key's top 8 bits (American flag
// sort; 256 buckets keep the pass within the caches), then each bucket by
// the next 8 bits, down to buckets small enough for insertion sort (or,
// past the last byte, equal keys: pdqsort by offset, in case a log repeats
// one path a great many times).
func sortRefs(refs []pathRef) { sortRefsFrom(refs, 56) }

func sortRefsFrom(refs []pathRef, shift uint) {
	if shift > 56 {
		// Past the key's last byte: equal keys (a path logged many times),
		// to be ordered by offset, in any number.
		slices.SortFunc(refs, comparePathRefs)
		return
	}
	if len(refs) <= 24 {
		for i := 1; i < len(refs); i++ {
			for j := i; j > 0 && comparePathRefs(refs[j], refs[j-1]) < 0; j-- {
				refs[j], refs[j-1] = refs[j-1], refs[j]
			}
		}
		return
	}
	var start, next [257]int
	for _, r := range refs {
		start[r.key>>shift&0xff+1]++
	}
	for i := 1; i < len(start); i++ {
		start[i] += start[i-1]
	}
	copy(next[:], start[:256])
	for b := range 256 {
		for ; next[b] < start[b+1]; next[b]++ {
			// Follow the cycle from this slot until a reference of bucket b
			// comes back to it.
			v := refs[next[b]]
			for d := int(v.key >> shift & 0xff); d != b; d = int(v.key >> shift & 0xff) {
				refs[next[d]], v = v, refs[next[d]]
				next[d]++
			}
			refs[next[b]] = v
		}
	}
	for b := range 256 {
		sortRefsFrom(refs[start[b]:start[b+1]], shift-8) // after the last byte, shift-8 wraps past 56
	}
}

// checkDeferred runs the deferred rules over every path with a record from
// the bulk's start on, appends a record for each path whose latest entry
// is a deferred deletion of an upload, and builds the table in its file,
// mapped. It returns the findings, in log order, but for those it passed to
// commit on the way, bulkFindings at a time (a log rewriting paths by the
// million must not fill the monitor's memory with findings; recording a
// finding twice reports it once, so those may commit before the bulk
// ends). Until the state commits the rest and calls endBulk, checks stay
// deferred.
func (u *uploads) checkDeferred(progress io.Writer, commit func([]Finding) error) ([]Finding, error) {
	b := u.bulk
	if len(u.pending) > 0 {
		return nil, errors.New("monitor state: checking deferred paths with records not flushed")
	}
	start := time.Now()
	if b.cover > 0 {
		// References lost to a restart or a failed batch: read them back.
		fmt.Fprintf(progress, "reading back %d MB of path records...\n", b.cover>>20)
		err := u.scanTo(b.cover, func(off int64, p string, rec upload) error {
			return b.add(hashPath(u.seed, p), off, rec.DeferredDelete)
		})
		if err != nil {
			return nil, err
		}
	}
	if err := b.spill(); err != nil {
		return nil, err
	}
	total := int64(0)
	if len(b.runs) > 0 {
		total = b.runs[len(b.runs)-1]
	}
	fmt.Fprintf(progress, "checking the paths of %d records for rewrites...\n", total)
	n := max(int(total)*17/16, 1024) * 100 / maxLoad
	tw, err := newSlotWriter(u.tablePath, n)
	if err != nil {
		return nil, err
	}
	defer tw.f.Close()
	var findings []Finding
	paths := 0
	// The references of one key: the first is held until a second comes
	// (almost every path has one record, which is then never read); the
	// records of a key with more are read and replayed one at a time, so a
	// path logged a million times costs no more memory than one logged
	// twice.
	var first pathRef
	count := 0
	var histories []*pathHistory // one per path with the key (a 64-bit collision makes two)
	replay := func(r pathRef) error {
		p, rec, err := u.read(r.off())
		if err != nil {
			return err
		}
		var ph *pathHistory
		for _, h := range histories {
			if h.path == p {
				ph = h
			}
		}
		if ph == nil {
			ph = &pathHistory{path: p}
			histories = append(histories, ph)
		}
		if f, ok := ph.replay(r.off(), rec, b.from); ok {
			if findings = append(findings, f); len(findings) >= bulkFindings {
				slices.SortFunc(findings, compareFindings)
				if err := commit(findings); err != nil {
					return err
				}
				findings = findings[:0]
			}
		}
		return nil
	}
	endKey := func() error {
		h := first.hash()
		defer func() { count, histories = 0, histories[:0] }()
		if count == 1 {
			if first.deferredDelete() {
				return nil // a deletion of a path never uploaded
			}
			paths++
			return tw.add(h, first.off())
		}
		for _, ph := range histories {
			if !ph.known {
				continue
			}
			off := ph.off
			if off < 0 {
				// The latest entry deleted the upload before it: record that,
				// as checking it as it came would have.
				var err error
				if off, err = u.appendPending(ph.path, ph.latest); err != nil {
					return err
				}
			}
			paths++
			if err := tw.add(h, off); err != nil {
				return err
			}
		}
		return nil
	}
	merge, err := newRefMerger(b.file, b.runs)
	if err != nil {
		return nil, err
	}
	for {
		r, ok, err := merge.next()
		if err != nil {
			return nil, err
		}
		if count > 0 && (!ok || r.key != first.key) {
			if err := endKey(); err != nil {
				return nil, err
			}
		}
		if !ok {
			break
		}
		switch count {
		case 0:
			first = r
		case 1:
			if err := replay(first); err != nil {
				return nil, err
			}
			fallthrough
		default:
			if err := replay(r); err != nil {
				return nil, err
			}
		}
		count++
	}
	if u.slots, err = tw.finish(); err != nil {
		return nil, err
	}
	u.used = paths
	slices.SortFunc(findings, compareFindings)
	fmt.Fprintf(progress, "checked %d paths in %s\n", paths, time.Since(start).Round(time.Millisecond))
	return findings, nil
}

// compareFindings orders entry findings by index.
func compareFindings(a, b Finding) int { return cmp.Compare(*a.Index, *b.Index) }

// pathHistory is what the deferred rules know of one path as its records
// are replayed in log order (records before from were checked when they
// were put): its latest upload, with the offset of the record that says
// it, or -1 if none does (a deferred deletion marked it deleted).
type pathHistory struct {
	path   string
	latest upload
	off    int64
	known  bool // the path has an upload
}

// replay applies the record at off, returning a finding if it is one.
func (ph *pathHistory) replay(off int64, rec upload, from int64) (Finding, bool) {
	var f Finding
	found := false
	switch {
	case rec.DeferredDelete:
		// A deferred deletion before from was resolved, by a record after
		// it, when its own bulk ended.
		if off >= from && ph.known && !ph.latest.Deleted {
			ph.latest.Deleted, ph.latest.DeletedAt, ph.off = true, rec.Index, -1
		}
		return f, false
	case off >= from:
		f, found = uploadFinding(rec.Index, ph.path, ph.known, ph.latest, rec)
	}
	ph.latest, ph.off, ph.known = rec, off, true
	return f, found
}

// refMerger merges the sorted runs of references in a file: a heap of
// runs ordered by their next reference, each run read 32 KiB at a time
// and decoded in place (the merge of 10M references is the serial end of
// a first audit, so it is kept lean).
type refMerger struct{ heap []*runReader }

type runReader struct {
	f        *os.File
	at, end  int64 // what is left of the run in the file
	buf      []byte
	pos      int
	key, ref uint64 // the run's next reference
}

func newRefMerger(f *os.File, runs []int64) (*refMerger, error) {
	m := &refMerger{}
	start := int64(0)
	for _, end := range runs {
		r := &runReader{f: f, at: 16 * start, end: 16 * end, buf: make([]byte, 0, 32<<10)}
		if ok, err := r.advance(); err != nil {
			return nil, err
		} else if ok {
			m.heap = append(m.heap, r)
		}
		start = end
	}
	for i := len(m.heap)/2 - 1; i >= 0; i-- {
		m.down(i)
	}
	return m, nil
}

// advance moves to the run's next reference, or says there is none.
func (r *runReader) advance() (bool, error) {
	if r.pos == len(r.buf) {
		if r.at == r.end {
			return false, nil
		}
		r.buf = r.buf[:min(int64(cap(r.buf)), r.end-r.at)]
		if _, err := r.f.ReadAt(r.buf, r.at); err != nil {
			return false, fmt.Errorf("monitor state: reading sorted paths: %w", err)
		}
		r.at += int64(len(r.buf))
		r.pos = 0
	}
	r.key = binary.LittleEndian.Uint64(r.buf[r.pos:])
	r.ref = binary.LittleEndian.Uint64(r.buf[r.pos+8:])
	r.pos += 16
	return true, nil
}

func (a *runReader) before(b *runReader) bool {
	return a.key < b.key || a.key == b.key && a.ref < b.ref
}

func (m *refMerger) down(i int) {
	h := m.heap
	for {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if c+1 < len(h) && h[c+1].before(h[c]) {
			c++
		}
		if !h[c].before(h[i]) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// next returns the smallest reference not returned yet.
func (m *refMerger) next() (pathRef, bool, error) {
	if len(m.heap) == 0 {
		return pathRef{}, false, nil
	}
	top := m.heap[0]
	r := pathRef{key: top.key, ref: top.ref}
	ok, err := top.advance()
	if err != nil {
		return pathRef{}, false, err
	}
	if !ok {
		m.heap[0] = m.heap[len(m.heap)-1]
		m.heap = m.heap[:len(m.heap)-1]
	}
	m.down(0)
	return r, true, nil
}

// slotWriter writes a table file slot by slot, given the entries in the
// order of their home slots: linear probing puts each at its home or right
// after the one before, so the table is written front to back. Entries
// pushed past the last slot wrap around to the front; they are placed
// once the file is mapped.
type slotWriter struct {
	f        *os.File
	buf      []byte // slots from slot written on, not written yet
	written  int
	n, next  int
	overflow [][2]uint64 // hash, slot value
}

func newSlotWriter(path string, n int) (*slotWriter, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	return &slotWriter{f: f, buf: make([]byte, 0, 6*(64<<10)), n: n}, nil
}

// advance writes empty slots up to slot, or leaves room for them.
func (sw *slotWriter) advance(slot int) error {
	for sw.next < slot {
		if len(sw.buf) == cap(sw.buf) {
			if err := sw.flush(); err != nil {
				return err
			}
		}
		k := min(slot-sw.next, (cap(sw.buf)-len(sw.buf))/6)
		sw.buf = append(sw.buf, make([]byte, 6*k)...) // appending zeros does not allocate
		sw.next += k
	}
	return nil
}

func (sw *slotWriter) flush() error {
	_, err := sw.f.WriteAt(sw.buf, 6*int64(sw.written))
	sw.written += len(sw.buf) / 6
	sw.buf = sw.buf[:0]
	return err
}

func (sw *slotWriter) add(h uint64, off int64) error {
	v := fingerprint(h)<<slotOffsetBits | uint64(off/recordAlign)
	if err := sw.advance(homeSlot(h, sw.n)); err != nil {
		return err
	}
	if sw.next == sw.n {
		sw.overflow = append(sw.overflow, [2]uint64{h, v})
		return nil
	}
	if len(sw.buf) == cap(sw.buf) {
		if err := sw.flush(); err != nil {
			return err
		}
	}
	sw.buf = sw.buf[:len(sw.buf)+6]
	putSlot(sw.buf[len(sw.buf)-6:], v)
	sw.next++
	return nil
}

// finish writes the rest of the table, maps it and places the entries
// that wrapped around.
func (sw *slotWriter) finish() (slotTable, error) {
	if err := sw.advance(sw.n); err != nil {
		return slotTable{}, err
	}
	sw.buf = append(sw.buf, 0, 0) // the table's last 2 bytes
	if err := sw.flush(); err != nil {
		return slotTable{}, err
	}
	t, err := mapSlots(sw.f, sw.n)
	if err != nil {
		return slotTable{}, err
	}
	for _, o := range sw.overflow {
		i := homeSlot(o[0], sw.n)
		for t.get(i) != 0 {
			if i++; i == sw.n {
				i = 0
			}
		}
		t.set(i, o[1])
	}
	return t, nil
}

// rewriteFinding is the finding for path p logged at idx with other
// content (now) than its upload before (prev).
// rewriteFinding is security: the log refuses another content at a path
// PAUSE never lets change, so one logged is the log breaking its rule, and
// clients would accept the rewritten file as logged.
func rewriteFinding(idx uint64, p string, prev, now upload) Finding {
	f := entryFinding(KindPathRewritten, idx, p, "%s logged again with other content at index %d (first at %d%s: sha256 %x, now %x); PAUSE never allows this, and the log refuses it: clients would accept the new content as logged",
		p, idx, prev.Index, deletedAt(prev), prev.SHA256[:], now.SHA256[:])
	f.Security = true
	return f
}

// uploadAfterDeleteFinding is the finding for path p's upload prev, deleted,
// logged again with the same content at idx. Security like a rewrite:
// PAUSE never lets a deleted file's name be uploaded again, and the log
// answers an identical leaf anywhere in a path's history as a duplicate, so
// one logged is the log breaking its rule (a writer that logged a claimed
// upload after another writer logged its delete); downstream the path reads
// as present again though its author deleted it.
func uploadAfterDeleteFinding(idx uint64, p string, prev upload) Finding {
	f := entryFinding(KindUploadAfterDelete, idx, p, "%s logged again at index %d with the same content as its upload at %d%s (sha256 %x); PAUSE never lets a deleted file be uploaded again, and the log refuses a repeated upload: the path now reads as present though it was deleted",
		p, idx, prev.Index, deletedAt(prev), prev.SHA256[:])
	f.Security = true
	return f
}

// deletedAt says, for a finding's text, where upload u was deleted.
func deletedAt(u upload) string {
	switch {
	case !u.Deleted:
		return ""
	case u.DeletedAt == 0: // a record from before deletions kept their index
		return ", deleted later"
	}
	return fmt.Sprintf(", deleted at %d", u.DeletedAt)
}
