package log

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	_ "github.com/go-sql-driver/mysql"
	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/tessera"
	tclient "github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/log/indexfiles"
)

// Migrate copies the POSIX tree of the log in dataDir to another storage
// with Tessera's migration lifecycle, which rebuilds the tree there and
// checks its root against the source's latest checkpoint: no leaf or root
// changes. Afterwards the log continues on the new storage with the same
// data directory (its keys and lookup index): `serve --storage s3 ...`.
// Stop the server first.
func Migrate(ctx context.Context, dataDir string, to Config) (size uint64, root []byte, err error) {
	b, err := os.ReadFile(filepath.Join(dataDir, VKeyFile))
	if err != nil {
		return 0, nil, fmt.Errorf("%w (is %s a cpan-tlog data directory?)", err, dataDir)
	}
	v, err := note.NewVerifier(string(bytes.TrimSpace(b)))
	if err != nil {
		return 0, nil, err
	}
	src := tclient.FileFetcher{Root: filepath.Join(dataDir, TreeDir)}
	raw, err := src.ReadCheckpoint(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("source checkpoint: %w", err)
	}
	cp, _, _, err := flog.ParseCheckpoint(raw, v.Name(), v)
	if err != nil {
		return 0, nil, fmt.Errorf("source checkpoint does not verify with %s: %w", VKeyFile, err)
	}
	to.DataDir = dataDir
	drv, err := driver(ctx, to)
	if err != nil {
		return 0, nil, err
	}
	mt, err := tessera.NewMigrationTarget(ctx, drv, tessera.NewMigrationOptions())
	if err != nil {
		return 0, nil, err
	}
	if err := mt.Migrate(ctx, 4, cp.Size, cp.Hash, src.ReadEntryBundle); err != nil {
		return 0, nil, fmt.Errorf("migrate %d entries: %w", cp.Size, err)
	}
	if to.Storage == StorageS3 {
		if err := advanceSequencer(ctx, to.S3.DSN, cp.Size); err != nil {
			return 0, nil, err
		}
		if err := copyIndexFiles(ctx, dataDir, to); err != nil {
			return 0, nil, err
		}
	}
	return cp.Size, cp.Hash, nil
}

// copyIndexFiles copies the stored index file versions to the bucket,
// where every writer on S3 keeps them, each checked against its name
// first and copied as stored.
func copyIndexFiles(ctx context.Context, dataDir string, to Config) error {
	dst, err := openIndexFiles(ctx, to)
	if err != nil {
		return err
	}
	return indexfiles.InDir(filepath.Join(dataDir, IndexFilesDir)).CopyTo(ctx, dst.Store)
}

// advanceSequencer makes Tessera's MySQL sequencer hand out indexes after
// the migrated tree. Tessera v1.0.4's storage/aws migration integrates the
// tree (IntCoord) but leaves the next sequence number (SeqCoord) at 0, so
// the first add after a migration is pushed back forever: next - size
// underflows. Only ever moves it forward.
func advanceSequencer(ctx context.Context, dsn string, size uint64) error {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "UPDATE SeqCoord SET next = ? WHERE id = 0 AND next < ?", size, size); err != nil {
		return fmt.Errorf("advance the sequencer past the migrated tree: %w", err)
	}
	return nil
}
