package monitor

import (
	"encoding/hex"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// Router receives what the audit finds, for people other than the
// operator (see package monitor/community).
type Router interface {
	// Route files events in tx: the transaction that records the same
	// findings in the outbox and, for entries, the audit's new position.
	// An error aborts the transaction, so the batch is audited (and
	// routed) again: what a Router files commits exactly once.
	Route(tx *bolt.Tx, events []Event) error
}

// Event is one thing the audit saw: exactly one field is set.
type Event struct {
	// Finding is a new finding, as it goes to the operator's outbox.
	Finding *Finding
	// Upload is a logged upload or deletion of a file.
	Upload *Upload
}

// Upload is an upload or deletion entry as the audit read it. Everything
// in it is what the log recorded (checked against the tree), nothing more.
type Upload struct {
	Index uint64
	Time  time.Time // the entry's time
	Kind  string    // "add" or "delete"
	Path  string
	// SHA256 (hex) and Size of the file uploaded; empty for a deletion.
	SHA256 string
	Size   uint64
	// Uploader is the PAUSE id that submitted it ("" for a deletion);
	// Author the PAUSE id whose directory holds the path.
	Uploader, Author string
	// Dist and Version are CPAN::DistnameInfo's of the path ("" when it
	// is not a distribution's archive).
	Dist, Version string
	// Signs, for the upload of a Sigstore bundle (.sigstore.json), is the
	// path of the file it signs; Identity is what the log recorded of the
	// bundle's signer, nil when it recorded none (the bundle did not
	// verify at ingest).
	Signs    string
	Identity *Identity
}

// Identity is a Sigstore signer as the log records it.
type Identity struct {
	Issuer, SAN, SourceRepo, BuildConfig string
	// ArtifactSHA256 (hex) is the digest of the file the bundle signs,
	// as the log recorded it: a Router compares it with the file's.
	ArtifactSHA256 string
}

// UploadAdd and UploadDelete are the kinds of an Upload.
const (
	UploadAdd    = "add"
	UploadDelete = "delete"
)

// SetRouter sets the Router (Config.Router) of a monitor not syncing yet:
// a Router that keeps its own state in DB can only be made after New.
func (m *Monitor) SetRouter(r Router) {
	m.cfg.Router, m.st.router = r, r
}

// DB is the monitor's state file, for a Router's own transactions (its
// buckets must not collide with the monitor's: see state.go).
func (m *Monitor) DB() *bolt.DB { return m.st.db }

// noteUpload remembers an upload or deletion entry for the Router, with
// the batch it is audited in (see commitBatch).
func (m *Monitor) noteUpload(idx uint64, e *entry.Entry, info cpan.DistInfo) {
	u := Upload{Index: idx, Time: e.Time, Kind: UploadAdd, Path: e.Path, Uploader: e.Uploader,
		Author: owner(strings.TrimPrefix(e.Path, cpan.AuthorsPrefix)), Dist: info.Dist, Version: info.Version}
	if e.Kind == entry.Delete {
		u.Kind = UploadDelete
	} else {
		u.SHA256, u.Size = hex.EncodeToString(e.SHA256[:]), e.Size
	}
	if sibling, ok := strings.CutSuffix(e.Path, bundleSuffix); ok && e.Kind == entry.Upload {
		si := cpan.ParseDistInfo(sibling)
		u.Signs, u.Dist, u.Version = sibling, si.Dist, si.Version
		if s := e.Sigstore; s != nil {
			u.Identity = &Identity{Issuer: s.Issuer, SAN: s.SAN, SourceRepo: s.SourceRepo, BuildConfig: s.BuildConfig,
				ArtifactSHA256: hex.EncodeToString(s.ArtifactSHA256[:])}
		}
	}
	m.st.batchUploads = append(m.st.batchUploads, u)
}

// withSubjects fills in whom a finding about a file in an author
// directory concerns, when the rule that made it did not say.
func withSubjects(f Finding) Finding {
	if len(f.Authors) > 0 || !strings.HasPrefix(f.Path, cpan.AuthorsPrefix) {
		return f
	}
	if id := owner(strings.TrimPrefix(f.Path, cpan.AuthorsPrefix)); id != "" {
		f.Authors = []string{id}
	}
	if len(f.Dists) == 0 {
		if d := cpan.ParseDistInfo(strings.TrimSuffix(f.Path, bundleSuffix)).Dist; d != "" {
			f.Dists = []string{d}
		}
	}
	return f
}

// subjects is the sorted set of the non-empty names given.
func subjects(names ...string) []string {
	var out []string
	for _, n := range names {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}
