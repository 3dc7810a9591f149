package monitor

import (
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"
)

// Finding kinds. They are stable names: alerting rules and scripts match on them.
const (
	KindCheckpointBadSignature = "checkpoint-bad-signature" // security
	KindCheckpointUntrusted    = "checkpoint-untrusted"     // quorum not met, unknown key
	KindRollback               = "checkpoint-rollback"      // security
	KindFork                   = "checkpoint-fork"          // security
	KindRootMismatch           = "root-mismatch"            // security: entries do not hash to the checkpoint
	KindTileMismatch           = "tile-mismatch"            // security: a served hash tile disagrees with the entries
	KindSplitView              = "split-view"               // security: a peer saw another history
	KindStaleView              = "checkpoint-stale-view"    // security: a peer saw a newer tree the log keeps from this monitor
	KindEntryMalformed         = "entry-malformed"
	KindPathRewritten          = "path-rewritten"      // a path PAUSE never lets change logged with new content
	KindUploadAfterDelete      = "upload-after-delete" // security: such a path logged again, same content, after its delete (other content: path-rewritten)
	KindUploaderMismatch       = "uploader-mismatch"   // an upload in another author's directory
	KindWatched                = "watched"             // a --watch rule matched
	KindSigstoreChanged        = "sigstore-identity-changed"
	KindSigstoreMissing        = "sigstore-identity-missing"
	// KindLogUnauditable: the log served something the monitor cannot
	// audit (an entry bundle that does not frame or holds fewer entries
	// than its checkpoint commits to, a hash tile it does not serve or not
	// as a tile, a checkpoint too large to read, tiles that cannot prove
	// consistency). Security: whatever hides behind it is not checked.
	KindLogUnauditable = "log-unauditable"
	// KindIndexPackageAdded: a package new in an 02packages version. New
	// packages are ordinary, so it is only routed to subscribers (a
	// Router) watching its namespace, distribution or author, never filed
	// for the operator: someone registering a package in your namespace
	// is worth hearing of.
	KindIndexPackageAdded = "index-package-added"
)

// maxMessage bounds a finding's message: what the log or a mirror served
// may be quoted in it, and a hostile one would make it as long as it can.
const maxMessage = 1024

// clip shortens s to at most n bytes, saying so.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const more = "... (clipped)"
	cut := n - len(more)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + more
}

// Finding is one thing a monitor reports.
type Finding struct {
	// ID is stable for the same finding, so it is reported once.
	ID       string    `json:"id"`
	Kind     string    `json:"kind"`
	Security bool      `json:"security"`
	Index    *uint64   `json:"index,omitempty"`
	Path     string    `json:"path,omitempty"`
	Message  string    `json:"message"`
	Evidence string    `json:"evidence,omitempty"` // a file or directory holding it
	Seen     time.Time `json:"seen"`
	// Whom the finding concerns, for routing it to subscribers (package
	// monitor/community): PAUSE ids (the uploader and the directory's
	// owner; for an index change, the previous and the new owner),
	// distributions and packages.
	Authors  []string `json:"authors,omitempty"`
	Dists    []string `json:"dists,omitempty"`
	Packages []string `json:"packages,omitempty"`
	// PrevIndex is, for an index diff, the log index of the previous
	// version it was compared with (Index is the new version's).
	PrevIndex *uint64 `json:"prev_index,omitempty"`
	// RouteOnly findings go to the Router only, not to the outbox.
	RouteOnly bool `json:"-"`
}

func entryFinding(kind string, idx uint64, path, format string, args ...any) Finding {
	i := idx
	return Finding{ID: fmt.Sprintf("%s:%d", kind, idx), Kind: kind, Index: &i, Path: path, Message: clip(fmt.Sprintf(format, args...), maxMessage)}
}

// Text is the finding as one line for people.
func (f Finding) Text() string {
	sev := "finding"
	if f.Security {
		sev = "SECURITY"
	}
	s := fmt.Sprintf("%s %s: %s", sev, f.Kind, f.Message)
	if f.Evidence != "" {
		s += " (evidence: " + f.Evidence + ")"
	}
	return s
}

// JSON is the finding as one JSON line.
func (f Finding) JSON() []byte {
	b, _ := json.Marshal(f)
	return b
}
