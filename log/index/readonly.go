package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrOtherSchema is returned by OpenReadOnly for an index of another
// layout (or none at all): the server empties and rebuilds it on start.
var ErrOtherSchema = errors.New("lookup index of another layout")

// OpenReadOnly opens the index at path without writing to it (a backup, or
// a restored data directory being checked before it is served). It fails
// with ErrLocked while a server holds it, and with ErrOtherSchema when the
// file is not an index of this layout.
func OpenReadOnly(path string) (*Index, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open lookup index %s: %w", path, err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if tx.Bucket(b) == nil {
				return fmt.Errorf("%w: no %s bucket", ErrOtherSchema, b)
			}
		}
		if v := tx.Bucket(bucketMeta).Get(keyVersion); len(v) != 8 || binary.BigEndian.Uint64(v) != schemaVersion {
			return fmt.Errorf("%w: version %x, want %d", ErrOtherSchema, v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Index{db: db}, nil
}
