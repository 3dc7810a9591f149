package log

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	tclient "github.com/transparency-dev/tessera/client"

	"github.com/CPAN-Security/cpan-tlog/client/tlogproof"
	"github.com/CPAN-Security/cpan-tlog/internal/atomicfile"
	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// ProofsDir is the directory in the data directory that holds the proof
// tree: ProofsDir/tlog/proofs/<CPAN path>[.<sha256>].tlog-proof, the layout
// a mirror publishes (cpan.ProofPath).
const ProofsDir = "proofs"

// metaProofs is how many entries the proof tree covers.
const metaProofs = "proofs-written"

// WriteProofs brings the proof tree up to the latest checkpoint, if that
// checkpoint meets the log's witness policy: for every upload and index
// entry not covered yet it writes a c2sp.org/tlog-proof (the leaf in extra,
// the cosigned checkpoint) once, atomically, and never again. It returns
// how many proofs it wrote.
func (l *Log) WriteProofs(ctx context.Context) (int, error) {
	cp, err := l.reader.ReadCheckpoint(ctx)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if l.quorum != nil && !l.quorum.Satisfied(cp) {
		return 0, nil // published without the quorum (fail open): not proof material
	}
	c, err := l.parseCheckpoint(cp)
	if err != nil {
		return 0, err
	}
	var done uint64
	if v, err := l.index.GetMeta(metaProofs); err != nil {
		return 0, err
	} else if v != nil {
		done, _ = strconv.ParseUint(string(v), 10, 64)
	}
	indexed, err := l.index.Size()
	if err != nil {
		return 0, err
	}
	upto := min(c.Size, indexed)
	if done >= upto {
		return 0, nil
	}
	pb, err := tclient.NewProofBuilder(ctx, c.Size, l.reader.ReadTile)
	if err != nil {
		return 0, err
	}
	root := filepath.Join(l.cfg.DataDir, ProofsDir)
	written, lastDir := 0, ""
	for idx := done; idx < upto; idx++ {
		// Adds come first: the proof tree is derived and lags by design,
		// and its file creations contend with Tessera's for the file
		// system's journal. It catches up when adds pause.
		for len(l.inflight) > 0 && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		if err := ctx.Err(); err != nil {
			return written, err // the files written stay; the next pass skips them
		}
		leaf, err := l.index.Leaf(idx)
		if err != nil {
			return written, err
		}
		e, err := entry.Parse(leaf)
		if err != nil || e.Kind == entry.Delete {
			continue
		}
		name := filepath.Join(root, filepath.FromSlash(cpan.ProofPath(e.Path, e.SHA256)))
		if old, err := os.ReadFile(name); err == nil {
			if p, err := tlogproof.Parse(old); err == nil && p.Index == idx && bytes.Equal(p.Extra, leaf) {
				continue // written once, never changed
			}
			// Left empty or cut short by a crash before the pass synced
			// (see below): written again.
		}
		hashes, err := pb.InclusionProof(ctx, idx)
		if err != nil {
			return written, err
		}
		b, err := (&tlogproof.Proof{Extra: leaf, Index: idx, InclusionProof: hashes, Checkpoint: cp}).Marshal()
		if err != nil {
			return written, err
		}
		if d := filepath.Dir(name); d != lastDir {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return written, err
			}
			lastDir = d
		}
		// One fsync per proof file competed with Tessera's for the disk
		// (a fifth of the server's time under load): the files of a pass
		// are made durable together, before the pass is recorded done.
		if err := atomicfile.WriteUnsynced(name, b, 0o644); err != nil {
			return written, err
		}
		written++
	}
	if written > 0 {
		if err := atomicfile.SyncFS(root); err != nil {
			return written, err
		}
	}
	return written, l.index.PutMeta(metaProofs, []byte(strconv.FormatUint(upto, 10)))
}

// writeProofs keeps the proof tree up to date until ctx ends.
func (l *Log) writeProofs(ctx context.Context) {
	t := time.NewTicker(max(l.cfg.CheckpointInterval, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := l.WriteProofs(ctx); err != nil && ctx.Err() == nil {
			l.cfg.Logger.Warn("proof tree not brought up to date; retrying", "err", err)
		}
	}
}

// handleProofTree serves the proof tree: files only, never a listing.
func (l *Log) handleProofTree(w http.ResponseWriter, r *http.Request) {
	rel := strings.TrimPrefix(r.URL.Path, "/")
	if !strings.HasPrefix(rel, cpan.ProofsDir) || !strings.HasSuffix(rel, ".tlog-proof") || strings.Contains(rel, "..") || strings.Contains(rel, "//") {
		httpError(w, http.StatusNotFound, "no such proof")
		return
	}
	b, err := os.ReadFile(filepath.Join(l.cfg.DataDir, ProofsDir, filepath.FromSlash(rel)))
	if errors.Is(err, fs.ErrNotExist) {
		httpError(w, http.StatusNotFound, "no proof published for that file (yet): proofs appear once a witnessed checkpoint covers the entry")
		return
	}
	if err != nil {
		l.internalError(w, "reading the proof", err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Write(b)
}

// PublishProofs copies the proof tree of the log in dataDir into a CPAN
// mirror's root (as tlog/proofs/...), for its rsync: only files the target
// lacks, each written atomically, so it is idempotent and resumable.
func PublishProofs(dataDir, to string) (copied, kept int, err error) {
	src := filepath.Join(dataDir, ProofsDir)
	if _, err := os.Stat(src); err != nil {
		return 0, 0, fmt.Errorf("no proof tree in %s (is it a cpan-tlog data directory whose server has run?): %w", dataDir, err)
	}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".tlog-proof") {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		dst := filepath.Join(to, rel)
		if _, err := os.Stat(dst); err == nil {
			kept++
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := atomicfile.WriteNew(dst, b, 0o644); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		copied++
		return nil
	})
	return copied, kept, err
}
