package log

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	_ "github.com/go-sql-driver/mysql"
	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/tessera"
	tclient "github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"
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
	src := indexFiles{dir: filepath.Join(dataDir, IndexFilesDir)}
	dst, err := openIndexFiles(ctx, to)
	if err != nil {
		return err
	}
	names, _ := filepath.Glob(filepath.Join(src.dir, "*", "*"))
	for _, n := range names {
		sum := strings.TrimSuffix(filepath.Base(n), ".gz")
		sha, ok := parseSHA256(sum)
		if !ok {
			continue // a temporary file of an interrupted PUT
		}
		if err := checkStored(ctx, src, sum); err != nil {
			return fmt.Errorf("index file %s: %w; it is not copied (PUT it again from a mirror that has it)", n, err)
		}
		if ok, err := dst.has(ctx, sha); err != nil || ok {
			if err != nil {
				return err
			}
			continue
		}
		f, err := os.Open(n)
		if err != nil {
			return err
		}
		err = dst.bucket.put(ctx, dst.key(sum)+strings.TrimPrefix(filepath.Base(n), sum), f)
		f.Close()
		if err != nil {
			return fmt.Errorf("copy index file %s to the bucket: %w", n, err)
		}
	}
	return nil
}

// checkStored reads a stored version back and checks it hashes to its name.
func checkStored(ctx context.Context, s indexFiles, sum string) error {
	r, err := s.open(ctx, sum)
	if err != nil {
		return err
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return fmt.Errorf("the stored bytes have sha256 %s", got)
	}
	return nil
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
