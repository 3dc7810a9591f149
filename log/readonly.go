package log

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/tessera/api/layout"
	tclient "github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"
)

// staticReader reads a log's published resources without taking part in
// writing it: what a read-only front end serves. Its "integrated size" is
// the published checkpoint's, so the lookup index never runs ahead of what
// clients can verify.
type staticReader struct {
	get      func(ctx context.Context, path string) ([]byte, error) // os.ErrNotExist when missing
	verifier note.Verifier
}

func (r *staticReader) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	return r.get(ctx, layout.CheckpointPath)
}

func (r *staticReader) ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	return r.partialOrFull(ctx, p, func(p uint8) string { return layout.TilePath(level, index, p) })
}

func (r *staticReader) ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	return r.partialOrFull(ctx, p, func(p uint8) string { return layout.EntriesPath(index, p) })
}

// partialOrFull falls back from a partial resource to the full one, which
// replaces it once the tree grows.
func (r *staticReader) partialOrFull(ctx context.Context, p uint8, path func(uint8) string) ([]byte, error) {
	b, err := r.get(ctx, path(p))
	if p > 0 && notFound(err) {
		return r.get(ctx, path(0))
	}
	return b, err
}

func (r *staticReader) IntegratedSize(ctx context.Context) (uint64, error) {
	raw, err := r.ReadCheckpoint(ctx)
	if notFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	cp, _, _, err := flog.ParseCheckpoint(raw, r.verifier.Name(), r.verifier)
	if err != nil {
		return 0, fmt.Errorf("published checkpoint does not verify with log.vkey: %w", err)
	}
	return cp.Size, nil
}

func (r *staticReader) NextIndex(ctx context.Context) (uint64, error) { return r.IntegratedSize(ctx) }

// newStaticReader reads the tree of cfg's storage.
func newStaticReader(ctx context.Context, cfg Config, v note.Verifier) (*staticReader, error) {
	switch cfg.Storage {
	case "", StoragePOSIX:
		ff := tclient.FileFetcher{Root: filepath.Join(cfg.DataDir, TreeDir)}
		return &staticReader{verifier: v, get: func(_ context.Context, p string) ([]byte, error) {
			return readTreeFile(filepath.Join(ff.Root, filepath.FromSlash(p)))
		}}, nil
	case StorageS3:
		b, err := newBucket(ctx, cfg.S3)
		if err != nil {
			return nil, err
		}
		return &staticReader{verifier: v, get: func(ctx context.Context, p string) ([]byte, error) {
			r, err := b.get(ctx, p)
			if err != nil {
				return nil, err
			}
			defer r.Close()
			var buf bytes.Buffer
			_, err = io.Copy(&buf, io.LimitReader(r, 64<<20))
			return buf.Bytes(), err
		}}, nil
	}
	return nil, fmt.Errorf("unknown storage %q", cfg.Storage)
}

// ErrReadOnly is returned by adds on a read-only front end.
var ErrReadOnly = errors.New("this is a read-only front end: send adds to the log's writer")
