package memory

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/log/decide"
	"github.com/CPAN-Security/cpan-tlog/log/decide/decidetest"
	"github.com/CPAN-Security/cpan-tlog/log/index"
)

// TestHeldUntilSequenced: a New decision holds its path: a second
// decision of the path waits until the first is reported, then decides on
// a history that holds it (pending: the index has not caught up), and
// after Indexed on the index alone; a path never logged is not looked up.
func TestHeldUntilSequenced(t *testing.T) {
	ix, err := index.Open(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	d, err := New(ix, 0)
	if err != nil {
		t.Fatal(err)
	}
	const p = "authors/id/T/TE/TEST/Held-1.tar.gz"
	e1, l1 := decidetest.Upload(p, 1)
	e2, l2 := decidetest.Upload(p, 2)
	if d.MayContain(p) {
		t.Fatalf("%s reported as maybe logged before anything was", p)
	}
	ds, err := d.Decide(t.Context(), []decide.Request{{Entry: e1, Leaf: l1, Rule: decidetest.OneContent(l1, nil)}})
	if err != nil || ds[0].Kind != decide.New {
		t.Fatalf("first decision: %+v %v", ds, err)
	}
	second := make(chan []decide.Decision, 1)
	go func() {
		ds, _ := d.Decide(context.Background(), []decide.Request{{Entry: e2, Leaf: l2, Rule: decidetest.OneContent(l2, nil)}})
		second <- ds
	}()
	select {
	case ds := <-second:
		t.Fatalf("a second decision of the path while the first is in flight: %+v", ds)
	case <-time.After(200 * time.Millisecond):
	}
	d.Sequenced(t.Context(), []decide.Outcome{{Ticket: ds[0].Ticket, Index: 0, Queued: true}})
	if ds := <-second; ds[0].Kind != decide.Refused {
		t.Fatalf("other content after the first was sequenced: %+v, want refused", ds)
	}
	if h, err := d.History(t.Context(), p); err != nil || len(h) != 1 || h[0].Index != 0 {
		t.Fatalf("history from pending: %+v %v", h, err)
	}
	// The index takes the entry; pending forgets it; the history stays.
	d.Indexing([][]byte{l1})
	if _, err := ix.Append(0, [][]byte{l1}); err != nil {
		t.Fatal(err)
	}
	d.Indexed(1)
	if len(d.pending) != 0 {
		t.Errorf("pending after Indexed: %v", d.pending)
	}
	if h, err := d.History(t.Context(), p); err != nil || len(h) != 1 || string(h[0].Leaf) != string(l1) {
		t.Fatalf("history from the index: %+v %v", h, err)
	}
	// A ticket that failed holds nothing: the path is decided again.
	e3, l3 := decidetest.Upload("authors/id/T/TE/TEST/Held-2.tar.gz", 3)
	ds, _ = d.Decide(t.Context(), []decide.Request{{Entry: e3, Leaf: l3, Rule: decidetest.OneContent(l3, nil)}})
	d.Sequenced(t.Context(), []decide.Outcome{{Ticket: ds[0].Ticket, Err: fmt.Errorf("pushed back")}})
	ds, _ = d.Decide(t.Context(), []decide.Request{{Entry: e3, Leaf: l3, Rule: decidetest.OneContent(l3, nil)}})
	if ds[0].Kind != decide.New {
		t.Errorf("decision after a failed ticket: %+v, want New", ds)
	}
	d.Sequenced(t.Context(), []decide.Outcome{{Ticket: ds[0].Ticket, Err: fmt.Errorf("pushed back")}})
}
