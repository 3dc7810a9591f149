package memory

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/CPAN-Security/cpan-tlog/log/decide"
	"github.com/CPAN-Security/cpan-tlog/log/decide/decidetest"
	"github.com/CPAN-Security/cpan-tlog/log/index"
)

// followerDuringLookup is the real lookup index whose ByPath, once armed,
// lets the follower index the pending entries and report them (Indexing,
// Append, Indexed, as log's follower does) right after the index was read
// and before ByPath returns: the follower takes no path lock, so nothing
// orders its work against a decision's reads.
type followerDuringLookup struct {
	index.Store
	once   sync.Once
	armed  bool
	follow func()
}

func (f *followerDuringLookup) ByPath(p string) ([]index.Record, error) {
	recs, err := f.Store.ByPath(p)
	if f.armed {
		f.once.Do(f.follow)
	}
	return recs, err
}

// TestHostileFollowerBetweenIndexAndPending: an entry acknowledged but not
// indexed is in pending; the follower indexes it and forgets it from
// pending between a decision's read of the index and its read of pending.
// The decision must still see it: other content at the path is refused.
func TestHostileFollowerBetweenIndexAndPending(t *testing.T) {
	ix, err := index.Open(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	f := &followerDuringLookup{Store: ix}
	d, err := New(f, 0)
	if err != nil {
		t.Fatal(err)
	}
	const p = "authors/id/T/TE/TEST/Race-1.tar.gz"
	e1, l1 := decidetest.Upload(p, 1)
	e2, l2 := decidetest.Upload(p, 2)
	ds, err := d.Decide(t.Context(), []decide.Request{{Entry: e1, Leaf: l1, Rule: decidetest.OneContent(l1, nil)}})
	if err != nil || ds[0].Kind != decide.New {
		t.Fatalf("first decision: %+v %v", ds, err)
	}
	d.Sequenced(t.Context(), []decide.Outcome{{Ticket: ds[0].Ticket, Index: 0, Queued: true}})
	f.follow = func() {
		d.Indexing([][]byte{l1})
		if _, err := ix.Append(0, [][]byte{l1}); err != nil {
			t.Error(err)
		}
		d.Indexed(1)
	}
	f.armed = true
	ds, err = d.Decide(t.Context(), []decide.Request{{Entry: e2, Leaf: l2, Rule: decidetest.OneContent(l2, nil)}})
	if err != nil {
		t.Fatal(err)
	}
	if ds[0].Kind != decide.Refused {
		if ds[0].Ticket != nil {
			d.Sequenced(t.Context(), []decide.Outcome{{Ticket: ds[0].Ticket, Err: err}})
		}
		t.Fatalf("other content at %s while the follower indexed the first: %+v, want refused", p, ds[0])
	}
}
