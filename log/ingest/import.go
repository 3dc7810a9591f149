package ingest

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client/sigstore"
	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// ImportStats counts what an import did.
type ImportStats struct {
	Files   int // files found under authors/id (CHECKSUMS excluded)
	Logged  int // newly logged
	Skipped int // already logged
	Failed  int // refused: CHECKSUMS mismatch, conflict, invalid path
	// Unsigned counts .sigstore.json bundles that did not verify: each is
	// logged as a plain upload, with no identity (the reason is logged).
	Unsigned int
	Bytes    int64 // hashed
}

// importBatch is how many files go to the log in one Tessera batch.
var importBatch = 512

// afterBatch, when set (by tests), runs after each batch is logged.
var afterBatch func(done int)

type localFile struct {
	path  string // CPAN path
	full  string // on disk
	size  int64
	mtime time.Time
}

// Import back-fills the log from a local CPAN tree (mirror/authors/id/...)
// in a deterministic order, upload time (the file's mtime) then path,
// skipping paths already logged, so it is safe to interrupt and re-run:
// the same tree always produces the same entries. progress receives a
// line a second.
func Import(ctx context.Context, l *tlog.Log, mirror string, progress io.Writer, logger *slog.Logger) (ImportStats, error) {
	var st ImportStats
	files, err := walk(mirror, logger, &st)
	if err != nil {
		return st, err
	}
	st.Files = len(files)
	slices.SortFunc(files, func(a, b localFile) int {
		if c := a.mtime.Compare(b.mtime); c != 0 {
			return c
		}
		return cmp.Compare(a.path, b.path)
	})
	files = bundlesAfterTheirFiles(files)
	var total int64
	for _, f := range files {
		total += f.size
	}
	sums := &checksumsCache{root: mirror, logger: logger, m: map[string]map[string]cpan.Checksum{}}
	start, last := time.Now(), time.Now()
	for lo := 0; lo < len(files); lo += importBatch {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		batch := files[lo:min(lo+importBatch, len(files))]
		if err := importOne(ctx, l, batch, sums, logger, &st); err != nil {
			return st, err
		}
		if afterBatch != nil {
			afterBatch(lo + len(batch))
		}
		if time.Since(last) > time.Second || lo+importBatch >= len(files) {
			last = time.Now()
			done := lo + len(batch)
			secs := time.Since(start).Seconds()
			eta := time.Duration(float64(len(files)-done)/(float64(done)/secs)) * time.Second
			fmt.Fprintf(progress, "import: %d/%d files, %.1f MB/s, %d logged, %d already logged, %d failed, ETA %s\n",
				done, len(files), float64(st.Bytes)/secs/1e6, st.Logged, st.Skipped, st.Failed, eta.Round(time.Second))
		}
	}
	return st, importIndexes(ctx, l, mirror, logger, &st)
}

// importIndexes logs the tree's current index files, after the uploads
// they point at; the time of each version is the file's mtime. An index
// unchanged since it was last logged is a duplicate, not a new version.
func importIndexes(ctx context.Context, l *tlog.Log, mirror string, logger *slog.Logger, st *ImportStats) error {
	for _, p := range cpan.IndexPaths {
		f, err := os.Open(filepath.Join(mirror, filepath.FromSlash(p)))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		info, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		h := sha256.New()
		n, err := io.Copy(h, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		e := &entry.Entry{Kind: entry.Index, Path: p, Size: uint64(n), Time: info.ModTime().UTC().Truncate(time.Second)}
		copy(e.SHA256[:], h.Sum(nil))
		if now := time.Now(); e.Time.After(now) {
			e.Time = now.UTC().Truncate(time.Second) // a file's mtime is not evidence of the future
		}
		// The log keeps the version's bytes for auditors.
		if f, err = os.Open(filepath.Join(mirror, filepath.FromSlash(p))); err != nil {
			return err
		}
		err = l.StoreIndexFile(e.SHA256, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("store %s: %w (did it change while being imported? run import again)", p, err)
		}
		res, err := l.Add(ctx, e)
		if err != nil {
			return fmt.Errorf("log %s: %w", p, err)
		}
		st.Bytes += n
		if res.Duplicate {
			st.Skipped++
		} else {
			st.Logged++
			logger.Info("import: logged index version", "path", p, "index", res.Index)
		}
	}
	return nil
}

// walk lists the upload files under mirror/authors/id.
func walk(mirror string, logger *slog.Logger, st *ImportStats) ([]localFile, error) {
	base := filepath.Join(mirror, "authors", "id")
	if _, err := os.Stat(base); err != nil {
		return nil, fmt.Errorf("%s is not a CPAN tree (no authors/id): %w", mirror, err)
	}
	var files []localFile
	err := filepath.WalkDir(base, func(full string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(mirror, full)
		p := filepath.ToSlash(rel)
		if isChecksums(p) {
			return nil
		}
		if _, err := cpan.ValidatePath(p); err != nil {
			logger.Warn("import: not a valid upload path, skipped", "path", p, "err", err)
			st.Failed++
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, localFile{path: p, full: full, size: info.Size(), mtime: info.ModTime().UTC().Truncate(time.Second)})
		return nil
	})
	return files, err
}

// importOne hashes a batch in parallel, checks it against CHECKSUMS and
// logs what is new in one AddBatch.
func importOne(ctx context.Context, l *tlog.Log, batch []localFile, sums *checksumsCache, logger *slog.Logger, st *ImportStats) error {
	var todo []localFile
	for _, f := range batch {
		h, err := l.History(f.path)
		if err != nil {
			return err
		}
		if len(h) > 0 {
			st.Skipped++
			continue
		}
		todo = append(todo, f)
	}
	entries := make([]*entry.Entry, len(todo))
	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, f := range todo {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			entries[i], errs[i] = hashAndCheck(f, sums)
		})
	}
	wg.Wait()
	// A bundle is checked against the logged file it signs, so the files
	// whose bundles are in this batch go first; then the rest in order, each
	// bundle in its place. A release that follows a signed one without a
	// bundle is thus logged after that bundle, where a monitor knows the
	// distribution is signed and reports the missing identity; logging all
	// files before all bundles hid it.
	signed := map[string]bool{}
	for i, e := range entries {
		if errs[i] == nil {
			if sibling, ok := strings.CutSuffix(e.Path, sigstore.BundleSuffix); ok {
				signed[sibling] = true
			}
		}
	}
	var first, rest []*entry.Entry
	var restFiles []localFile
	for i, e := range entries {
		st.Bytes += todo[i].size
		if errs[i] != nil {
			st.Failed++
			logger.Error("import: not logged", "path", todo[i].path, "err", errs[i])
			continue
		}
		if signed[e.Path] {
			first = append(first, e)
		} else {
			rest = append(rest, e)
			restFiles = append(restFiles, todo[i])
		}
	}
	if err := addAll(ctx, l, first, logger, st); err != nil {
		return err
	}
	annotateBundles(l, restFiles, rest, logger, st)
	return addAll(ctx, l, rest, logger, st)
}

// bundlesAfterTheirFiles moves each .sigstore.json bundle listed before
// the file it signs (a bundle uploaded first, or with an older mtime) to
// just after that file, keeping the order of everything else: a bundle is
// checked against its file as logged, and one logged before its file was
// logged as a plain upload, its identity lost for good.
func bundlesAfterTheirFiles(files []localFile) []localFile {
	at := make(map[string]int, len(files))
	for i, f := range files {
		at[f.path] = i
	}
	// Sort keys: 2i for the file at i; 2j+1 for a bundle moved after the
	// file at j. The sort is stable, so bundles moved after one file keep
	// their order.
	key := make(map[string]int, len(files))
	for i, f := range files {
		key[f.path] = 2 * i
		if sibling, ok := strings.CutSuffix(f.path, sigstore.BundleSuffix); ok {
			if j, ok := at[sibling]; ok && j > i {
				key[f.path] = 2*j + 1
			}
		}
	}
	out := slices.Clone(files)
	slices.SortStableFunc(out, func(a, b localFile) int { return cmp.Compare(key[a.path], key[b.path]) })
	return out
}

func addAll(ctx context.Context, l *tlog.Log, add []*entry.Entry, logger *slog.Logger, st *ImportStats) error {
	if len(add) == 0 {
		return nil
	}
	_, aerrs := l.AddBatch(ctx, add)
	for i, err := range aerrs {
		var conflict *tlog.ConflictError
		switch {
		case err == nil:
			st.Logged++
		case errors.As(err, &conflict):
			st.Failed++
			logger.Error("import: conflicts with the log", "path", add[i].Path, "err", err)
		default:
			return fmt.Errorf("log %s: %w", add[i].Path, err)
		}
	}
	return nil
}

func hashAndCheck(f localFile, sums *checksumsCache) (*entry.Entry, error) {
	r, err := os.Open(f.full)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return nil, err
	}
	var sha [32]byte
	copy(sha[:], h.Sum(nil))
	if err := checkAgainst(sums.get(path.Dir(f.path)), f.path, uint64(n), sha); err != nil {
		return nil, err
	}
	return uploadEntry(f.path, uint64(n), sha, f.mtime)
}

// annotateBundles verifies the .sigstore.json files of a batch, after the
// files they sign were logged by earlier batches.
func annotateBundles(l *tlog.Log, todo []localFile, entries []*entry.Entry, logger *slog.Logger, st *ImportStats) {
	for i, e := range entries {
		if e == nil || !strings.HasSuffix(e.Path, sigstore.BundleSuffix) || !l.VerifiesSigstore() {
			continue
		}
		b, err := os.ReadFile(todo[i].full)
		if err != nil {
			logger.Warn("import: cannot read bundle", "path", e.Path, "err", err)
			st.Unsigned++
			continue
		}
		if !annotate(l, e, b, logger) {
			st.Unsigned++
		}
	}
}

// checksumsCache reads each directory's CHECKSUMS once.
type checksumsCache struct {
	root   string
	logger *slog.Logger
	mu     sync.Mutex
	m      map[string]map[string]cpan.Checksum
}

func (c *checksumsCache) get(dir string) map[string]cpan.Checksum {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[dir]; ok {
		return s
	}
	var files map[string]cpan.Checksum
	if b, err := os.ReadFile(filepath.Join(c.root, filepath.FromSlash(dir), "CHECKSUMS")); err == nil {
		var perr error
		if files, _, perr = cpan.ParseChecksums(b); perr != nil {
			c.logger.Warn("import: unreadable CHECKSUMS; files in it are logged unchecked", "dir", dir, "err", perr)
		}
	}
	c.m[dir] = files
	return files
}
