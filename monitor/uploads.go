package monitor

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"

	"github.com/cespare/xxhash/v2"
)

// uploads is what the rules remember of every path: its latest upload
// (index, size, sha256) and whether its latest entry is a deletion. It is
// the only per-entry state of the monitor, so it is kept out of the bbolt
// B-tree, which rewrote its pages on every batch (the state wrote 2.5× the
// log's size on a first audit and its mmap was most of the monitor's
// memory):
//
//   - an append-only file of records, the latest record of a path winning;
//     the bbolt state holds the file's committed length in the same
//     transaction as the audit position, so a crash loses only records of
//     the batch that did not commit, and opening truncates them away;
//   - a table (linear probing, at most 80% full) of 6-byte slots: a 16-bit
//     fingerprint of the path's hash and the offset of the path's latest
//     record in 8-byte units (records start 8-byte aligned, so the file may
//     reach 32 GiB). A lookup reads a record only when a fingerprint
//     matches, which for a path not seen before is about once in 5,000
//     lookups.
//
// The table is saved to a file (the records file's name + ".table") when
// the monitor stops cleanly, and the next start maps that file instead of
// rebuilding the table from every record: on a log of 10M entries the
// rebuild read a gigabyte and took seconds before a round of a thousand
// new entries, which now pages in only the slots it touches (and writes
// them back to the file). A table being built is anonymous memory, written
// to the file once when saved. The state saves a table only when the table
// matches the committed records exactly, after syncing it, with its seed,
// size and a CRC-32C of the whole file, which opening checks (reading the
// file, not the mapping). Before the first change to a saved table the
// state forgets it (one transaction), so a crash anywhere later leaves no
// saved table, and the next start rebuilds it from the records as before.
// A table that does not check is rebuilt, never trusted: the records are
// the truth, the table only finds them.
type uploads struct {
	f         *os.File
	tablePath string
	seed      uint64 // of the table's hash, random per table
	slots     slotTable
	used      int
	// saved says the state holds a savedTable for the table as it is;
	// forget deletes it, durably, before the table first changes.
	saved   bool
	forget  func() error
	flushed int64  // bytes of the file that are written and synced
	pending []byte // records appended since, at offsets flushed...
	scratch []byte
	// legacy counts the records written before records carried a
	// checksum; openState rewrites a file that has any.
	legacy int
	sink   uint64 // what prefetch read
	// bulk is set while path checks are deferred (see bulkPaths); the
	// table is empty then.
	bulk *bulkPaths
}

// upload is what the rules remember of a path's latest upload.
type upload struct {
	Index   uint64
	Size    uint64
	SHA256  [32]byte
	Deleted bool // the path's latest entry is a deletion (of this upload)
	// DeletedAt is the index of that deletion, kept so that an upload of
	// the path after it (upload-after-delete) can name it; 0 when Deleted
	// is not set or the record predates it (a deletion is never at index
	// 0: it deletes an upload logged before it).
	DeletedAt uint64
	// DeferredDelete marks the record of a deletion whose check was
	// deferred: it says nothing of the upload it deleted (see bulkPaths),
	// only Index is set, and it is never a path's latest record.
	DeferredDelete bool
}

const (
	slotOffsetBits = 32
	slotOffsetMask = 1<<slotOffsetBits - 1
	// recordAlign is the alignment of records in the file.
	recordAlign = 8
	// maxFile is the largest offset a slot can point at.
	maxFile = slotOffsetMask * recordAlign
	// maxLoad is the table's fill limit, in percent.
	maxLoad = 80
	// maxRecord bounds one record: a flag, four uvarints, a hash, a
	// path of at most entry.MaxSize bytes and a checksum.
	maxRecord = 1 + 4*binary.MaxVarintLen64 + 32 + 8192 + 4
)

var errChecksDeferred = errors.New("monitor state: the audit that checks paths in bulk has not finished: run a round (cpantlog-monitor --once) to finish it first")

var errUploadsCorrupt = errors.New("monitor state: the uploads file is damaged, so the monitor would forget what it saw of some paths; it will not start on it. Rebuild the state: stop the monitor, move the --state directory away and start it again (it audits the whole log from scratch, re-reporting nothing it delivered before only if you keep the old directory's findings)")

// savedTable is what the state records of a table file it may map
// instead of rebuilding: the records file's length and paths it covers, its
// slots, its hash seed and the CRC-32C of the whole table file.
type savedTable struct {
	Records int64
	Paths   int
	Slots   int
	Seed    uint64
	CRC     uint32
}

// openUploads opens the record file at path, drops any records beyond
// committed (a batch that never committed) and maps the saved table if it
// covers exactly the committed records and checks, or else builds the
// table for the paths the file holds. forget (nil: nothing to forget)
// deletes the state's saved table; it is called before the table changes.
// With bulkFrom ≥ 0, path checks are deferred from that offset on, and
// there is no table.
func openUploads(path string, committed int64, paths int, saved *savedTable, forget func() error, bulkFrom int64) (*uploads, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if fi.Size() < committed {
		f.Close()
		return nil, fmt.Errorf("%w: %d bytes, the state committed %d", errUploadsCorrupt, fi.Size(), committed)
	}
	if forget == nil {
		forget = func() error { return nil }
	}
	u := &uploads{f: f, tablePath: path + ".table", forget: forget, saved: saved != nil}
	if bulkFrom >= 0 {
		// With checks deferred, reload only cuts the file to committed and
		// leaves the references to be read back.
		if err := u.openBulk(bulkFrom); err != nil {
			f.Close()
			return nil, err
		}
		if err := u.reload(committed, paths); err != nil {
			u.close()
			return nil, err
		}
		return u, nil
	}
	if saved != nil && saved.Records == committed && fi.Size() == committed && saved.Paths == paths {
		if slots, err := openSlots(u.tablePath, saved.Slots, saved.CRC); err == nil {
			u.slots = slots
			u.seed, u.used, u.flushed = saved.Seed, saved.Paths, committed
			return u, nil
		}
		// A table that does not check is rebuilt from the records.
	}
	if err := u.reload(committed, paths); err != nil {
		u.close()
		return nil, err
	}
	return u, nil
}

func (u *uploads) close() error {
	u.slots.free()
	u.slots = slotTable{}
	if u.bulk != nil {
		u.bulk.close()
	}
	return u.f.Close()
}

// unsave makes sure the state holds no saved table before the table
// changes.
func (u *uploads) unsave() error {
	if !u.saved {
		return nil
	}
	if err := u.forget(); err != nil {
		return fmt.Errorf("monitor state: forgetting the saved table: %w", err)
	}
	u.saved = false
	return nil
}

// save makes the table durable in its file and returns what the state
// records to map it again, or nil if the records it points at are not all
// committed.
func (u *uploads) save() (*savedTable, error) {
	if len(u.pending) > 0 {
		return nil, nil
	}
	crc, err := u.slots.sync(u.tablePath)
	if err != nil {
		return nil, err
	}
	return &savedTable{Records: u.flushed, Paths: u.used, Slots: u.slots.len(), Seed: u.seed, CRC: crc}, nil
}

// reload truncates the file to size and rebuilds a table for at least n
// paths from it.
func (u *uploads) reload(size int64, n int) error {
	if err := u.f.Truncate(size); err != nil {
		return err
	}
	u.flushed, u.pending = size, u.pending[:0]
	if u.bulk != nil {
		u.slots.free()
		u.slots = slotTable{}
		return u.bulk.reset(size)
	}
	return u.rebuild(n)
}

// rebuild makes a new table with room for n paths and fills it from the
// file, with a larger table if the file holds more.
func (u *uploads) rebuild(n int) error {
	for n = max(n, 1024); ; n *= 2 {
		u.slots.free()
		u.slots = allocSlots(n * 100 / maxLoad)
		u.seed = rand.Uint64()
		u.used = 0
		full := errors.New("full")
		err := u.scan(func(off int64, p string, rec upload) error {
			if rec.DeferredDelete {
				return nil // never a path's latest record
			}
			if (u.used+1)*100 > u.slots.len()*maxLoad {
				return full
			}
			return u.insert(p, hashPath(u.seed, p), off)
		})
		if err != full {
			return err
		}
	}
}

// reserve makes room for n more paths without growing the table on the
// way, and for a sixteenth more: sized exactly, the table of a first audit
// would be full, and the next round, however small, would rebuild it.
func (u *uploads) reserve(n int) error {
	if (u.used+n)*100 <= u.slots.len()*maxLoad {
		return nil
	}
	return u.rebuild(max((u.used+n)*17/16, 2*u.used))
}

// hashPath is the table's hash of path p under seed: xxhash, seeded, so
// that paths crafted to collide (unseeded xxhash collisions can be
// constructed) collide only under the seed they were made for.
func hashPath(seed uint64, p string) uint64 {
	var d xxhash.Digest
	d.ResetWithSeed(seed)
	d.WriteString(p)
	return d.Sum64()
}

// get returns the latest record of path p.
func (u *uploads) get(p string) (upload, bool, error) {
	return u.getHashed(p, hashPath(u.seed, p))
}

// getHashed is get with p's hash under the table's seed.
func (u *uploads) getHashed(p string, h uint64) (upload, bool, error) {
	_, _, _, rec, ok, err := u.probe(p, h)
	return rec, ok, err
}

// find returns the offset and contents of p's latest record.
func (u *uploads) find(p string) (int64, upload, bool, error) {
	_, _, off, rec, ok, err := u.probe(p, hashPath(u.seed, p))
	return off, rec, ok, err
}

// prefetch reads the home slots of the paths hashed to hashes: the rules'
// first read of a path's slot is a cache miss (the table is far larger
// than the caches), and reading the slots of a bundle's paths in one loop
// ahead of the rules lets the processor wait for those misses together.
func (u *uploads) prefetch(hashes []uint64) {
	var sum uint64
	for _, h := range hashes {
		sum += u.slots.get(u.home(h))
	}
	u.sink += sum // kept, so that the reads are too
}

// probe walks p's slots from its home (p's hash is h): it returns the slot
// holding p, with its record, or the empty slot where p would go, and p's
// fingerprint.
func (u *uploads) probe(p string, h uint64) (slot int, fp uint64, off int64, rec upload, found bool, err error) {
	if u.bulk != nil {
		return 0, 0, 0, upload{}, false, errChecksDeferred
	}
	fp = fingerprint(h)
	for i := u.home(h); ; i = u.next(i) {
		s := u.slots.get(i)
		if s == 0 {
			return i, fp, 0, upload{}, false, nil
		}
		if s>>slotOffsetBits != fp {
			continue
		}
		off := int64(s&slotOffsetMask) * recordAlign
		rp, rec, err := u.read(off)
		if err != nil {
			return 0, 0, 0, upload{}, false, err
		}
		if rp == p {
			return i, fp, off, rec, true, nil
		}
	}
}

// put appends a record for p; it is durable once flush returns.
func (u *uploads) put(p string, rec upload) error {
	return u.putHashed(p, hashPath(u.seed, p), rec)
}

// putHashed is put with p's hash under the table's seed.
func (u *uploads) putHashed(p string, h uint64, rec upload) error {
	off, err := u.appendPending(p, rec)
	if err != nil {
		return err
	}
	if (u.used+1)*100 > u.slots.len()*maxLoad {
		if err := u.rebuild(2 * u.used); err != nil {
			return err
		}
		return nil // the rebuild read the new record too
	}
	return u.insert(p, h, off)
}

// appendPending appends a record for p to the pending records and returns
// its offset.
func (u *uploads) appendPending(p string, rec upload) (int64, error) {
	for (u.flushed+int64(len(u.pending)))%recordAlign != 0 {
		u.pending = append(u.pending, 0)
	}
	off := u.flushed + int64(len(u.pending))
	if off > maxFile {
		return 0, fmt.Errorf("monitor state: the uploads file reached %d bytes, its limit", off)
	}
	u.pending = appendRecord(u.pending, p, rec)
	return off, nil
}

// flush writes and syncs the records put since the last flush and returns
// the file's new length, for the state to commit.
func (u *uploads) flush() (int64, error) {
	if len(u.pending) == 0 {
		return u.flushed, nil
	}
	if _, err := u.f.WriteAt(u.pending, u.flushed); err != nil {
		return 0, err
	}
	if err := u.f.Sync(); err != nil {
		return 0, err
	}
	u.flushed += int64(len(u.pending))
	u.pending = u.pending[:0]
	return u.flushed, nil
}

// each calls fn with every path's latest record.
func (u *uploads) each(fn func(p string, rec upload) error) error {
	return u.scan(func(off int64, p string, rec upload) error {
		if latest, _, ok, err := u.find(p); err != nil || !ok || latest != off {
			return err // a later record of p wins (or this is a deferred deletion)
		}
		return fn(p, rec)
	})
}

// insert points the table at off for p (whose hash is h), replacing p's
// slot if it has one; the caller knows the table has room.
func (u *uploads) insert(p string, h uint64, off int64) error {
	slot, fp, _, _, found, err := u.probe(p, h)
	if err != nil {
		return err
	}
	if err := u.unsave(); err != nil {
		return err
	}
	if !found {
		u.used++
	}
	u.slots.set(slot, fp<<slotOffsetBits|uint64(off/recordAlign))
	return nil
}

// fingerprint is 16 bits of h, never 0 (0 marks an empty slot).
func fingerprint(h uint64) uint64 { return max(h>>48, 1) }

// home is h's first slot: the low 32 bits scaled to the table (the
// fingerprint uses the high bits).
func (u *uploads) home(h uint64) int { return homeSlot(h, u.slots.len()) }

// homeSlot is h's first slot in a table of n slots.
func homeSlot(h uint64, n int) int { return int(uint64(uint32(h)) * uint64(n) >> 32) }

func (u *uploads) next(i int) int {
	if i++; i == u.slots.len() {
		return 0
	}
	return i
}

// read decodes the record at off, from the pending buffer or the file.
func (u *uploads) read(off int64) (string, upload, error) {
	if off >= u.flushed {
		p, rec, _, err := decodeRecord(u.pending[off-u.flushed:])
		return p, rec, err
	}
	if cap(u.scratch) < 512 {
		u.scratch = make([]byte, 512)
	}
	for size := 512; ; size = maxRecord {
		b := u.scratch[:min(int64(size), u.flushed-off)]
		if _, err := u.f.ReadAt(b, off); err != nil {
			return "", upload{}, err
		}
		p, rec, _, err := decodeRecord(b)
		if err != nil && (size == maxRecord || !errors.Is(err, errShortRecord)) {
			return "", upload{}, fmt.Errorf("%w: at offset %d: %v", errUploadsCorrupt, off, err)
		}
		if err == nil {
			return p, rec, nil
		}
		u.scratch = make([]byte, maxRecord)
	}
}

// scan reads every record, flushed and pending, in order.
func (u *uploads) scan(fn func(off int64, p string, rec upload) error) error {
	if err := u.scanTo(u.flushed, fn); err != nil {
		return err
	}
	for off := u.flushed; off < u.flushed+int64(len(u.pending)); {
		off = align(off)
		p, rec, n, err := decodeRecord(u.pending[off-u.flushed:])
		if err != nil {
			return err
		}
		if err := fn(off, p, rec); err != nil {
			return err
		}
		off += int64(n)
	}
	return nil
}

// scanTo reads the flushed records before end, which is where one ends.
func (u *uploads) scanTo(end int64, fn func(off int64, p string, rec upload) error) error {
	r := bufio.NewReaderSize(io.NewSectionReader(u.f, 0, end), 1<<16)
	var off int64
	var firstLegacy bool
	u.legacy = 0
	for off < end {
		// The reader's buffer holds any record whole; it ends at end.
		b, err := r.Peek(min(maxRecord, int(end-off)))
		if err != nil {
			return err
		}
		p, rec, n, err := decodeRecord(b)
		if err != nil {
			return fmt.Errorf("%w: at offset %d: %v", errUploadsCorrupt, off, err)
		}
		// A file is written in one format: a rewrite converts a legacy
		// file whole, so a mix is damage (a flipped 0x80 bit).
		if legacy := b[0]&flagChecksum == 0; off == 0 {
			firstLegacy = legacy
		} else if legacy != firstLegacy {
			return fmt.Errorf("%w: at offset %d: records with and without checksums", errUploadsCorrupt, off)
		}
		if firstLegacy {
			u.legacy++
		}
		if err := fn(off, p, rec); err != nil {
			return err
		}
		next := min(align(off+int64(n)), end)
		if _, err := r.Discard(int(next - off)); err != nil {
			return err
		}
		off = next
	}
	return nil
}

// align rounds off up to where a record may start.
func align(off int64) int64 { return (off + recordAlign - 1) / recordAlign * recordAlign }

// slotTable is an array of 6-byte slots, each a 48-bit number.
type slotTable struct {
	b      []byte // 6 bytes a slot, and 2 more so that every slot reads as 8
	mapped bool   // b is the table's file, mapped shared
	unmap  func() // gives b back, if it is not on the heap
}

func (t slotTable) free() {
	if t.unmap != nil {
		t.unmap()
	}
}

func (t slotTable) len() int { return (len(t.b) - 2) / 6 }

// slotBytes is the size of a table of n slots.
func slotBytes(n int) int { return 6*n + 2 }

// sync makes the table durable in its file at path and returns the file's
// CRC-32C. A mapped table is its file: synced, then read back for the CRC
// (the file, not the mapping: a saved table's pages stay out of the
// process's memory until a lookup needs them). Any other table is written
// to the file whole.
func (t slotTable) sync(path string) (uint32, error) {
	if t.mapped {
		f, err := os.Open(path)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		if err := f.Sync(); err != nil {
			return 0, err
		}
		_, crc, err := fileCRC(f)
		return crc, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, err := f.Write(t.b); err != nil {
		return 0, err
	}
	return crc32.Checksum(t.b, castagnoli), f.Sync()
}

// openSlots maps the saved table file at path, of n slots, if its CRC-32C
// (read from the file, not the mapping) is crc.
func openSlots(path string, n int, crc uint32) (slotTable, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return slotTable{}, err
	}
	defer f.Close()
	if err := checkSlotsFile(f, n, crc); err != nil {
		return slotTable{}, err
	}
	return mapSlots(f, n)
}

// checkSlotsFile checks that f is a table of n slots with CRC-32C crc.
func checkSlotsFile(f *os.File, n int, crc uint32) error {
	size, got, err := fileCRC(f)
	if err != nil {
		return err
	}
	if size != int64(slotBytes(n)) || got != crc {
		return fmt.Errorf("table file of %d bytes with CRC %08x, saved as %d slots with CRC %08x", size, got, n, crc)
	}
	return nil
}

// fileCRC reads f from its start and returns its size and CRC-32C.
func fileCRC(f *os.File) (int64, uint32, error) {
	h := crc32.New(castagnoli)
	n, err := io.CopyBuffer(h, io.NewSectionReader(f, 0, 1<<62), make([]byte, 1<<20))
	return n, h.Sum32(), err
}

func (t slotTable) get(i int) uint64 {
	return binary.LittleEndian.Uint64(t.b[6*i:]) & (1<<48 - 1)
}

func (t slotTable) set(i int, v uint64) { putSlot(t.b[6*i:], v) }

// putSlot writes the 48-bit slot value v to b's first 6 bytes.
func putSlot(b []byte, v uint64) {
	binary.LittleEndian.PutUint32(b, uint32(v))
	binary.LittleEndian.PutUint16(b[4:], uint16(v>>32))
}

// A record is a flags byte (1: deleted; 2: author path; 4: a deferred
// deletion; 8: the deletion's index follows; 0x80: checksummed), uvarints
// index and size (and, with flag 8, the deletion's index), the sha256, the
// path as a uvarint length and its bytes, and a CRC-32C of all that
// (little-endian). Flag 8 is newer than the rest: a deleted record without
// it reads as a deletion at an unknown index. A
// flipped bit anywhere is a refusal to start, not a path silently
// forgotten. Records written before the checksum (no 0x80) are read, and
// openState rewrites their file.
//
// An author path, "authors/id/A/AB/ABC/rest" (almost every path), is kept
// as "ABC/rest": the first 16 bytes follow from the PAUSE id, and leaving
// them out makes the file (the bulk of the state) a sixth smaller.
const (
	flagDeleted    = 1
	flagAuthorPath = 2
	flagDeferred   = 4
	flagDeletedAt  = 8
	flagChecksum   = 0x80
)

// authorPath returns "ABC/rest" for "authors/id/A/AB/ABC/rest" (with a
// PAUSE id of two characters or more), or false.
func authorPath(p string) (string, bool) {
	const prefix = "authors/id/"
	if len(p) < len(prefix)+5+3 || p[:len(prefix)] != prefix {
		return "", false
	}
	short := p[len(prefix)+5:]
	if p[len(prefix)+1] != '/' || p[len(prefix)+4] != '/' || short[0] != p[len(prefix)] || short[:2] != p[len(prefix)+2:len(prefix)+4] || short[1] == '/' || short[0] == '/' {
		return "", false
	}
	return short, true
}

// fullAuthorPath is the inverse of authorPath.
func fullAuthorPath(short string) (string, error) {
	if len(short) < 3 || short[0] == '/' || short[1] == '/' {
		return "", fmt.Errorf("author path %q", short)
	}
	return "authors/id/" + short[:1] + "/" + short[:2] + "/" + short, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func appendRecord(b []byte, p string, rec upload) []byte {
	start := len(b)
	var flags byte = flagChecksum
	if rec.Deleted {
		flags |= flagDeleted
	}
	if rec.DeferredDelete {
		flags |= flagDeferred
	}
	if rec.Deleted && rec.DeletedAt != 0 {
		flags |= flagDeletedAt
	}
	if short, ok := authorPath(p); ok {
		flags |= flagAuthorPath
		p = short
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, rec.Index)
	b = binary.AppendUvarint(b, rec.Size)
	if flags&flagDeletedAt != 0 {
		b = binary.AppendUvarint(b, rec.DeletedAt)
	}
	b = append(b, rec.SHA256[:]...)
	b = binary.AppendUvarint(b, uint64(len(p)))
	b = append(b, p...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

var errShortRecord = errors.New("record cut short")

func decodeRecord(b []byte) (string, upload, int, error) {
	var rec upload
	if len(b) < 1 {
		return "", rec, 0, errShortRecord
	}
	if b[0]&^(flagDeleted|flagAuthorPath|flagDeferred|flagDeletedAt|flagChecksum) != 0 || b[0]&(flagDeleted|flagDeferred) == flagDeleted|flagDeferred ||
		b[0]&(flagDeletedAt|flagDeleted) == flagDeletedAt {
		return "", rec, 0, fmt.Errorf("flags %#x", b[0])
	}
	rec.Deleted = b[0]&flagDeleted != 0
	rec.DeferredDelete = b[0]&flagDeferred != 0
	n := 1
	var fields [3]uint64
	nf := 2
	if b[0]&flagDeletedAt != 0 {
		nf = 3
	}
	for i := range nf {
		v, k := binary.Uvarint(b[n:])
		if k <= 0 {
			return "", rec, 0, errShortRecord
		}
		fields[i], n = v, n+k
	}
	rec.Index, rec.Size, rec.DeletedAt = fields[0], fields[1], fields[2]
	if len(b) < n+32 {
		return "", rec, 0, errShortRecord
	}
	copy(rec.SHA256[:], b[n:])
	n += 32
	l, k := binary.Uvarint(b[n:])
	if k <= 0 {
		return "", rec, 0, errShortRecord
	}
	n += k
	if l > maxRecord {
		return "", rec, 0, fmt.Errorf("path of %d bytes", l)
	}
	if uint64(len(b)-n) < l {
		return "", rec, 0, errShortRecord
	}
	p, n := string(b[n:n+int(l)]), n+int(l)
	if b[0]&flagChecksum != 0 {
		if len(b) < n+4 {
			return "", rec, 0, errShortRecord
		}
		if crc32.Checksum(b[:n], castagnoli) != binary.LittleEndian.Uint32(b[n:]) {
			return "", rec, 0, errors.New("checksum mismatch")
		}
		n += 4
	}
	if b[0]&flagAuthorPath != 0 {
		full, err := fullAuthorPath(p)
		if err != nil {
			return "", rec, 0, err
		}
		p = full
	}
	return p, rec, n, nil
}
