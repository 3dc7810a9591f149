package log

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/go-sql-driver/mysql"
	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
	"github.com/CPAN-Security/cpan-tlog/log/index"
	"github.com/CPAN-Security/cpan-tlog/log/indexfiles"
	"github.com/CPAN-Security/cpan-tlog/log/prooftree"
)

// What a data directory holds, and what can be rebuilt:
//
//   - log.key, log.vkey: the log's identity. Nothing rebuilds them.
//   - the tree (tree/ on POSIX, with its hidden .state/; on S3 the bucket's
//     tiles and checkpoint plus Tessera's tables in the database). Nothing
//     rebuilds it; an older copy is a rollback.
//   - index-files/ (on S3 in the bucket): the bytes of every logged index
//     file version. Nothing rebuilds them: a mirror serves only the
//     current version.
//   - index.db (on S3 the cpantlog_index_* tables): derived from the tree;
//     the server rebuilds it on start.
//   - proofs/: derived from the tree; the server rewrites what is missing.
//   - ingest.token: a secret shared with PAUSE; a new one is made if
//     missing.

// CheckStatus grades a line of a CheckReport.
type CheckStatus string

const (
	CheckOK      CheckStatus = "ok"      // checked and right
	CheckRebuild CheckStatus = "rebuild" // wrong or missing, and the server rebuilds it on start
	CheckFail    CheckStatus = "FAIL"    // the server refuses to start: the line says what to do
)

// CheckLine is one finding of CheckData.
type CheckLine struct {
	Status CheckStatus
	What   string
}

// CheckReport is what CheckData found, in the order it looked.
type CheckReport struct {
	Dir   string // the data directory, absolute
	Lines []CheckLine
}

func (r *CheckReport) add(s CheckStatus, format string, args ...any) {
	r.Lines = append(r.Lines, CheckLine{s, fmt.Sprintf(format, args...)})
}

// Failed reports whether the server would refuse the data directory.
func (r *CheckReport) Failed() bool {
	for _, l := range r.Lines {
		if l.Status == CheckFail {
			return true
		}
	}
	return false
}

// String is the report as check-data prints it: a line per finding.
func (r *CheckReport) String() string {
	var b strings.Builder
	for _, l := range r.Lines {
		fmt.Fprintf(&b, "%-7s %s\n", l.Status, l.What)
	}
	return b.String()
}

// CheckData checks a log's data directory (and on S3 its bucket and
// database) the way a restore must be checked before it is served: the
// key verifies the tree's checkpoint; every entry of the tree can be read
// and hashes to the checkpoint's root; Tessera's private state agrees with
// it; every index file version logged has its bytes, hashing to what was
// logged; the lookup index matches the tree; the proofs are there. It
// writes nothing. The error says that it could not check (storage
// unreachable, a server holding the lookup index); otherwise the report
// says what is wrong and what to do.
func CheckData(ctx context.Context, cfg Config) (*CheckReport, error) {
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		abs = cfg.DataDir
	}
	r := &CheckReport{Dir: abs}
	if err := CheckDataDir(cfg.DataDir); err != nil {
		r.add(CheckFail, "%v", err)
		return r, nil
	}
	if _, err := os.Stat(cfg.DataDir); err != nil {
		r.add(CheckFail, "%s: %v: pass the restored data directory with --data", abs, err)
		return r, nil
	}

	// The identity.
	v, haveKey := checkKeys(r, cfg)
	if v == nil {
		return r, nil
	}
	published, where, err := publishedCheckpoint(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var cp *flog.Checkpoint
	if published == nil {
		r.add(CheckOK, "tree: no checkpoint in %s: a new log (the server creates the tree on first start)", where)
	} else if cp, _, _, err = flog.ParseCheckpoint(published, v.Name(), v); err != nil {
		r.add(CheckFail, "tree: the latest checkpoint in %s is signed by %s, not by this directory's key %s+%08x: the key and the tree are of different logs; restore %s, %s and the tree from one backup of one log",
			where, checkpointSigners(published), v.Name(), v.KeyHash(), KeyFile, VKeyFile)
		return r, nil
	}
	if cp != nil {
		r.add(CheckOK, "tree: the checkpoint in %s (size %d) verifies with %s", where, cp.Size, VKeyFile)
	}
	st, err := readTreeState(ctx, cfg)
	if err != nil {
		return nil, err
	}
	integrated := uint64(0)
	if cp != nil {
		if err := checkTreeState(cfg, cp, st); err != nil {
			r.add(CheckFail, "tree: %v", err)
			return r, nil
		}
		integrated = st.size
	}

	// The whole tree, the lookup index beside it, and what it logged.
	ix, ixWhy, err := openIndexToCheck(cfg)
	if err != nil {
		return nil, err
	}
	if ix != nil {
		defer ix.Close()
	}
	reader, err := newStaticReader(ctx, cfg, v)
	if err != nil {
		return nil, err
	}
	sc := &scan{cfg: cfg, ix: ix}
	if ix != nil {
		if sc.ixSize, err = ix.Size(); err != nil {
			return nil, err
		}
		if sc.proofsCovered, err = proofsCovered(cfg, ix); err != nil {
			return nil, err
		}
	} else {
		sc.proofsCovered = integrated
	}
	if err := sc.run(ctx, reader.ReadEntryBundle, integrated, cp, st); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		r.add(CheckFail, "tree: %v: the tree is damaged or incomplete; restore it whole from the newest backup", err)
		return r, nil
	}
	if cp != nil {
		r.add(CheckOK, "tree: all %d entries read; they hash to the checkpoint's root%s", integrated, map[bool]string{true: " and to Tessera's state", false: ""}[integrated > cp.Size])
	}

	// Index file versions: nothing rebuilds them.
	files, err := openIndexFiles(ctx, cfg)
	if err != nil {
		return nil, err
	}
	checkIndexFileBytes(ctx, r, files, sc.versions)

	// The lookup index.
	switch {
	case ix == nil:
		r.add(CheckRebuild, "lookup index: %s: the server rebuilds it from the tree on start (%d entries)", ixWhy, integrated)
	case sc.ixMismatch != "":
		r.add(CheckRebuild, "lookup index: %s: it is not this tree's; the server rebuilds it on start%s", sc.ixMismatch, ixRebuildHint(cfg))
	case sc.ixSize < integrated:
		r.add(CheckRebuild, "lookup index: holds %d of %d entries, all matching the tree: the server indexes the rest on start", sc.ixSize, integrated)
	default:
		r.add(CheckOK, "lookup index: holds all %d entries, matching the tree", integrated)
	}

	// The proofs.
	switch {
	case sc.proofsChecked == 0:
		r.add(CheckOK, "proofs: none expected yet (written once a checkpoint meeting the witness policy covers an entry)")
	case sc.proofsMissing > 0:
		r.add(CheckRebuild, "proofs: %d of %d missing or damaged (first: %s): the server writes them again after it starts, in the background",
			sc.proofsMissing, sc.proofsChecked, sc.firstMissingProof)
	default:
		r.add(CheckOK, "proofs: all %d present and whole", sc.proofsChecked)
	}
	if haveKey {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, TokenFile)); errors.Is(err, fs.ErrNotExist) {
			r.add(CheckRebuild, "%s: missing: the server makes a new one on start; give it to PAUSE (or restore the old one)", TokenFile)
		}
	}
	return r, nil
}

// checkKeys checks log.key and log.vkey and returns the verifier (nil
// when the directory cannot be checked further) and whether log.key is
// there.
func checkKeys(r *CheckReport, cfg Config) (note.Verifier, bool) {
	vb, verr := os.ReadFile(filepath.Join(cfg.DataDir, VKeyFile))
	_, kerr := os.Stat(filepath.Join(cfg.DataDir, KeyFile))
	switch {
	case errors.Is(verr, fs.ErrNotExist) && errors.Is(kerr, fs.ErrNotExist):
		r.add(CheckFail, "keys: no %s and no %s in %s: restore them from the backup (%s from its offline copy); a log's key cannot be made again", KeyFile, VKeyFile, r.Dir, KeyFile)
		return nil, false
	case verr != nil:
		r.add(CheckFail, "keys: %s: %v: restore it from the backup (it is public: any copy of it will do)", VKeyFile, verr)
		return nil, false
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(vb)))
	if err != nil {
		r.add(CheckFail, "keys: %s: %v", VKeyFile, err)
		return nil, false
	}
	if kerr != nil {
		r.add(CheckFail, "keys: no %s: only a --read-only front end can serve this directory; restore %s from its offline copy to write the log", KeyFile, KeyFile)
		return v, false
	}
	if _, _, err := loadKey(cfg.DataDir, ""); err != nil {
		r.add(CheckFail, "keys: %v", err)
		return nil, true
	}
	r.add(CheckOK, "keys: %s and %s agree: origin %s, key ID %08x", KeyFile, VKeyFile, v.Name(), v.KeyHash())
	return v, true
}

// loadKey is loadOrCreateKey for a key that must exist already.
func loadKey(dir, origin string) (note.Signer, string, error) {
	if _, err := os.Stat(filepath.Join(dir, KeyFile)); err != nil {
		return nil, "", err
	}
	return loadOrCreateKey(dir, origin)
}

// treeState is the integrated (not necessarily published) state of the
// tree that Tessera's driver keeps privately: tree/.state/treeState on
// POSIX, the IntCoord table on S3 + MySQL. Tessera builds on it: a tree
// whose state is missing is started again from size 0.
type treeState struct {
	found bool
	size  uint64
	root  []byte
	where string
}

func readTreeState(ctx context.Context, cfg Config) (treeState, error) {
	if cfg.Storage == StorageS3 {
		st := treeState{where: "the database's IntCoord table"}
		db, err := sql.Open("mysql", cfg.S3.DSN)
		if err != nil {
			return st, err
		}
		defer db.Close()
		err = db.QueryRowContext(ctx, "SELECT seq, rootHash FROM IntCoord WHERE id = 0").Scan(&st.size, &st.root)
		var me *mysql.MySQLError
		switch {
		case errors.Is(err, sql.ErrNoRows), errors.As(err, &me) && me.Number == 1146: // no such table
			return st, nil
		case err != nil:
			return st, fmt.Errorf("read Tessera's state from the database: %w", err)
		}
		st.found = true
		return st, nil
	}
	p := filepath.Join(cfg.DataDir, TreeDir, ".state", "treeState")
	st := treeState{where: p}
	raw, err := readTreeFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	size, root, ok := parseTreeState(raw)
	if !ok {
		// Judged by checkTreeState: a root of no tree matches no checkpoint.
		return treeState{found: true, where: p}, nil
	}
	return treeState{found: true, size: size, root: root, where: p}, nil
}

// parseTreeState reads Tessera's POSIX tree/.state/treeState,
// {"size":N,"root":"<base64 of 32 bytes>"}; ok is false for anything
// else (a damaged file), which no checkpoint then matches.
func parseTreeState(raw []byte) (size uint64, root []byte, ok bool) {
	var ts struct {
		Size *uint64 `json:"size"`
		Root []byte  `json:"root"`
	}
	if err := json.Unmarshal(raw, &ts); err != nil || ts.Size == nil || len(ts.Root) != 32 {
		return 0, nil, false
	}
	return *ts.Size, ts.Root, true
}

// checkTreeState refuses a tree whose private state Tessera would build
// something else on than the published checkpoint: a missing state (it
// would start the tree again from size 0, a rollback), or one behind the
// checkpoint or with another root at its size (new entries would take
// indexes already published, a fork).
func checkTreeState(cfg Config, cp *flog.Checkpoint, st treeState) error {
	restore := "restore the tree whole from one backup (on POSIX the tree/ directory with its hidden .state/, e.g. with rsync -a)"
	if cfg.Storage == StorageS3 {
		restore = "restore the database dump taken together with the bucket's copy (with every writer stopped), or the bucket copy that goes with this database"
	}
	switch {
	case !st.found:
		return fmt.Errorf("the published checkpoint has size %d but Tessera's state (%s) is missing: started so, Tessera would begin the tree again at size 0, and every client and monitor would see a rollback; %s; nothing was changed", cp.Size, st.where, restore)
	case st.size < cp.Size:
		return fmt.Errorf("Tessera's state (%s) is at size %d but the published checkpoint at %d: the state is older than the tree, and new entries would take indexes already published (a fork); %s; nothing was changed", st.where, st.size, cp.Size, restore)
	case st.size == cp.Size && !bytes.Equal(st.root, cp.Hash):
		return fmt.Errorf("Tessera's state (%s) has another root than the published checkpoint of the same size %d: it is another tree's state; %s; nothing was changed", st.where, cp.Size, restore)
	}
	return nil
}

// openIndexToCheck opens the lookup index without writing to it: nil and
// why when there is none usable (the server rebuilds it).
func openIndexToCheck(cfg Config) (index.Store, string, error) {
	if cfg.Storage == StorageS3 {
		ix, err := index.OpenMySQL(cfg.S3.DSN)
		if err != nil {
			return nil, "", fmt.Errorf("the lookup index in the database: %w", err)
		}
		return ix, "", nil
	}
	p := filepath.Join(cfg.DataDir, IndexFile)
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		return nil, IndexFile + " is missing", nil
	}
	ix, err := index.OpenReadOnly(p)
	switch {
	case errors.Is(err, index.ErrLocked):
		return nil, "", fmt.Errorf("%w: check a copy, or stop the server first", err)
	case err != nil:
		return nil, fmt.Sprintf("%s cannot be used (%v)", IndexFile, err), nil
	}
	return ix, "", nil
}

// proofsCovered is how many entries the proof tree covers by the lookup
// index's record (0 when it has none).
func proofsCovered(cfg Config, ix index.Store) (uint64, error) {
	writer := ""
	if cfg.Storage == StorageS3 {
		writer = writerID(cfg.DataDir)
	}
	key := prooftree.CoveredKey(writer)
	v, err := ix.GetMeta(key)
	if err != nil || v == nil {
		return 0, err
	}
	n, _ := strconv.ParseUint(string(v), 10, 64)
	return n, nil
}

func ixRebuildHint(cfg Config) string {
	if cfg.Storage == StorageS3 {
		return " (on S3 it is shared by every writer: stop them all first)"
	}
	return ""
}

// loggedVersion is an index file version the tree logs.
type loggedVersion struct {
	idx  uint64
	path string
	sha  [32]byte
}

// scan reads every entry of the tree once.
type scan struct {
	cfg    Config
	ix     index.Store
	ixSize uint64
	// ixMismatch says why the lookup index is not this tree's ("" if it is).
	ixMismatch string
	versions   []loggedVersion
	// proofsCovered is how many entries should have their proof.
	proofsCovered     uint64
	proofsChecked     uint64
	proofsMissing     uint64
	firstMissingProof string
}

func (s *scan) run(ctx context.Context, readBundle func(context.Context, uint64, uint8) ([]byte, error), size uint64, cp *flog.Checkpoint, st treeState) error {
	if s.ixSize > size {
		s.ixMismatch = fmt.Sprintf("it holds %d entries, the tree %d", s.ixSize, size)
	}
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	rng := rf.NewEmptyRange(0)
	checkRoot := func(n uint64, want []byte, what string) error {
		got := rfc6962.DefaultHasher.EmptyRoot()
		if n > 0 {
			var err error
			if got, err = rng.GetRootHash(nil); err != nil {
				return err
			}
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("the first %d entries hash to root %x, not to %s's %x", n, got, what, want)
		}
		return nil
	}
	if cp != nil && cp.Size == 0 {
		if err := checkRoot(0, cp.Hash, "the checkpoint"); err != nil {
			return err
		}
	}
	proofsRoot := filepath.Join(s.cfg.DataDir, ProofsDir)
	for ri := range layout.Range(0, size, size) {
		if err := ctx.Err(); err != nil {
			return err
		}
		raw, err := readBundle(ctx, ri.Index, ri.Partial)
		if err != nil {
			return fmt.Errorf("entry bundle %d: %w", ri.Index, err)
		}
		var b api.EntryBundle
		if err := b.UnmarshalText(raw); err != nil {
			return fmt.Errorf("entry bundle %d: %w", ri.Index, err)
		}
		if uint(len(b.Entries)) < ri.First+ri.N {
			return fmt.Errorf("entry bundle %d has %d entries, want at least %d", ri.Index, len(b.Entries), ri.First+ri.N)
		}
		for j, leaf := range b.Entries[ri.First : ri.First+ri.N] {
			idx := ri.Index*layout.EntryBundleWidth + uint64(ri.First) + uint64(j)
			if err := rng.Append(rfc6962.DefaultHasher.HashLeaf(leaf), nil); err != nil {
				return err
			}
			if cp != nil && idx+1 == cp.Size {
				if err := checkRoot(cp.Size, cp.Hash, "the checkpoint"); err != nil {
					return err
				}
			}
			if s.ixMismatch == "" && idx < s.ixSize {
				got, err := s.ix.Leaf(idx)
				if err != nil {
					return fmt.Errorf("lookup index: %w", err)
				}
				if !bytes.Equal(got, leaf) {
					s.ixMismatch = fmt.Sprintf("its entry %d differs from the tree's", idx)
				}
			}
			e, err := entry.Parse(leaf)
			if err != nil || e.Kind == entry.Delete {
				continue // an invalid entry is the monitors' to report
			}
			if e.Kind == entry.Index {
				s.versions = append(s.versions, loggedVersion{idx: idx, path: e.Path, sha: e.SHA256})
			}
			if idx < s.proofsCovered {
				s.proofsChecked++
				rel := cpan.ProofPath(e.Path, e.SHA256)
				if b, err := os.ReadFile(filepath.Join(proofsRoot, filepath.FromSlash(rel))); err != nil || !prooftree.FileIntact(rel, b) {
					if s.proofsMissing++; s.proofsMissing == 1 {
						s.firstMissingProof = rel
					}
				}
			}
		}
	}
	if st.found && size > 0 && (cp == nil || size > cp.Size) {
		return checkRoot(size, st.root, "Tessera's state")
	}
	return nil
}

// checkIndexFileBytes reads every logged index file version back and
// checks it hashes to what was logged.
func checkIndexFileBytes(ctx context.Context, r *CheckReport, files indexFiles, versions []loggedVersion) {
	where := files.Where()
	seen := map[[32]byte]bool{}
	var bad []string
	for _, v := range versions {
		if seen[v.sha] {
			continue
		}
		seen[v.sha] = true
		sum := hex.EncodeToString(v.sha[:])
		err := files.Check(ctx, sum)
		switch {
		case errors.Is(err, fs.ErrNotExist) || notFound(err):
			bad = append(bad, fmt.Sprintf("%s version %d (sha256 %s) is missing", v.path, v.idx, sum))
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s version %d (sha256 %s): %v", v.path, v.idx, sum, err))
		}
	}
	if len(bad) == 0 {
		r.add(CheckOK, "index files: all %d logged versions are in %s and hash to what was logged", len(seen), where)
		return
	}
	shown := bad[:min(len(bad), 3)]
	more := ""
	if len(bad) > len(shown) {
		more = fmt.Sprintf("; and %d more", len(bad)-len(shown))
	}
	r.add(CheckFail, "index files: %d of %d logged versions cannot be read back from %s: %s%s. Nothing rebuilds them (a mirror keeps only the current version): restore %s/ from the backup. A version lost for good is an incident: monitors report it (index-version-unavailable); announce it, then start with --allow-missing-index-files",
		len(bad), len(seen), where, strings.Join(shown, "; "), more, IndexFilesDir)
}

// readTreeFile reads a file of the POSIX tree as check-data and the
// start checks do: a regular file only (a FIFO in its place, from a
// crafted backup or a shared mount, would make the read wait for ever),
// of at most indexfiles.MaxBytes.
func readTreeFile(p string) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	b, err := io.ReadAll(io.LimitReader(f, indexfiles.MaxBytes+1))
	if err == nil && len(b) > indexfiles.MaxBytes {
		err = fmt.Errorf("%s is larger than %d bytes", p, indexfiles.MaxBytes)
	}
	return b, err
}
