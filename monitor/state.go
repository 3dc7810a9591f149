package monitor

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	flog "github.com/transparency-dev/formats/log"
	bolt "go.etcd.io/bbolt"
)

// state is the monitor's durable memory: a bbolt file with how far it has
// audited, the compact range of the tree up to there, what the rules need
// to remember per distribution, the findings already reported and an
// outbox of findings not yet delivered; and the per-path records of
// uploads (see uploads), whose committed length the bbolt file holds.
// Everything a batch of entries changes commits in one transaction with
// the new position, so a crash resumes exactly where the last commit left
// off.
type state struct {
	db      *bolt.DB
	dir     string
	uploads *uploads
	// router, when set, gets the findings record files and the uploads
	// of the batch, in the same transaction.
	router Router
	// batchUploads are the uploads and deletions of the batch being
	// audited, for the router (see noteUpload).
	batchUploads []Upload
}

var (
	bMeta    = []byte("meta")    // "audited": size; "range": compact range hashes
	bDists   = []byte("dists")   // dist → sigstore identity JSON
	bPending = []byte("pending") // release path → pendingRelease JSON
	bSeen    = []byte("seen")    // finding ID → nothing
	bOutbox  = []byte("outbox")  // seq → finding JSON, not yet delivered
	bViews   = []byte("views")   // peer checkpoint ahead of ours → keptView JSON
	kAudited = []byte("audited")
	kRange   = []byte("range")
	// kUploads is the committed length of the uploads file and how many
	// paths it holds (to size the table when the monitor starts).
	kUploads = []byte("uploads")
	// kUploadsFile names the uploads file, when it is not "uploads": a
	// rewrite makes a new file and switches to it in one transaction.
	kUploadsFile = []byte("uploads-file")
	// kTable is the savedTable (JSON) of the uploads file's table, while
	// the table file is exactly what it says (see uploads).
	kTable = []byte("uploads-table")
	// kBulk is the offset of the uploads file from which path checks are
	// deferred (see bulkPaths), while they are.
	kBulk = []byte("uploads-bulk")
)

var errStateLocked = errors.New("monitor state is locked by another process (is another cpantlog-monitor using this --state?)")

// openState opens the state in dir.
func openState(dir string) (*state, error) {
	db, err := bolt.Open(filepath.Join(dir, "monitor.db"), 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, errStateLocked
	}
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bMeta, bDists, bPending, bSeen, bOutbox, bIndexQueue, bViews} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &state{db: db, dir: dir}
	size, paths := s.committedUploads()
	if s.uploads, err = openUploads(filepath.Join(dir, s.uploadsFile()), size, paths, s.savedTable(), s.forgetTable, s.bulkFrom()); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.migrateUploads(); err != nil {
		s.close()
		return nil, fmt.Errorf("monitor state: moving the per-path records out of %s: %w", db.Path(), err)
	}
	if s.uploads.legacy > 0 {
		if err := s.rewriteUploads(); err != nil {
			s.close()
			return nil, fmt.Errorf("monitor state: rewriting the uploads file with checksums: %w", err)
		}
	}
	return s, nil
}

// uploadsFile is the name of the uploads file in the state directory.
func (s *state) uploadsFile() string {
	name := "uploads"
	s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bMeta).Get(kUploadsFile); v != nil {
			name = string(v)
		}
		return nil
	})
	return name
}

// rewriteUploads writes every path's latest record to a new file, in the
// current format, and switches to it in the transaction that commits its
// length: a crash before leaves the old file in use, after the new one.
func (s *state) rewriteUploads() error {
	name := "uploads.1"
	if s.uploadsFile() == name {
		name = "uploads.2"
	}
	f, err := os.OpenFile(filepath.Join(s.dir, name), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	var off int64
	paths := 0
	err = s.uploads.each(func(p string, rec upload) error {
		pad := align(off) - off
		w.Write(make([]byte, pad))
		b := appendRecord(nil, p, rec)
		off += pad + int64(len(b))
		paths++
		_, err := w.Write(b)
		return err
	})
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	f.Close()
	if err != nil {
		return err
	}
	old := s.uploadsFile()
	err = s.db.Update(func(tx *bolt.Tx) error {
		m := tx.Bucket(bMeta)
		if err := putCommitted(tx, off, paths); err != nil {
			return err
		}
		if err := m.Delete(kTable); err != nil {
			return err
		}
		return m.Put(kUploadsFile, []byte(name))
	})
	if err != nil {
		return err
	}
	u, err := openUploads(filepath.Join(s.dir, name), off, paths, nil, s.forgetTable, -1)
	if err != nil {
		return err
	}
	s.uploads.close()
	s.uploads = u
	os.Remove(filepath.Join(s.dir, old))
	os.Remove(filepath.Join(s.dir, old+".table"))
	return nil
}

// savedTable returns the saved table of the uploads file, or nil.
func (s *state) savedTable() *savedTable {
	var t *savedTable
	s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bMeta).Get(kTable); v != nil {
			t = new(savedTable)
			if json.Unmarshal(v, t) != nil {
				t = nil
			}
		}
		return nil
	})
	return t
}

// bulkFrom is the offset from which path checks are deferred, or -1.
func (s *state) bulkFrom() int64 {
	from := int64(-1)
	s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bMeta).Get(kBulk); len(v) == 8 {
			from = int64(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	return from
}

// finishBulk runs the deferred path checks and commits their findings,
// the records they add and the table, saved, in the transaction that ends
// the bulk. If anything fails, checks stay deferred and the next round
// runs them again.
func (s *state) finishBulk(progress io.Writer) error {
	u := s.uploads
	err := func() error {
		if testHookFinishBulk != nil {
			if err := testHookFinishBulk(); err != nil {
				return err
			}
		}
		findings, err := u.checkDeferred(progress, func(fs []Finding) error {
			return s.db.Update(func(tx *bolt.Tx) error { return s.record(tx, fs) })
		})
		if err != nil {
			return err
		}
		if _, err := u.flush(); err != nil {
			return err
		}
		t, err := u.save()
		if err != nil {
			return err
		}
		return s.db.Update(func(tx *bolt.Tx) error {
			if err := s.record(tx, findings); err != nil {
				return err
			}
			if err := putCommitted(tx, t.Records, t.Paths); err != nil {
				return err
			}
			if err := putJSON(tx, bMeta, string(kTable), t); err != nil {
				return err
			}
			return tx.Bucket(bMeta).Delete(kBulk)
		})
	}()
	if err != nil {
		size, paths := s.committedUploads()
		return errors.Join(err, u.reload(size, paths))
	}
	u.endBulk()
	u.saved = true
	return nil
}

// testHookFinishBulk, if set, runs before the deferred checks and fails
// them with its error.
var testHookFinishBulk func() error

// forgetTable deletes the saved table, before the table file changes.
func (s *state) forgetTable() error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Delete(kTable) })
}

// saveTable syncs the uploads table and saves it, if it matches the
// committed records, so that the next start maps it instead of rebuilding
// it.
func (s *state) saveTable() error {
	if s.uploads.saved || s.uploads.bulk != nil {
		return nil
	}
	t, err := s.uploads.save()
	if err != nil || t == nil {
		return err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		if size, paths := committedIn(tx); size != t.Records || paths != t.Paths {
			return nil // not what the state committed: rebuilt next time
		}
		return putJSON(tx, bMeta, string(kTable), t)
	})
	if err == nil {
		s.uploads.saved = true
	}
	return err
}

// committedUploads is the uploads file's length and number of paths as of
// the last commit.
func (s *state) committedUploads() (size int64, paths int) {
	s.db.View(func(tx *bolt.Tx) error {
		size, paths = committedIn(tx)
		return nil
	})
	return size, paths
}

// putCommitted records the uploads file's committed length and paths.
func putCommitted(tx *bolt.Tx, size int64, paths int) error {
	v := binary.BigEndian.AppendUint64(nil, uint64(size))
	return tx.Bucket(bMeta).Put(kUploads, binary.BigEndian.AppendUint64(v, uint64(paths)))
}

func committedIn(tx *bolt.Tx) (size int64, paths int) {
	if v := tx.Bucket(bMeta).Get(kUploads); len(v) == 16 {
		size, paths = int64(binary.BigEndian.Uint64(v)), int(binary.BigEndian.Uint64(v[8:]))
	}
	return size, paths
}

// migrateUploads moves the per-path records of a state written before the
// uploads file (the buckets "uploads": path → index, size, sha256, and
// "deleted": path → nothing) into it, once.
func (s *state) migrateUploads() error {
	before := false
	s.db.View(func(tx *bolt.Tx) error {
		before = tx.Bucket([]byte("uploads")) != nil
		return nil
	})
	if !before {
		return nil // and the saved table is kept
	}
	return s.commitBatch(func(tx *bolt.Tx) error {
		old := tx.Bucket([]byte("uploads"))
		if old == nil {
			return nil
		}
		deleted := tx.Bucket([]byte("deleted"))
		err := old.ForEach(func(k, v []byte) error {
			if len(v) != 48 {
				return fmt.Errorf("record of %q has %d bytes", k, len(v))
			}
			rec := upload{Index: binary.BigEndian.Uint64(v), Size: binary.BigEndian.Uint64(v[8:])}
			copy(rec.SHA256[:], v[16:])
			rec.Deleted = deleted != nil && deleted.Get(k) != nil
			return s.uploads.put(string(k), rec)
		})
		if err != nil {
			return err
		}
		if err := tx.DeleteBucket([]byte("uploads")); err != nil {
			return err
		}
		if deleted != nil {
			return tx.DeleteBucket([]byte("deleted"))
		}
		return nil
	})
}

// close saves the uploads table (see uploads) and closes the state.
func (s *state) close() error {
	err := s.saveTable()
	if err != nil {
		err = fmt.Errorf("monitor state: saving the uploads table (the next start rebuilds it): %w", err)
	}
	return errors.Join(err, s.uploads.close(), s.db.Close())
}

// commitBatch runs fn in one transaction that also commits the upload
// records put since the last batch. If it fails, the records of the batch
// are dropped too: the batch is audited again from the committed position.
func (s *state) commitBatch(fn func(tx *bolt.Tx) error) error {
	// The batch may change the uploads table: forget a saved one first, in
	// a transaction of its own (inside fn's, bbolt's one writer would wait
	// for itself).
	if err := s.uploads.unsave(); err != nil {
		return err
	}
	s.batchUploads = s.batchUploads[:0]
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		n, err := s.uploads.flush()
		if err != nil {
			return err
		}
		if err := putCommitted(tx, n, s.uploads.used); err != nil {
			return err
		}
		if b := s.uploads.bulk; b != nil {
			return tx.Bucket(bMeta).Put(kBulk, binary.BigEndian.AppendUint64(nil, uint64(b.from)))
		}
		return nil
	})
	if err != nil {
		size, paths := s.committedUploads()
		if rerr := s.uploads.reload(size, paths); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
	return err
}

// position returns the audited size and the compact range hashes there.
func (s *state) position() (uint64, [][]byte, error) {
	var size uint64
	var hashes [][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		m := tx.Bucket(bMeta)
		if v := m.Get(kAudited); v != nil {
			size = binary.BigEndian.Uint64(v)
		}
		if v := m.Get(kRange); v != nil {
			if len(v)%32 != 0 {
				return fmt.Errorf("monitor state: compact range of %d bytes", len(v))
			}
			for i := 0; i < len(v); i += 32 {
				hashes = append(hashes, bytes.Clone(v[i:i+32]))
			}
		}
		return nil
	})
	return size, hashes, err
}

func getJSON(tx *bolt.Tx, bucket []byte, key string, v any) bool {
	b := tx.Bucket(bucket).Get([]byte(key))
	return b != nil && json.Unmarshal(b, v) == nil
}

func putJSON(tx *bolt.Tx, bucket []byte, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put([]byte(key), b)
}

// record files findings not reported before into the outbox, in tx,
// stamped with the time they were found, and hands them with the batch's
// uploads (if any) to the router.
func (s *state) record(tx *bolt.Tx, findings []Finding, uploads ...Upload) error {
	var events []Event
	err := record(tx, findings, func(f Finding) {
		if s.router != nil {
			f = withSubjects(f)
			events = append(events, Event{Finding: &f})
		}
	})
	if err != nil || s.router == nil {
		return err
	}
	for i := range uploads {
		events = append(events, Event{Upload: &uploads[i]})
	}
	if len(events) == 0 {
		return nil
	}
	return s.router.Route(tx, events)
}

func record(tx *bolt.Tx, findings []Finding, filed func(Finding)) error {
	seen, out := tx.Bucket(bSeen), tx.Bucket(bOutbox)
	now := time.Now().UTC().Truncate(time.Second)
	for _, f := range findings {
		if f.Seen.IsZero() {
			f.Seen = now
		}
		f.Message = clip(f.Message, maxMessage)
		if f.RouteOnly {
			filed(f)
			continue
		}
		if seen.Get([]byte(f.ID)) != nil {
			continue
		}
		if err := seen.Put([]byte(f.ID), nil); err != nil {
			return err
		}
		seq, err := out.NextSequence()
		if err != nil {
			return err
		}
		if err := out.Put(binary.BigEndian.AppendUint64(nil, seq), f.JSON()); err != nil {
			return err
		}
		filed(f)
	}
	return nil
}

// outbox returns up to n findings waiting for delivery, oldest first,
// with their keys: the outbox is read a page at a time, so that a flood of
// findings is not held in memory at once.
func (s *state) outbox(n int) ([][]byte, []Finding, error) {
	var keys [][]byte
	var fs []Finding
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bOutbox).Cursor()
		for k, v := c.First(); k != nil && len(fs) < n; k, v = c.Next() {
			var f Finding
			if err := json.Unmarshal(v, &f); err != nil {
				return err
			}
			keys = append(keys, bytes.Clone(k))
			fs = append(fs, f)
		}
		return nil
	})
	return keys, fs, err
}

func (s *state) delivered(key []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bOutbox).Delete(key) })
}

// recordNow files findings outside an entry batch (checkpoint checks).
func (s *state) recordNow(findings ...Finding) error {
	return s.db.Update(func(tx *bolt.Tx) error { return s.record(tx, findings) })
}

// keptView is a signed peer checkpoint larger than the log showed this
// monitor, kept whole as evidence until the log's view reaches it.
type keptView struct {
	Peer      string
	Raw       []byte
	FirstSeen time.Time
	key       []byte
}

// keepView remembers a view ahead of ours, keyed by size and root; the
// first time it was seen is kept.
func (s *state) keepView(peer string, cp *flog.Checkpoint, raw []byte, now time.Time) error {
	key := append(binary.BigEndian.AppendUint64(nil, cp.Size), cp.Hash...)
	return s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bViews).Get(key) != nil {
			return nil
		}
		b, err := json.Marshal(keptView{Peer: peer, Raw: raw, FirstSeen: now})
		if err != nil {
			return err
		}
		return tx.Bucket(bViews).Put(key, b)
	})
}

func (s *state) keptViews() ([]keptView, error) {
	var out []keptView
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bViews).ForEach(func(k, v []byte) error {
			var kv keptView
			if err := json.Unmarshal(v, &kv); err != nil {
				return err
			}
			kv.key = bytes.Clone(k)
			out = append(out, kv)
			return nil
		})
	})
	return out, err
}

func (s *state) dropView(key []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bViews).Delete(key) })
}
