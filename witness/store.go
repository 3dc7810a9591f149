package witness

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/CPAN-Security/cpan-tlog/internal/atomicfile"
)

// store keeps, per origin, the latest cosigned checkpoint as a whole note
// (the log's signatures and ours): it is the witness's state and its
// evidence. Writes are atomic and durable (internal/atomicfile), so a crash
// leaves either the old or the new state, never less.
type store struct {
	dir string
}

func newStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &store{dir: dir}, nil
}

// OriginID is the lowercase hex SHA-256 of an origin, which names its state
// file and its read endpoint.
func OriginID(origin string) string {
	h := sha256.Sum256([]byte(origin))
	return hex.EncodeToString(h[:])
}

func (s *store) path(origin string) string {
	return filepath.Join(s.dir, OriginID(origin)+".checkpoint")
}

// get returns the latest cosigned checkpoint of origin, or nil.
func (s *store) get(origin string) ([]byte, error) {
	b, err := os.ReadFile(s.path(origin))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// put durably replaces the latest cosigned checkpoint of origin.
func (s *store) put(origin string, cosigned []byte) error {
	return atomicfile.Write(s.path(origin), cosigned, 0o600)
}
