package index

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	_ "github.com/go-sql-driver/mysql" // the MySQL/MariaDB driver Tessera's storage/aws uses

	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// MySQL is the lookup index in a MySQL/MariaDB database, the one the log's
// storage/aws sequencing uses, so any number of front ends share it. Tables
// are created on first open with a versioned schema; another version is
// emptied (the log rebuilds it from the tree), keeping ingest positions.
type MySQL struct {
	db *sql.DB
}

var _ Store = (*MySQL)(nil)

var mysqlSchema = []string{
	`CREATE TABLE IF NOT EXISTS cpantlog_index_meta (k VARBINARY(255) PRIMARY KEY, v BLOB NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS cpantlog_index_leaves (
		idx BIGINT UNSIGNED PRIMARY KEY,
		leaf BLOB NOT NULL,
		path VARBINARY(300) NULL,
		sha256 BINARY(32) NULL,
		dist VARBINARY(300) NULL,
		author VARBINARY(64) NULL,
		INDEX by_path (path, idx),
		INDEX by_sha256 (sha256, idx),
		INDEX by_dist (dist, idx),
		INDEX by_author (author, idx)
	)`,
}

// OpenMySQL opens (creating) the index tables in the database of dsn.
func OpenMySQL(dsn string) (*MySQL, error) {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(16)
	for _, q := range mysqlSchema {
		if _, err := db.Exec(q); err != nil {
			db.Close()
			return nil, fmt.Errorf("create lookup index tables: %w", err)
		}
	}
	m := &MySQL{db: db}
	v, err := m.GetMeta("version")
	if err != nil {
		db.Close()
		return nil, err
	}
	if v != nil && binary.BigEndian.Uint64(v) != schemaVersion {
		// Derived state of another layout: empty it, keep ingest positions.
		if _, err := db.Exec(`DELETE FROM cpantlog_index_leaves`); err != nil {
			return nil, err
		}
		if _, err := db.Exec(`DELETE FROM cpantlog_index_meta WHERE k NOT LIKE 'x:%'`); err != nil {
			return nil, err
		}
	}
	if err := m.PutMeta("version", u64(schemaVersion)); err != nil {
		db.Close()
		return nil, err
	}
	return m, nil
}

// Close closes the database handle.
func (m *MySQL) Close() error { return m.db.Close() }

// Size returns how many leaves the index holds.
func (m *MySQL) Size() (uint64, error) {
	v, err := m.GetMeta("size")
	if err != nil || v == nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(v), nil
}

// ErrMoved means the index grew while the caller read the leaves to
// append: another writer's follower indexed them. Read Size and go on.
var ErrMoved = errors.New("the lookup index moved on")

// Append adds leaves start, start+1, ... in one transaction; start must
// equal Size, which the transaction locks, so concurrent writers cannot
// both append (the later gets ErrMoved).
func (m *MySQL) Append(start uint64, leaves [][]byte) (int, error) {
	tx, err := m.db.Begin()
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var v []byte
	err = tx.QueryRow(`SELECT v FROM cpantlog_index_meta WHERE k = 'size' FOR UPDATE`).Scan(&v)
	var size uint64
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return 0, err
	default:
		size = binary.BigEndian.Uint64(v)
	}
	if size != start {
		return 0, fmt.Errorf("%w: index holds %d leaves, cannot append at %d", ErrMoved, size, start)
	}
	bad := 0
	const chunk = 256
	for lo := 0; lo < len(leaves); lo += chunk {
		hi := min(lo+chunk, len(leaves))
		var q strings.Builder
		q.WriteString(`INSERT INTO cpantlog_index_leaves (idx, leaf, path, sha256, dist, author) VALUES `)
		args := make([]any, 0, 6*(hi-lo))
		for i, leaf := range leaves[lo:hi] {
			if i > 0 {
				q.WriteString(",")
			}
			q.WriteString("(?,?,?,?,?,?)")
			var path, sum, dist, author any
			if e, err := entry.Parse(leaf); err != nil {
				bad++
			} else {
				path = e.Path
				if e.Kind == entry.Upload || e.Kind == entry.Index {
					sum = e.SHA256[:]
				}
				if d := cpan.ParseDistInfo(e.Path).Dist; d != "" {
					dist = d
				}
				if id, err := cpan.ValidatePath(e.Path); err == nil {
					author = id
				}
			}
			args = append(args, start+uint64(lo+i), leaf, path, sum, dist, author)
		}
		if _, err := tx.Exec(q.String(), args...); err != nil {
			return 0, err
		}
	}
	if _, err := tx.Exec(`INSERT INTO cpantlog_index_meta (k, v) VALUES ('size', ?) ON DUPLICATE KEY UPDATE v = VALUES(v)`, u64(start+uint64(len(leaves)))); err != nil {
		return 0, err
	}
	return bad, tx.Commit()
}

func (m *MySQL) records(q string, args ...any) ([]Record, error) {
	rows, err := m.db.Query(q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var idx uint64
		var leaf []byte
		if err := rows.Scan(&idx, &leaf); err != nil {
			return nil, err
		}
		e, err := entry.Parse(leaf)
		if err != nil {
			continue
		}
		out = append(out, Record{Index: idx, Leaf: leaf, Entry: e})
	}
	return out, rows.Err()
}

// ByPath returns every entry logged for path, oldest first.
func (m *MySQL) ByPath(path string) ([]Record, error) {
	return m.records(`SELECT idx, leaf FROM cpantlog_index_leaves WHERE path = ? ORDER BY idx`, path)
}

// Paths calls fn with every indexed path, once each.
func (m *MySQL) Paths(fn func(path string) error) error {
	rows, err := m.db.Query(`SELECT DISTINCT path FROM cpantlog_index_leaves WHERE path IS NOT NULL`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return rows.Err()
}

// BySHA256 returns every upload of a file with this digest, oldest first.
func (m *MySQL) BySHA256(sum [32]byte) ([]Record, error) {
	return m.records(`SELECT idx, leaf FROM cpantlog_index_leaves WHERE sha256 = ? ORDER BY idx`, sum[:])
}

func (m *MySQL) page(col, val string, p Page) ([]Record, error) {
	before := uint64(1<<63 - 1)
	if p.Before > 0 {
		before = p.Before
	}
	if col == "" {
		return m.records(`SELECT idx, leaf FROM cpantlog_index_leaves WHERE idx < ? ORDER BY idx DESC LIMIT ?`, before, p.Limit)
	}
	return m.records(`SELECT idx, leaf FROM cpantlog_index_leaves WHERE `+col+` = ? AND idx < ? ORDER BY idx DESC LIMIT ?`, val, before, p.Limit)
}

// ByDist returns a page of a distribution's entries, newest first.
func (m *MySQL) ByDist(dist string, p Page) ([]Record, error) { return m.page("dist", dist, p) }

// DistsWithPrefix lists distribution names starting with prefix, case
// folded. dist is binary (case-sensitive) and indexed: an ASCII prefix is
// looked up as each of its spellings that occur (walkSpellings), each a
// range of the by_dist index, where LOWER(dist) LIKE would read every row.
func (m *MySQL) DistsWithPrefix(prefix string, limit int) ([]string, error) {
	lower := strings.ToLower(prefix)
	if !isASCII(lower) {
		// Case folding beyond ASCII changes lengths: compare every name.
		esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(lower)
		return m.queryStrings(`SELECT DISTINCT CAST(dist AS CHAR) AS d FROM cpantlog_index_leaves WHERE LOWER(CAST(dist AS CHAR)) LIKE ? ORDER BY LOWER(d) LIMIT ?`, esc+"%", limit)
	}
	var out []string
	err := walkSpellings(lower, func(spellings [2][]byte) (found [2]bool, _ error) {
		// Both spellings in one round trip: the first name at or after each.
		var first [2][]byte
		err := m.db.QueryRow(`SELECT (SELECT dist FROM cpantlog_index_leaves WHERE dist >= ? ORDER BY dist LIMIT 1),
			(SELECT dist FROM cpantlog_index_leaves WHERE dist >= ? ORDER BY dist LIMIT 1)`, spellings[0], spellings[1]).Scan(&first[0], &first[1])
		for i, have := range spellings {
			found[i] = bytes.HasPrefix(first[i], have)
		}
		return found, err
	}, func(have []byte) (bool, error) {
		q, args := `SELECT DISTINCT dist FROM cpantlog_index_leaves WHERE dist IS NOT NULL ORDER BY dist LIMIT ?`, []any{limit}
		if len(have) > 0 {
			q, args = `SELECT DISTINCT dist FROM cpantlog_index_leaves WHERE dist >= ? AND dist < ? ORDER BY dist LIMIT ?`, []any{have, prefixEnd(have), limit - len(out)}
		}
		names, err := m.queryStrings(q, args...)
		out = append(out, names...)
		return len(out) < limit, err
	})
	slices.SortFunc(out, foldedOrder)
	return out, err
}

// prefixEnd is the least byte string greater than every string with prefix
// p, which is not empty and ASCII (its last byte can be incremented).
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	end[len(end)-1]++
	return end
}

// queryStrings runs a query of one string column.
func (m *MySQL) queryStrings(query string, args ...any) ([]string, error) {
	rows, err := m.db.Query(query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// ByAuthor returns a page of the entries in a PAUSE id's directory.
func (m *MySQL) ByAuthor(id string, p Page) ([]Record, error) { return m.page("author", id, p) }

// Recent returns a page of the newest entries.
func (m *MySQL) Recent(p Page) ([]Record, error) { return m.page("", "", p) }

// Leaf returns the leaf at idx.
func (m *MySQL) Leaf(idx uint64) ([]byte, error) {
	var leaf []byte
	err := m.db.QueryRow(`SELECT leaf FROM cpantlog_index_leaves WHERE idx = ?`, idx).Scan(&leaf)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("leaf %d is not in the lookup index", idx)
	}
	return leaf, err
}

// GetMeta returns a value stored with PutMeta, or nil.
func (m *MySQL) GetMeta(key string) ([]byte, error) {
	var v []byte
	err := m.db.QueryRow(`SELECT v FROM cpantlog_index_meta WHERE k = ?`, metaKey(key)).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return v, err
}

// PutMeta stores a value durably.
func (m *MySQL) PutMeta(key string, value []byte) error {
	_, err := m.db.Exec(`INSERT INTO cpantlog_index_meta (k, v) VALUES (?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v)`, metaKey(key), value)
	return err
}

// metaKey keeps the index's own keys apart from callers' keys, as the
// bbolt index does with its "x:" prefix.
func metaKey(key string) string {
	if key == "size" || key == "version" {
		return key
	}
	return "x:" + key
}

// Dump writes the index in the same canonical form as Index.Dump.
func (m *MySQL) Dump(w io.Writer) error {
	size, err := m.Size()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "size %d\n", size)
	rows, err := m.db.Query(`SELECT idx, leaf, path, sha256, dist, author FROM cpantlog_index_leaves ORDER BY idx`)
	if err != nil {
		return err
	}
	defer rows.Close()
	type kv struct {
		key string
		idx uint64
	}
	var paths, shas, dists, authors []kv
	for rows.Next() {
		var idx uint64
		var leaf, sum []byte
		var path, dist, author sql.NullString
		if err := rows.Scan(&idx, &leaf, &path, &sum, &dist, &author); err != nil {
			return err
		}
		fmt.Fprintf(w, "leaf %d %x\n", idx, sha256.Sum256(leaf))
		if path.Valid {
			paths = append(paths, kv{path.String, idx})
		}
		if sum != nil {
			shas = append(shas, kv{string(sum), idx})
		}
		if dist.Valid {
			dists = append(dists, kv{dist.String, idx})
		}
		if author.Valid {
			authors = append(authors, kv{author.String, idx})
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	// The order of Index.Dump: by key bytes, then index.
	for _, sec := range []struct {
		name string
		kvs  []kv
	}{{"path", paths}, {"sha256", shas}, {"dists", dists}, {"author", authors}} {
		slices.SortFunc(sec.kvs, func(a, b kv) int {
			if c := strings.Compare(a.key, b.key); c != 0 {
				return c
			}
			return cmp.Compare(a.idx, b.idx)
		})
		for _, e := range sec.kvs {
			if sec.name == "sha256" {
				fmt.Fprintf(w, "sha256 %s %d\n", hex.EncodeToString([]byte(e.key)), e.idx)
			} else {
				fmt.Fprintf(w, "%s %q %d\n", sec.name, e.key, e.idx)
			}
		}
	}
	return nil
}
