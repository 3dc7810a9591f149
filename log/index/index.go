// Package index is the log's lookup index: path → entries, sha256 →
// entries, distribution and author → entries, index → leaf. Index keeps it
// in an embedded bbolt file (POSIX logs); MySQL keeps it in the log's
// MySQL/MariaDB database (S3 logs), shared by every front end. Both are a
// Store with the same promises.
//
// The index is derived state. It holds nothing the log does not: it is fed
// the log's leaves in order, starting at zero, and can be thrown away and
// rebuilt from the log at any time. After a crash it is behind the log,
// never ahead of it, because each batch of leaves and the new size commit in
// one transaction.
//
// bbolt (go.etcd.io/bbolt, etcd's storage engine) was chosen because it is
// pure Go, has one file and no background compaction, gives serialisable
// transactions with fsync on commit, and is the most widely deployed
// embedded key-value store in the Go ecosystem.
package index

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

var (
	bucketMeta   = []byte("meta")   // "size" → uint64: how many leaves are indexed
	bucketLeaves = []byte("leaves") // uint64 index → leaf
	bucketPaths  = []byte("paths")  // path \x00 uint64 index → nothing
	bucketSHA256 = []byte("sha256") // 32-byte digest, uint64 index → nothing
	bucketDists  = []byte("dists")  // distribution name \x00 uint64 index → nothing
	bucketAuthor = []byte("author") // PAUSE id \x00 uint64 index → nothing
	keySize      = []byte("size")
	keyVersion   = []byte("version")
)

// schemaVersion is bumped whenever the layout above changes. An index of
// another version is emptied on open: it is derived state, and the log
// rebuilds it from the tree as it starts.
const schemaVersion = 2

var allBuckets = [][]byte{bucketMeta, bucketLeaves, bucketPaths, bucketSHA256, bucketDists, bucketAuthor}

// Index is an open lookup index. It is safe for concurrent use.
type Index struct {
	db *bolt.DB
}

// ErrLocked is returned by Open when another process holds the index.
var ErrLocked = errors.New("lookup index is locked by another process (is cpantlog-server already running on this data directory?)")

// Open opens or creates the index at path.
func Open(path string) (*Index, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open lookup index %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if m := tx.Bucket(bucketMeta); m != nil {
			if v := m.Get(keyVersion); v != nil && binary.BigEndian.Uint64(v) != schemaVersion {
				// Keep ingest positions: they describe the log, not the index.
				kept := map[string][]byte{}
				m.ForEach(func(k, v []byte) error {
					if bytes.HasPrefix(k, []byte("x:")) {
						kept[string(k)] = bytes.Clone(v)
					}
					return nil
				})
				for _, b := range allBuckets {
					if tx.Bucket(b) != nil {
						if err := tx.DeleteBucket(b); err != nil {
							return err
						}
					}
				}
				m, err := tx.CreateBucket(bucketMeta)
				if err != nil {
					return err
				}
				for k, v := range kept {
					m.Put([]byte(k), v)
				}
			}
		}
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keyVersion, u64(schemaVersion))
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Index{db: db}, nil
}

// Close closes the database.
func (ix *Index) Close() error { return ix.db.Close() }

// Size returns how many leaves of the log the index holds.
func (ix *Index) Size() (uint64, error) {
	var n uint64
	err := ix.db.View(func(tx *bolt.Tx) error {
		n = size(tx)
		return nil
	})
	return n, err
}

func size(tx *bolt.Tx) uint64 {
	if v := tx.Bucket(bucketMeta).Get(keySize); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// Append adds the log's leaves start, start+1, ... in one transaction.
// start must equal Size: the index never skips or repeats a leaf. A leaf
// that does not parse as a v1 entry is kept but not indexed by path or
// digest; Append reports how many there were so the caller can raise it.
func (ix *Index) Append(start uint64, leaves [][]byte) (unparsable int, err error) {
	err = ix.db.Update(func(tx *bolt.Tx) error {
		unparsable = 0
		if n := size(tx); n != start {
			return fmt.Errorf("%w: index holds %d leaves, cannot append at %d", ErrMoved, n, start)
		}
		lb, pb, sb := tx.Bucket(bucketLeaves), tx.Bucket(bucketPaths), tx.Bucket(bucketSHA256)
		db, ab := tx.Bucket(bucketDists), tx.Bucket(bucketAuthor)
		for i, leaf := range leaves {
			idx := start + uint64(i)
			if err := lb.Put(u64(idx), leaf); err != nil {
				return err
			}
			e, err := entry.Parse(leaf)
			if err != nil {
				unparsable++
				continue
			}
			if err := pb.Put(pathKey(e.Path, idx), nil); err != nil {
				return err
			}
			if e.Kind == entry.Upload || e.Kind == entry.Index {
				if err := sb.Put(append(e.SHA256[:], u64(idx)...), nil); err != nil {
					return err
				}
			}
			if d := cpan.ParseDistInfo(e.Path); d.Dist != "" {
				if err := db.Put(pathKey(d.Dist, idx), nil); err != nil {
					return err
				}
			}
			if id, err := cpan.ValidatePath(e.Path); err == nil {
				if err := ab.Put(pathKey(id, idx), nil); err != nil {
					return err
				}
			}
		}
		return tx.Bucket(bucketMeta).Put(keySize, u64(start+uint64(len(leaves))))
	})
	return unparsable, err
}

// GetMeta returns a value stored with PutMeta, or nil. Ingest sources keep
// their positions here, next to the entries they produced, so a position
// and the log it describes live and die together.
func (ix *Index) GetMeta(key string) ([]byte, error) {
	var v []byte
	err := ix.db.View(func(tx *bolt.Tx) error {
		v = bytes.Clone(tx.Bucket(bucketMeta).Get([]byte("x:" + key)))
		return nil
	})
	return v, err
}

// PutMeta stores a value durably.
func (ix *Index) PutMeta(key string, value []byte) error {
	return ix.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put([]byte("x:"+key), value)
	})
}

// Record is one logged entry.
type Record struct {
	Index uint64
	Leaf  []byte
	Entry *entry.Entry
}

// ByPath returns every entry logged for path, oldest first.
func (ix *Index) ByPath(path string) ([]Record, error) {
	var out []Record
	err := ix.db.View(func(tx *bolt.Tx) error {
		prefix := append([]byte(path), 0)
		c := tx.Bucket(bucketPaths).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if len(k) != len(prefix)+8 {
				continue
			}
			r, err := record(tx, binary.BigEndian.Uint64(k[len(prefix):]))
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// Paths calls fn with every indexed path, once each.
func (ix *Index) Paths(fn func(path string) error) error {
	return ix.db.View(func(tx *bolt.Tx) error {
		var last []byte
		return tx.Bucket(bucketPaths).ForEach(func(k, _ []byte) error {
			if len(k) < 9 {
				return nil
			}
			p := k[:len(k)-9] // path \x00 index
			if bytes.Equal(p, last) {
				return nil
			}
			last = p
			return fn(string(p))
		})
	})
}

// Page selects entries newest first: at most Limit, with indexes below
// Before when Before is not zero.
type Page struct {
	Limit  int
	Before uint64
}

// ByDist returns a page of the entries of a distribution (CPAN::DistnameInfo's name).
func (ix *Index) ByDist(dist string, p Page) ([]Record, error) {
	return ix.byKeyNewest(bucketDists, dist, p)
}

// DistsWithPrefix lists distribution names starting with prefix, case
// folded. Keys are "dist\x00index": the scan jumps from one name to the
// next, within the spellings of the prefix that occur (see walkSpellings).
func (ix *Index) DistsWithPrefix(prefix string, limit int) ([]string, error) {
	var out []string
	lower := strings.ToLower(prefix)
	err := ix.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDists).Cursor()
		nextName := func(k []byte) []byte { return append(bytes.Clone(k[:bytes.IndexByte(k, 0)]), 1) }
		if !isASCII(lower) {
			// Case folding beyond ASCII changes lengths: compare every name.
			for k, _ := c.First(); k != nil && len(out) < limit; k, _ = c.Seek(nextName(k)) {
				if name := string(k[:bytes.IndexByte(k, 0)]); strings.HasPrefix(strings.ToLower(name), lower) {
					out = append(out, name)
				}
			}
			return nil
		}
		return walkSpellings(lower, func(spellings [2][]byte) (found [2]bool, _ error) {
			for i, have := range spellings {
				k, _ := c.Seek(have)
				found[i] = k != nil && bytes.HasPrefix(k, have)
			}
			return found, nil
		}, func(have []byte) (bool, error) {
			for k, _ := c.Seek(have); k != nil && bytes.HasPrefix(k, have) && len(out) < limit; k, _ = c.Seek(nextName(k)) {
				out = append(out, string(k[:bytes.IndexByte(k, 0)]))
			}
			return len(out) < limit, nil
		})
	})
	slices.SortFunc(out, foldedOrder)
	return out, err
}

func foldedOrder(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) }

// walkSpellings calls names with every spelling of the ASCII prefix lower
// (each letter in either case) that some name starts with, upper case
// first, until names says it has enough. At each letter it asks occurs
// which of the two spellings so far some name starts with, and drops the
// others: a lookup per letter of each spelling that occurs, instead of a
// scan of every name with the first letter (seconds at a million
// distributions).
func walkSpellings(lower string, occurs func(spellings [2][]byte) ([2]bool, error), names func(have []byte) (more bool, err error)) error {
	var walk func(have []byte, j int) (bool, error)
	walk = func(have []byte, j int) (bool, error) {
		for ; j < len(lower) && (lower[j] < 'a' || lower[j] > 'z'); j++ {
			have = append(have, lower[j]) // one spelling: names finds out
		}
		if j == len(lower) {
			return names(have)
		}
		// Byte order: upper case first.
		spellings := [2][]byte{append(bytes.Clone(have), lower[j]-'a'+'A'), append(bytes.Clone(have), lower[j])}
		found, err := occurs(spellings)
		if err != nil {
			return false, err
		}
		for k, next := range spellings {
			if !found[k] {
				continue
			}
			if more, err := walk(next, j+1); err != nil || !more {
				return more, err
			}
		}
		return true, nil
	}
	_, err := walk(nil, 0)
	return err
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// ByAuthor returns a page of the entries in a PAUSE id's directory.
func (ix *Index) ByAuthor(id string, p Page) ([]Record, error) {
	return ix.byKeyNewest(bucketAuthor, id, p)
}

// Recent returns a page of the newest entries of the log.
func (ix *Index) Recent(p Page) ([]Record, error) {
	var out []Record
	err := ix.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLeaves).Cursor()
		var k []byte
		if p.Before > 0 {
			k, _ = c.Seek(u64(p.Before))
			k, _ = c.Prev()
		} else {
			k, _ = c.Last()
		}
		for ; k != nil && len(out) < p.Limit; k, _ = c.Prev() {
			r, err := record(tx, binary.BigEndian.Uint64(k))
			if err != nil {
				continue // an unparsable leaf is the monitor's business
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// byKeyNewest walks "key \x00 index" keys from the newest index down.
func (ix *Index) byKeyNewest(bucket []byte, key string, p Page) ([]Record, error) {
	var out []Record
	err := ix.db.View(func(tx *bolt.Tx) error {
		prefix := append([]byte(key), 0)
		c := tx.Bucket(bucket).Cursor()
		start := append(bytes.Clone(prefix), u64(^uint64(0))...)
		if p.Before > 0 {
			start = append(bytes.Clone(prefix), u64(p.Before)...)
		}
		k, _ := c.Seek(start)
		if k == nil {
			k, _ = c.Last()
		} else if bytes.Compare(k, start) >= 0 {
			k, _ = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(out) < p.Limit; k, _ = c.Prev() {
			if len(k) != len(prefix)+8 {
				continue
			}
			r, err := record(tx, binary.BigEndian.Uint64(k[len(prefix):]))
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// BySHA256 returns every upload entry of a file with this digest, oldest first.
func (ix *Index) BySHA256(sum [32]byte) ([]Record, error) {
	var out []Record
	err := ix.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketSHA256).Cursor()
		for k, _ := c.Seek(sum[:]); k != nil && bytes.HasPrefix(k, sum[:]); k, _ = c.Next() {
			r, err := record(tx, binary.BigEndian.Uint64(k[32:]))
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// Leaf returns the leaf at idx, or an error if the index does not hold it.
func (ix *Index) Leaf(idx uint64) ([]byte, error) {
	var leaf []byte
	err := ix.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketLeaves).Get(u64(idx))
		if v == nil {
			return fmt.Errorf("leaf %d is not in the lookup index", idx)
		}
		leaf = bytes.Clone(v)
		return nil
	})
	return leaf, err
}

func record(tx *bolt.Tx, idx uint64) (Record, error) {
	v := tx.Bucket(bucketLeaves).Get(u64(idx))
	if v == nil {
		return Record{}, fmt.Errorf("lookup index is corrupt: leaf %d is referenced but missing; run 'cpantlog-server reindex'", idx)
	}
	leaf := bytes.Clone(v)
	e, err := entry.Parse(leaf)
	if err != nil {
		return Record{}, fmt.Errorf("lookup index is corrupt: leaf %d: %v", idx, err)
	}
	return Record{Index: idx, Leaf: leaf, Entry: e}, nil
}

// Dump writes the whole index in a canonical text form: two indexes that
// dump the same hold the same data, whatever order they were built in.
func (ix *Index) Dump(w io.Writer) error {
	return ix.db.View(func(tx *bolt.Tx) error {
		fmt.Fprintf(w, "size %d\n", size(tx))
		if err := tx.Bucket(bucketLeaves).ForEach(func(k, v []byte) error {
			_, err := fmt.Fprintf(w, "leaf %d %x\n", binary.BigEndian.Uint64(k), sha256.Sum256(v))
			return err
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketPaths).ForEach(func(k, _ []byte) error {
			_, err := fmt.Fprintf(w, "path %q %d\n", k[:len(k)-9], binary.BigEndian.Uint64(k[len(k)-8:]))
			return err
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketSHA256).ForEach(func(k, _ []byte) error {
			_, err := fmt.Fprintf(w, "sha256 %s %d\n", hex.EncodeToString(k[:32]), binary.BigEndian.Uint64(k[32:]))
			return err
		}); err != nil {
			return err
		}
		for _, b := range [][]byte{bucketDists, bucketAuthor} {
			if err := tx.Bucket(b).ForEach(func(k, _ []byte) error {
				_, err := fmt.Fprintf(w, "%s %q %d\n", b, k[:len(k)-9], binary.BigEndian.Uint64(k[len(k)-8:]))
				return err
			}); err != nil {
				return err
			}
		}
		return nil
	})
}

func pathKey(p string, idx uint64) []byte {
	k := make([]byte, 0, len(p)+9)
	k = append(k, p...)
	k = append(k, 0)
	return append(k, u64(idx)...)
}

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }
