package index

import "io"

// Store is a lookup index: the bbolt file of Open, or the MySQL/MariaDB
// tables of OpenMySQL. Both hold the same derived data with the same
// promises (see the package documentation).
type Store interface {
	Size() (uint64, error)
	Append(start uint64, leaves [][]byte) (unparsable int, err error)
	ByPath(path string) ([]Record, error)
	// Paths calls fn with the path of every indexed entry (a path logged
	// several times may come several times), in no particular order.
	Paths(fn func(path string) error) error
	BySHA256(sum [32]byte) ([]Record, error)
	ByDist(dist string, p Page) ([]Record, error)
	ByAuthor(id string, p Page) ([]Record, error)
	// DistsWithPrefix lists up to limit distribution names starting with
	// prefix, compared without regard to case, in order.
	DistsWithPrefix(prefix string, limit int) ([]string, error)
	Recent(p Page) ([]Record, error)
	Leaf(idx uint64) ([]byte, error)
	GetMeta(key string) ([]byte, error)
	PutMeta(key string, value []byte) error
	Dump(w io.Writer) error
	Close() error
}

var _ Store = (*Index)(nil)
