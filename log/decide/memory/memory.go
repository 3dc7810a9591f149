// Package memory decides what may be logged at a path for a log with one
// writer (POSIX: the data directory's lock makes it the only one), in
// memory: a lock per path held from the decision until Tessera has
// sequenced the leaf, a map of the entries acknowledged but not indexed
// yet (so the next decision sees them), and a filter of the paths logged
// (so a path never seen, nearly every add, does not ask the index).
//
// Its promise: one decision per path at a time, each taken on the path's
// whole history (the lookup index plus what was acknowledged since), so
// a path never gets two contents PAUSE's rules forbid.
//
// Its crash story: nothing of a decision outlives the process. A writer
// that dies between deciding and sequencing leaves a leaf Tessera either
// sequenced (durably: the lookup index catches up from the tree on the next
// start, and the next decision sees it) or never will; the client, never
// answered, retries, and its identical add is then a duplicate or logged
// once. Never a rewrite: the next start decides on the tree's history.
package memory

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"sort"
	"sync"

	"github.com/CPAN-Security/cpan-tlog/log/decide"
	"github.com/CPAN-Security/cpan-tlog/log/index"
)

// Decider is the in-memory decide.Decider of a log's only writer.
type Decider struct {
	index index.Store
	paths decide.Locks
	known *pathFilter

	mu      sync.Mutex
	pending map[string][]index.Record
}

var _ decide.Decider = (*Decider)(nil)

// New decides on ix, filling the path filter from it (one pass over the
// index's paths; capacity is a hint, e.g. twice the index's size).
func New(ix index.Store, capacity int) (*Decider, error) {
	d := &Decider{index: ix, known: newPathFilter(capacity), pending: map[string][]index.Record{}}
	if err := ix.Paths(func(p string) error { d.known.add(p); return nil }); err != nil {
		return nil, err
	}
	return d, nil
}

// Decide takes the lock of every path asked for, in path order (so that
// batches never deadlock), and decides each on the path's history. A
// New decision keeps its path locked until Sequenced.
func (d *Decider) Decide(ctx context.Context, reqs []decide.Request) ([]decide.Decision, error) {
	order := make([]int, len(reqs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return reqs[order[a]].Entry.Path < reqs[order[b]].Entry.Path })
	unlocks := make([]func(), len(reqs))
	for k, i := range order {
		if k > 0 && reqs[order[k-1]].Entry.Path == reqs[i].Entry.Path {
			continue // the caller refuses a path twice in a batch; never lock twice
		}
		unlocks[i] = d.paths.Lock(reqs[i].Entry.Path)
	}
	out := make([]decide.Decision, len(reqs))
	for i, r := range reqs {
		if unlocks[i] == nil {
			out[i] = decide.Decision{Kind: decide.Refused, Err: decide.ErrPathBusy}
			continue
		}
		h, err := d.History(ctx, r.Entry.Path)
		var dup *index.Record
		if err == nil {
			dup, err = r.Rule(h)
		}
		switch {
		case err != nil:
			unlocks[i]()
			out[i] = decide.Decision{Kind: decide.Refused, Err: err}
		case dup != nil:
			unlocks[i]()
			out[i] = decide.Decision{Kind: decide.Duplicate, Existing: *dup}
		default:
			out[i] = decide.Decision{Kind: decide.New, Ticket: decide.NewTicket(r.Entry, r.Leaf, nil, unlocks[i])}
		}
	}
	return out, nil
}

// Sequenced records the sequenced entries as pending (the index has not
// caught up with them) and lets their paths go.
func (d *Decider) Sequenced(_ context.Context, outs []decide.Outcome) {
	for _, o := range outs {
		if o.Err == nil {
			d.known.add(o.Ticket.Path)
			d.mu.Lock()
			d.pending[o.Ticket.Path] = append(d.pending[o.Ticket.Path], index.Record{Index: o.Index, Leaf: o.Ticket.Leaf, Entry: o.Ticket.Entry})
			d.mu.Unlock()
		}
		o.Ticket.Release()
	}
}

// History is the index's records of path and the pending ones. Pending is
// read first: the follower forgets an entry from it only after the index
// holds it, so an entry is in the copy of pending or in the index read
// after it. Read the other way round, an entry indexed and forgotten
// between the two reads was in neither (a second content decided).
func (d *Decider) History(_ context.Context, path string) ([]index.Record, error) {
	d.mu.Lock()
	pending := slices.Clone(d.pending[path])
	d.mu.Unlock()
	var recs []index.Record
	if len(pending) > 0 || d.known.mayContain(path) {
		var err error
		if recs, err = d.index.ByPath(path); err != nil {
			return nil, err
		}
	}
	for _, p := range pending {
		if !slices.ContainsFunc(recs, func(r index.Record) bool { return r.Index == p.Index }) {
			recs = append(recs, p)
		}
	}
	slices.SortFunc(recs, func(a, b index.Record) int { return cmp.Compare(a.Index, b.Index) })
	return recs, nil
}

// Indexing puts the paths of leaves about to be indexed into the filter.
// The index parses each leaf fully; here the path line is enough, since a
// filter that holds a string too many only costs an index lookup.
func (d *Decider) Indexing(leaves [][]byte) {
	for _, leaf := range leaves {
		_, rest, _ := bytes.Cut(leaf, []byte("\n"))
		if line, _, ok := bytes.Cut(rest, []byte("\n")); ok {
			if p, ok := bytes.CutPrefix(line, []byte("path ")); ok {
				d.known.add(string(p))
			}
		}
	}
}

// Indexed forgets pending entries below size, which the index now holds.
func (d *Decider) Indexed(size uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for p, recs := range d.pending {
		recs = slices.DeleteFunc(recs, func(r index.Record) bool { return r.Index < size })
		if len(recs) == 0 {
			delete(d.pending, p)
		} else {
			d.pending[p] = recs
		}
	}
}

// MayContain reports whether path may have been logged; false is certain.
func (d *Decider) MayContain(path string) bool { return d.known.mayContain(path) }

// Run has nothing to do in the background: no decision outlives the process.
func (d *Decider) Run(context.Context) {}

// Wait returns at once: Sequenced records in memory before it returns.
func (d *Decider) Wait(context.Context) bool { return true }

// Close does nothing; the index is the log's.
func (d *Decider) Close() error { return nil }
