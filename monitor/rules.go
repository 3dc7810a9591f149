package monitor

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/CPAN-Security/cpan-tlog/internal/confline"
	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// WatchRule is one line of a --watch file.
type WatchRule struct {
	Kind  string // "dist", "author" or "path"
	Value string
}

// ParseWatch reads a --watch file: one rule per line, '#' comments.
//
//	dist Try-Tiny                     uploads and deletions of a distribution
//	author ETHER                      anything in ETHER's directory or uploaded by ETHER
//	path authors/id/E/ET/ETHER/*.zip  paths matching a glob (Go path.Match syntax)
func ParseWatch(b []byte) ([]WatchRule, error) {
	var rules []WatchRule
	err := confline.Each("watch", b, func(f []string) error {
		if len(f) != 2 {
			return errors.New("want 'dist NAME', 'author PAUSEID' or 'path GLOB'")
		}
		r := WatchRule{Kind: f[0], Value: f[1]}
		switch r.Kind {
		case "dist":
		case "author":
			if !cpan.ValidID(r.Value) {
				return fmt.Errorf("%q is not a PAUSE id", r.Value)
			}
		case "path":
			if _, err := path.Match(r.Value, ""); err != nil {
				return fmt.Errorf("bad glob: %v", err)
			}
		default:
			return fmt.Errorf("unknown rule %q (want dist, author or path)", r.Kind)
		}
		rules = append(rules, r)
		return nil
	})
	return rules, err
}

func (r WatchRule) matches(e *entry.Entry, info cpan.DistInfo) bool {
	switch r.Kind {
	case "dist":
		return info.Dist == r.Value
	case "author":
		return info.CPANID == r.Value || e.Uploader == r.Value
	case "path":
		ok, _ := path.Match(r.Value, e.Path)
		return ok
	}
	return false
}

// identity is the Sigstore identity a distribution's releases carry.
type identity struct {
	Issuer, SAN, SourceRepo, BuildConfig string
	Index                                uint64 // the bundle entry that set it
}

func (i identity) String() string {
	s := i.SourceRepo
	if s == "" {
		s = i.SAN
	}
	return fmt.Sprintf("%s (issuer %s, build %s)", s, i.Issuer, i.BuildConfig)
}

func (i identity) same(o identity) bool {
	return i.Issuer == o.Issuer && i.SAN == o.SAN && i.SourceRepo == o.SourceRepo && i.BuildConfig == o.BuildConfig
}

// pendingRelease is a release of a distribution with a known Sigstore
// identity whose bundle has not been logged yet.
type pendingRelease struct {
	Index uint64
	Dist  string
	Time  time.Time
}

// SigstoreGrace is how long, in log time, a release may wait for its
// .sigstore.json bundle before a missing identity is reported.
const SigstoreGrace = 24 * time.Hour

const bundleSuffix = ".sigstore.json"

// checkEntry applies every per-entry rule to the leaf at idx; pathHash is
// the hash of its path under the uploads table's seed.
func (m *Monitor) checkEntry(tx *bolt.Tx, idx uint64, e *entry.Entry, err error, pathHash uint64) (out []Finding, _ error) {
	if err != nil {
		f := entryFinding(KindEntryMalformed, idx, "", "entry %d is not a valid v1 entry: %v", idx, err)
		return []Finding{f}, nil
	}
	// CPAN::DistnameInfo costs more than the rest of the checks together:
	// compute it only when a rule needs it.
	var info cpan.DistInfo
	routed := m.cfg.Router != nil && e.Kind != entry.Index
	needInfo := len(m.watch) > 0 || routed || (m.tracksDists && !strings.HasSuffix(e.Path, bundleSuffix))
	if needInfo {
		info = cpan.ParseDistInfo(e.Path)
	}
	if routed {
		m.noteUpload(idx, e, info)
		defer func() {
			// Whom the entry's findings concern: its uploader and the
			// directory's owner.
			for i := range out {
				out[i].Authors = subjects(e.Uploader, info.CPANID)
				out[i].Dists = subjects(info.Dist)
			}
		}()
	}
	for _, r := range m.watch {
		if r.matches(e, info) {
			f := entryFinding(KindWatched, idx, e.Path, "%s %s at index %d (rule: %s %s)", e.Kind, e.Path, idx, r.Kind, r.Value)
			out = append(out, f)
			break
		}
	}
	if e.Kind == entry.Index {
		// Index versions follow each other by design; what changed
		// between them is diffed after the round (--mirror).
		return out, m.queueIndex(tx, idx, e)
	}
	if e.Kind == entry.Delete {
		return out, m.recordDeletion(tx, idx, e, pathHash)
	}
	// Parse validated the path: its author directory is the third part.
	if dirID := owner(strings.TrimPrefix(e.Path, cpan.AuthorsPrefix)); dirID != e.Uploader {
		out = append(out, entryFinding(KindUploaderMismatch, idx, e.Path, "%s was uploaded by %s into %s's directory (index %d)", e.Path, e.Uploader, dirID, idx))
	}
	fs, err := m.checkUpload(idx, e, pathHash)
	if err != nil {
		return nil, err
	}
	out = append(out, fs...)
	fs, err = m.checkSigstore(tx, idx, e, info)
	return append(out, fs...), err
}

// recordDeletion marks the path's upload deleted, at idx. The deleted
// upload stays on record: a later upload of the path with other content is
// still a rewrite, and with the same content an upload after its delete.
func (m *Monitor) recordDeletion(tx *bolt.Tx, idx uint64, e *entry.Entry, pathHash uint64) error {
	uploads := m.st.uploads
	if uploads.bulk != nil {
		// What the path held is looked up at the end of the audit.
		if err := uploads.putDeferred(e.Path, pathHash, upload{Index: idx, DeferredDelete: true}); err != nil {
			return err
		}
	} else if prev, known, err := uploads.getHashed(e.Path, pathHash); err != nil {
		return err
	} else if known && !prev.Deleted {
		prev.Deleted, prev.DeletedAt = true, idx
		if err := uploads.putHashed(e.Path, pathHash, prev); err != nil {
			return err
		}
	}
	return tx.Bucket(bPending).Delete([]byte(e.Path))
}

// checkUpload reports an upload with other content than the path's
// previous one, or the same upload again after its deletion, and records it
// as the path's latest.
func (m *Monitor) checkUpload(idx uint64, e *entry.Entry, pathHash uint64) ([]Finding, error) {
	uploads := m.st.uploads
	rec := upload{Index: idx, Size: e.Size, SHA256: e.SHA256}
	if uploads.bulk != nil {
		// Checked at the end of the audit (see bulkPaths).
		return nil, uploads.putDeferred(e.Path, pathHash, rec)
	}
	prev, known, err := uploads.getHashed(e.Path, pathHash)
	if err != nil {
		return nil, err
	}
	var out []Finding
	if f, ok := uploadFinding(idx, e.Path, known, prev, rec); ok {
		out = append(out, f)
	}
	return out, uploads.putHashed(e.Path, pathHash, rec)
}

// uploadFinding is what an upload now at idx of path p says, given the
// path's latest upload prev (if known): a rewrite, an upload after its
// delete, or nothing. An entry gets one of them: with other content after
// a delete it is a rewrite (which names the delete), the graver of the two
// as clients would accept the new content. Checks as entries come and the
// deferred checks (pathHistory) share it, so both report the same words.
func uploadFinding(idx uint64, p string, known bool, prev, now upload) (Finding, bool) {
	switch {
	case !known:
		return Finding{}, false
	case rewrites(p, prev, now):
		return rewriteFinding(idx, p, prev, now), true
	case prev.Deleted && !cpan.MayOverwrite(p):
		return uploadAfterDeleteFinding(idx, p, prev), true
	}
	return Finding{}, false
}

// rewrites says whether upload now of path p, after the path's upload
// prev, changes what PAUSE never lets change. Checks as entries come and
// the deferred checks (pathHistory) share it.
func rewrites(p string, prev, now upload) bool {
	return (prev.SHA256 != now.SHA256 || prev.Size != now.Size) && !cpan.MayOverwrite(p)
}

// checkSigstore tracks each distribution's Sigstore identity: a bundle with
// another identity than the distribution's earlier releases, or a release
// whose bundle does not follow within SigstoreGrace, is a finding.
func (m *Monitor) checkSigstore(tx *bolt.Tx, idx uint64, e *entry.Entry, info cpan.DistInfo) ([]Finding, error) {
	if sibling, ok := strings.CutSuffix(e.Path, bundleSuffix); ok {
		if e.Sigstore == nil {
			return nil, nil // a bundle that did not verify at ingest: no identity to compare
		}
		dist := cpan.ParseDistInfo(sibling).Dist
		if dist == "" {
			return nil, nil
		}
		id := identity{Issuer: e.Sigstore.Issuer, SAN: e.Sigstore.SAN, SourceRepo: e.Sigstore.SourceRepo, BuildConfig: e.Sigstore.BuildConfig, Index: idx}
		var out []Finding
		var prev identity
		if getJSON(tx, bDists, dist, &prev) && !prev.same(id) {
			out = append(out, entryFinding(KindSigstoreChanged, idx, sibling, "%s is signed by %s, but earlier releases of %s were signed by %s (bundle at index %d)",
				sibling, id, dist, prev, prev.Index))
		}
		if err := tx.Bucket(bPending).Delete([]byte(sibling)); err != nil {
			return nil, err
		}
		m.tracksDists = true
		return out, putJSON(tx, bDists, dist, id)
	}
	if info.Extension == "" || info.Dist == "" {
		return nil, nil // not a release tarball, or no distribution is tracked yet
	}
	if tx.Bucket(bDists).Get([]byte(info.Dist)) != nil {
		return nil, putJSON(tx, bPending, e.Path, pendingRelease{Index: idx, Dist: info.Dist, Time: e.Time})
	}
	return nil, nil
}

// expirePending reports releases whose bundle is overdue as of log time now.
func expirePending(tx *bolt.Tx, now time.Time) ([]Finding, error) {
	var out []Finding
	var done [][]byte
	err := tx.Bucket(bPending).ForEach(func(k, v []byte) error {
		var p pendingRelease
		if getJSON(tx, bPending, string(k), &p) && now.Sub(p.Time) > SigstoreGrace {
			var id identity
			getJSON(tx, bDists, p.Dist, &id)
			out = append(out, entryFinding(KindSigstoreMissing, p.Index, string(k), "%s (index %d) has no Sigstore bundle %s after %s, but earlier releases of %s were signed by %s",
				k, p.Index, bundleSuffix, SigstoreGrace, p.Dist, id))
			done = append(done, bytes.Clone(k))
		}
		return nil
	})
	for _, k := range done {
		if err := tx.Bucket(bPending).Delete(k); err != nil {
			return nil, err
		}
	}
	return out, err
}

func bucketEmpty(tx *bolt.Tx, name []byte) bool {
	k, _ := tx.Bucket(name).Cursor().First()
	return k == nil
}
