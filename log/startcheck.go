package log

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
	"github.com/CPAN-Security/cpan-tlog/log/index"
)

// The checks a start makes, each in time independent of the log's size
// but the last, which is linear in the number of index file versions (a
// stat each, a HEAD on S3): what check-data checks in full, the start
// checks where it is cheap, refusing what cannot be repaired and
// rebuilding what can.

// checkTreeOnStart refuses a published tree that Tessera's private state
// does not match (see checkTreeState). It returns the state.
func checkTreeOnStart(ctx context.Context, cfg Config, published []byte, vkey string) (treeState, error) {
	st, err := readTreeState(ctx, cfg)
	if err != nil || published == nil {
		return st, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return st, err
	}
	cp, _, _, err := flog.ParseCheckpoint(published, v.Name(), v)
	if err != nil {
		return st, err // checkIdentity said it verifies
	}
	return st, checkTreeState(cfg, cp, st)
}

// matchIndex checks that the lookup index is this tree's: no larger than
// the tree, and its last entry the tree's. On POSIX one that is not is
// moved aside and a new one is built (it is derived); on S3, where every
// writer shares it, the start is refused with what to do.
func matchIndex(ctx context.Context, cfg Config, ix index.Store, st treeState) (index.Store, error) {
	why, err := indexMismatch(ctx, cfg, ix, st)
	if err != nil || why == "" {
		return ix, err
	}
	if cfg.Storage == StorageS3 {
		ix.Close()
		return nil, fmt.Errorf("the lookup index in the database is not this tree's (%s): it is derived; with every writer stopped, empty it (DELETE FROM cpantlog_index_leaves; DELETE FROM cpantlog_index_meta) and start one writer, which rebuilds it; nothing was changed", why)
	}
	if err := ix.Close(); err != nil {
		return nil, err
	}
	live := filepath.Join(cfg.DataDir, IndexFile)
	aside := fmt.Sprintf("%s.not-this-tree.%d", live, time.Now().Unix())
	if err := os.Rename(live, aside); err != nil {
		return nil, err
	}
	cfg.Logger.Warn("the lookup index is not this tree's; moved aside, rebuilding it from the tree", "why", why, "moved_to", aside)
	return openIndex(cfg)
}

// indexMismatch says why the lookup index is not the tree's, or "".
func indexMismatch(ctx context.Context, cfg Config, ix index.Store, st treeState) (string, error) {
	n, err := ix.Size()
	if err != nil || n == 0 {
		return "", err
	}
	if n > st.size {
		return fmt.Sprintf("it holds %d entries, the tree %d", n, st.size), nil
	}
	got, err := ix.Leaf(n - 1)
	if err != nil {
		return fmt.Sprintf("its last entry cannot be read: %v", err), nil
	}
	r, err := newStaticReader(ctx, cfg, nil)
	if err != nil {
		return "", err
	}
	for ri := range layout.Range(n-1, 1, st.size) {
		raw, err := r.ReadEntryBundle(ctx, ri.Index, ri.Partial)
		if err != nil {
			return "", fmt.Errorf("read entry bundle %d of the tree: %w", ri.Index, err)
		}
		var b api.EntryBundle
		if err := b.UnmarshalText(raw); err != nil || uint(len(b.Entries)) <= ri.First {
			return "", fmt.Errorf("entry bundle %d of the tree is damaged (run check-data)", ri.Index)
		}
		if !bytes.Equal(b.Entries[ri.First], got) {
			return fmt.Sprintf("its entry %d differs from the tree's", n-1), nil
		}
	}
	return "", nil
}

// metaIndexFilesChecked is the size of the lookup index when a start
// last found the bytes of every index file version logged below it.
const metaIndexFilesChecked = "index-files-checked"

// checkIndexFilesOnStart refuses to serve a log that lacks the bytes of an
// index file version it logged (nothing rebuilds them, and every monitor
// would report it), unless the operator says the loss is known
// (AllowMissingIndexFiles): then it warns.
//
// A start looks at the versions logged since the last start that found
// them all (metaIndexFilesChecked), and at the first and last version of
// each path whatever that says (a restore without index-files/ at all):
// a stat each, or a HEAD on S3. check-data reads every version back.
func (l *Log) checkIndexFilesOnStart(ctx context.Context) error {
	var from uint64
	if v, err := l.index.GetMeta(metaIndexFilesChecked); err != nil {
		return err
	} else if v != nil {
		from, _ = strconv.ParseUint(string(v), 10, 64)
	}
	size, err := l.index.Size()
	if err != nil {
		return err
	}
	var missing []string
	total := 0
	for _, p := range cpan.IndexPaths {
		recs, err := l.index.ByPath(p)
		if err != nil {
			return fmt.Errorf("list the logged index file versions: %w", err)
		}
		for i, r := range recs {
			if r.Entry.Kind != entry.Index || (r.Index < from && i != 0 && i != len(recs)-1) {
				continue
			}
			total++
			ok, err := l.indexFiles.has(ctx, r.Entry.SHA256)
			if err != nil {
				return fmt.Errorf("look for the bytes of index file versions: %w", err)
			}
			if !ok {
				missing = append(missing, fmt.Sprintf("%s version %d (sha256 %s)", p, r.Index, hex.EncodeToString(r.Entry.SHA256[:])))
			}
		}
	}
	if len(missing) == 0 {
		if size == from {
			return nil
		}
		return l.index.PutMeta(metaIndexFilesChecked, []byte(strconv.FormatUint(size, 10)))
	}
	shown := strings.Join(missing[:min(3, len(missing))], ", ")
	if len(missing) > 3 {
		shown += fmt.Sprintf(" and %d more", len(missing)-3)
	}
	if l.cfg.AllowMissingIndexFiles {
		l.cfg.Logger.Warn("serving without the bytes of logged index file versions (--allow-missing-index-files): monitors report each as index-version-unavailable", "missing", len(missing), "of", total, "first", missing[0])
		return nil
	}
	return fmt.Errorf("the bytes of %d of the %d logged index file versions looked at are missing: %s. Nothing rebuilds them (a mirror keeps only the current version) and every monitor would report each as a security finding: restore %s/ from the backup (run 'cpantlog-server check-data' on the restore). A version lost for good is an incident: announce it, then start with --allow-missing-index-files; nothing was changed",
		len(missing), total, shown, IndexFilesDir)
}
