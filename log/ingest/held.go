package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client/sigstore"
	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// A .sigstore.json bundle is checked against the file it signs as logged.
// RECENT may list a bundle before its file (Beacon-3.1's came 10 s before
// the tarball); logged then, it would be a plain upload and the release
// would look unsigned for good. The follower holds such a bundle instead,
// in the log's index beside its position (so a restart forgets nothing and
// the position can move on), and logs it once its file is logged; one
// whose file does not come within heldGrace is logged plain, as before,
// with the reason.

// heldGrace is how long, by this machine's clock, a bundle waits for its
// file.
var heldGrace = time.Hour

// maxHeld bounds the bundles held at once: past it the oldest is logged
// plain. A mirror cannot grow the list without bound.
const maxHeld = 1000

// heldBundle is a bundle listed by RECENT whose file was not logged yet.
type heldBundle struct {
	Path  string    `json:"path"`
	Epoch string    `json:"epoch"` // its RECENT event's
	Since time.Time `json:"since"` // when it was first held, this machine's clock
}

// errHeld says a bundle was held, not logged.
var errHeld = errors.New("held until the file it signs is logged")

func (f *Follower) heldKey() string { return "follow-held:" + f.Mirror }

func (f *Follower) held() ([]heldBundle, error) {
	b, err := f.Log.Index().GetMeta(f.heldKey())
	if err != nil || b == nil {
		return nil, err
	}
	var hs []heldBundle
	if err := json.Unmarshal(b, &hs); err != nil {
		return nil, fmt.Errorf("the follower's held bundles (%s in the index): %w", f.heldKey(), err)
	}
	return hs, nil
}

func (f *Follower) putHeld(hs []heldBundle) error {
	if f.heldHook != nil {
		f.heldHook(hs)
	}
	b, err := json.Marshal(hs)
	if err != nil {
		return err
	}
	return f.Log.Index().PutMeta(f.heldKey(), b)
}

// mustWait reports whether p is a bundle (to be checked: the log has a
// Sigstore trusted root) of a file the log does not hold yet.
func (f *Follower) mustWait(p string) (bool, error) {
	sibling, ok := strings.CutSuffix(p, sigstore.BundleSuffix)
	if !ok || !f.Log.VerifiesSigstore() {
		return false, nil
	}
	recs, err := f.Log.History(sibling)
	if err != nil {
		return false, err
	}
	for _, r := range recs {
		if r.Entry.Kind == entry.Upload {
			return false, nil
		}
	}
	return true, nil
}

// hold records ev's bundle as held, durably, before the position moves
// past it. With maxHeld held already, the oldest is logged plain first: a
// mirror listing many bundles grows neither the list nor the work of
// each hold.
func (f *Follower) hold(ctx context.Context, ev cpan.RecentEvent, sums map[string]map[string]cpan.Checksum) error {
	hs, err := f.held()
	if err != nil {
		return err
	}
	for _, h := range hs {
		if h.Path == ev.Path {
			return nil
		}
	}
	for len(hs) >= maxHeld {
		if err := f.release(ctx, hs[0], sums, fmt.Sprintf("more than %d bundles held", maxHeld)); err != nil {
			return err
		}
		hs = hs[1:]
	}
	hs = append(hs, heldBundle{Path: ev.Path, Epoch: ev.Epoch.String(), Since: time.Now().UTC()})
	f.Logger.Info("follow: Sigstore bundle listed before the file it signs; held until that file is logged", "path", ev.Path)
	return f.putHeld(hs)
}

// release logs the held bundle h: annotated if its file is logged by
// now, else as a plain upload, saying why (because). A bundle gone from
// the mirror or refused is dropped (uploadEntry says so).
func (f *Follower) release(ctx context.Context, h heldBundle, sums map[string]map[string]cpan.Checksum, because string) error {
	epoch, err := cpan.ParseEpoch(h.Epoch)
	if err != nil {
		f.Logger.Error("follow: a held bundle's epoch does not parse; dropped", "path", h.Path, "err", err)
		return nil
	}
	if wait, err := f.mustWait(h.Path); err != nil {
		return err
	} else if wait {
		f.Logger.Warn("follow: "+because+"; logging the held Sigstore bundle as a plain upload", "path", h.Path, "held since", h.Since)
	}
	e, err := f.uploadEntry(ctx, cpan.RecentEvent{Epoch: epoch, Path: h.Path, Type: "new"}, sums)
	if err != nil {
		return fmt.Errorf("held bundle %s: %w", h.Path, err)
	}
	if e == nil {
		return nil
	}
	return f.add(ctx, e)
}

// releaseHeld logs the held bundles whose file is now logged, and those
// that waited past heldGrace (or beyond maxHeld) as plain uploads.
func (f *Follower) releaseHeld(ctx context.Context, sums map[string]map[string]cpan.Checksum) error {
	hs, err := f.held()
	if err != nil || len(hs) == 0 {
		return err
	}
	var keep []heldBundle
	for i, h := range hs {
		wait, err := f.mustWait(h.Path)
		if err != nil {
			return err
		}
		if wait && time.Since(h.Since) <= heldGrace && len(hs)-i <= maxHeld {
			keep = append(keep, h)
			continue
		}
		if err := f.release(ctx, h, sums, "the file it signs was never logged"); err != nil {
			return err
		}
	}
	return f.putHeld(keep)
}
