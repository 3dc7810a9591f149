package log

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	tclient "github.com/transparency-dev/tessera/client"

	"github.com/CPAN-Security/cpan-tlog/client/tlogproof"
	"github.com/CPAN-Security/cpan-tlog/internal/atomicfile"
	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
	"github.com/CPAN-Security/cpan-tlog/log/index"
)

// ProofsDir is the directory in the data directory that holds the proof
// tree: ProofsDir/tlog/proofs/<CPAN path>[.<sha256>].tlog-proof, the layout
// a mirror publishes (cpan.ProofPath).
const ProofsDir = "proofs"

// metaProofs is how many entries the proof tree covers.
const metaProofs = "proofs-written"

// metaProofsPolicy is the witness policy (its sha256) the proof tree was
// written under: when the log's policy changes, every proof is checked
// again and one whose checkpoint does not meet the new policy (written
// before witnesses were configured, or by an offline import) is written
// again against a checkpoint that does.
const metaProofsPolicy = "proofs-policy"

// localMeta names a meta value about this writer's data directory (its
// proof tree): with several writers on one database index, each keeps
// its own copy of the proof tree and its own progress.
func (l *Log) localMeta(key string) string {
	if l.writer == "" {
		return key
	}
	return key + "@" + l.writer
}

// policyID names the log's witness policy for metaProofsPolicy.
func (l *Log) policyID() string {
	if l.quorum == nil {
		return "none"
	}
	return fmt.Sprintf("%x", sha256.Sum256(l.cfg.WitnessPolicy))
}

// WriteProofs brings the proof tree up to the latest checkpoint, if that
// checkpoint meets the log's witness policy: for every upload and index
// entry not covered yet it writes a c2sp.org/tlog-proof (the leaf in extra,
// the cosigned checkpoint) once, atomically, and never again. It returns
// how many proofs it wrote.
func (l *Log) WriteProofs(ctx context.Context) (int, error) {
	// One pass at a time: the proof writer's loop and a caller (a test,
	// a command) would otherwise write the same files at once.
	l.proofsMu.Lock()
	defer l.proofsMu.Unlock()
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
	if v, err := l.index.GetMeta(l.localMeta(metaProofs)); err != nil {
		return 0, err
	} else if v != nil {
		done, _ = strconv.ParseUint(string(v), 10, 64)
	}
	// Under a new policy every proof is looked at again (once): those at a
	// checkpoint the policy does not accept are rewritten below.
	recheck := false
	if v, err := l.index.GetMeta(l.localMeta(metaProofsPolicy)); err != nil {
		return 0, err
	} else if string(v) != l.policyID() {
		if done > 0 {
			l.cfg.Logger.Info("the witness policy changed: checking every proof against it and rewriting those it does not accept", "proofs", done)
		}
		done, recheck = 0, true
	}
	indexed, err := l.index.Size()
	if err != nil {
		return 0, err
	}
	upto := min(c.Size, indexed)
	repairs := l.takeRepairs()
	if done >= upto && len(repairs) == 0 {
		return 0, nil
	}
	pb, err := tclient.NewProofBuilder(ctx, c.Size, l.reader.ReadTile)
	if err != nil {
		l.requeueRepairs(repairs)
		return 0, err
	}
	root := filepath.Join(l.cfg.DataDir, ProofsDir)
	written, lastDir := 0, ""
	repaired, err := l.repairProofs(ctx, repairs, upto, func(idx uint64, leaf []byte, name string) error {
		hashes, err := pb.InclusionProof(ctx, idx)
		if err != nil {
			return err
		}
		b, err := (&tlogproof.Proof{Extra: leaf, Index: idx, InclusionProof: hashes, Checkpoint: cp}).Marshal()
		if err != nil {
			return err
		}
		return atomicfile.Write(name, b, 0o644)
	})
	if err != nil {
		return repaired, err
	}
	written += repaired
	if done >= upto {
		return written, nil
	}
	for idx := done; idx < upto; idx++ {
		// Adds come first: the proof tree is derived and lags by design,
		// and its file creations contend with Tessera's for the file
		// system's journal. It catches up when adds pause.
		for l.addsInFlight() && ctx.Err() == nil {
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
		if old, err := readProofFile(name); err == nil {
			if p, err := tlogproof.Parse(old); err == nil && p.Index == idx && bytes.Equal(p.Extra, leaf) &&
				(!recheck || l.quorum == nil || l.quorum.Satisfied(p.Checkpoint)) {
				continue // written once, never changed
			}
			// Left empty or cut short by a crash before the pass synced
			// (see below), or at a checkpoint the policy does not accept:
			// written again.
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
	if err := l.index.PutMeta(l.localMeta(metaProofs), []byte(strconv.FormatUint(upto, 10))); err != nil {
		return written, err
	}
	if recheck {
		return written, l.index.PutMeta(l.localMeta(metaProofsPolicy), []byte(l.policyID()))
	}
	return written, nil
}

// takeRepairs returns and forgets the proof files queued for repair.
func (l *Log) takeRepairs() []string {
	l.repairMu.Lock()
	defer l.repairMu.Unlock()
	out := make([]string, 0, len(l.repairs))
	for rel := range l.repairs {
		out = append(out, rel)
	}
	clear(l.repairs)
	return out
}

func (l *Log) requeueRepairs(rels []string) {
	for _, rel := range rels {
		l.queueRepair(rel)
	}
}

// queueRepair asks the proof writer to write rel (a name under the proof
// tree, tlog/proofs/...) again.
func (l *Log) queueRepair(rel string) {
	l.repairMu.Lock()
	defer l.repairMu.Unlock()
	if l.repairs == nil {
		l.repairs = map[string]bool{}
	}
	l.repairs[rel] = true
}

// repairProofs writes again each damaged proof file of rels whose entry
// is below upto (the entries the tree covers), with write. A name that no
// logged entry owns is removed.
func (l *Log) repairProofs(ctx context.Context, rels []string, upto uint64, write func(idx uint64, leaf []byte, name string) error) (int, error) {
	root := filepath.Join(l.cfg.DataDir, ProofsDir)
	n := 0
	for i, rel := range rels {
		if err := ctx.Err(); err != nil {
			l.requeueRepairs(rels[i:])
			return n, err
		}
		name := filepath.Join(root, filepath.FromSlash(rel))
		path, sha, perContent, ok := cpan.ParseProofPath(rel)
		if !ok {
			continue
		}
		history, err := l.history(path)
		if err != nil {
			l.requeueRepairs(rels[i:])
			return n, err
		}
		var owner *index.Record
		for j := range history {
			e := history[j].Entry
			if history[j].Index < upto && e.Kind != entry.Delete && (!perContent || e.SHA256 == sha) {
				owner = &history[j]
			}
		}
		if owner == nil {
			os.Remove(name) // no logged entry is proven by this name
			continue
		}
		if old, err := readProofFile(name); err == nil && proofIntact(old, owner.Index, owner.Leaf) {
			continue
		}
		if err := write(owner.Index, owner.Leaf, name); err != nil {
			l.requeueRepairs(rels[i:])
			return n, err
		}
		l.cfg.Logger.Warn("proof file was damaged on disk; written again", "proof", rel, "index", owner.Index)
		n++
	}
	return n, nil
}

// proofIntact reports whether b is a whole tlog-proof of the entry leaf at
// idx.
func proofIntact(b []byte, idx uint64, leaf []byte) bool {
	p, err := tlogproof.Parse(b)
	return err == nil && p.Index == idx && bytes.Equal(p.Extra, leaf)
}

// proofFileIntact reports whether b, read from the proof tree at rel,
// parses as a tlog-proof of an entry at the path rel names.
func proofFileIntact(rel string, b []byte) bool {
	path, sha, perContent, ok := cpan.ParseProofPath(rel)
	if !ok {
		return false
	}
	p, err := tlogproof.Parse(b)
	if err != nil {
		return false
	}
	e, err := entry.Parse(p.Extra)
	return err == nil && e.Path == path && (!perContent || e.SHA256 == sha)
}

// sweepProofs reads every file of the proof tree once and queues the
// damaged ones for repair: a file cut short after its pass was recorded
// (a disk fault, an interrupted copy) is otherwise found only when asked
// for. It yields to adds, like the writer.
func (l *Log) sweepProofs(ctx context.Context) (checked, damaged int) {
	root := filepath.Join(l.cfg.DataDir, ProofsDir)
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".tlog-proof") {
			return ctx.Err()
		}
		for l.addsInFlight() && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		b, err := readProofFile(p)
		checked++
		if err == nil && !proofFileIntact(rel, b) {
			damaged++
			l.queueRepair(rel)
		}
		return ctx.Err()
	})
	return checked, damaged
}

// writeProofs keeps the proof tree up to date until ctx ends. It first
// checks every proof file once in the background.
func (l *Log) writeProofs(ctx context.Context) {
	go func() {
		if checked, damaged := l.sweepProofs(ctx); damaged > 0 {
			l.cfg.Logger.Warn("damaged proof files found; writing them again", "checked", checked, "damaged", damaged)
		}
		l.sweepMissingProofs(ctx)
	}()
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
	b, err := readProofFile(filepath.Join(l.cfg.DataDir, ProofsDir, filepath.FromSlash(rel)))
	if errors.Is(err, fs.ErrNotExist) {
		httpError(w, http.StatusNotFound, "no proof published for that file (yet): proofs appear once a witnessed checkpoint covers the entry")
		return
	}
	if err != nil {
		l.internalError(w, "reading the proof", err)
		return
	}
	if !proofFileIntact(rel, b) {
		// Cut short or damaged on disk: never served (and never cached
		// as immutable); the proof writer writes it again.
		l.queueRepair(rel)
		w.Header().Set("Retry-After", "5")
		httpError(w, http.StatusServiceUnavailable, "this proof file is damaged on disk and is being written again; retry in a few seconds")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Write(b)
}

// PublishProofs copies the proof tree of the log in dataDir into a CPAN
// mirror's root (as tlog/proofs/...), for its rsync: the files the target
// lacks or holds with other bytes (a copy cut short, or a proof since
// rewritten), each written atomically, so it is idempotent and resumable.
// A damaged file in the log's own tree is not copied: it is reported (the
// server rewrites it when it starts or is asked for it), and the error
// says so once the rest is copied.
func PublishProofs(dataDir, to string) (copied, kept int, err error) {
	src := filepath.Join(dataDir, ProofsDir)
	if _, err := os.Stat(src); err != nil {
		return 0, 0, fmt.Errorf("no proof tree in %s (is it a cpan-tlog data directory whose server has run?): %w", dataDir, err)
	}
	var damaged []string
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".tlog-proof") {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !proofFileIntact(filepath.ToSlash(rel), b) {
			damaged = append(damaged, rel)
			return nil
		}
		dst := filepath.Join(to, rel)
		if have, err := os.ReadFile(dst); err == nil && bytes.Equal(have, b) {
			kept++
			return nil
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := atomicfile.Write(dst, b, 0o644); err != nil {
			return err
		}
		copied++
		return nil
	})
	if err == nil && len(damaged) > 0 {
		err = fmt.Errorf("%d proof files in %s are damaged and were not copied (first: %s); the server rewrites them (it checks every proof file when it starts, and any it is asked for): restart it or fetch them through it, then publish again", len(damaged), src, damaged[0])
	}
	return copied, kept, err
}

// MissingProofs lists the files of the CPAN mirror at root whose proof the
// mirror does not publish (at root/tlog/proofs/, as PublishProofs writes
// it): every file under authors/id/ but the CHECKSUMS files (PAUSE signs
// those; the log does not hold them), and each index file of
// cpan.IndexPaths the mirror has. For an index or documentation file, whose
// proof names its content, it is the proof of the bytes the mirror holds
// now: a proof of an older version does not count. A proof file that does
// not parse, or is of another path or content, is missing too. It returns
// CPAN paths, sorted; a client that verifies with the mirror's proofs only
// (the log down) refuses to go on at each.
func MissingProofs(root string) ([]string, error) {
	var missing []string
	check := func(p, full string) error {
		var sha [32]byte // an upload's proof is named by its path alone
		if cpan.IsIndexPath(p) || cpan.MayOverwrite(p) {
			f, err := os.Open(full)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			h.Sum(sha[:0])
		}
		name := cpan.ProofPath(p, sha)
		if b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name))); err != nil || !proofFileIntact(name, b) {
			missing = append(missing, p)
		}
		return nil
	}
	base := filepath.Join(root, "authors", "id")
	err := filepath.WalkDir(base, func(full string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && full == base {
			return nil // no uploads: only the index files to look at
		}
		if err != nil || d.IsDir() || d.Name() == "CHECKSUMS" {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			// Served as the file it resolves to; a directory is walked by
			// whoever serves it, not here.
			if fi, err := os.Stat(full); err != nil || !fi.Mode().IsRegular() {
				return nil
			}
		} else if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(root, full)
		if err != nil {
			return err
		}
		return check(filepath.ToSlash(rel), full)
	})
	if err != nil {
		return nil, err
	}
	for _, p := range cpan.IndexPaths {
		full := filepath.Join(root, filepath.FromSlash(p))
		if _, err := os.Stat(full); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := check(p, full); err != nil {
			return nil, err
		}
	}
	sort.Strings(missing)
	return missing, nil
}

// maxProofFile bounds a proof file read to serve it (a tlog-proof is a
// few KiB: the entry, up to 64 hashes, the checkpoint and its
// cosignatures).
const maxProofFile = 1 << 20

// readProofFile reads a proof file to serve it: a regular file, not
// through a symlink, not waited on (a FIFO), at most maxProofFile bytes;
// the log writes no other (a crafted backup or a shared mount might).
// What else is there reads as damaged, and is written again.
func readProofFile(name string) ([]byte, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, nil // a symlink: damaged
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, nil // damaged
	}
	return io.ReadAll(io.LimitReader(f, maxProofFile))
}
