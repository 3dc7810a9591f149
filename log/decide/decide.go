// Package decide is the seam where the log decides whether an entry may
// be logged at its path: one Decider answers, for each entry of a batch,
// "new" (sequence it: here is a Ticket), "duplicate" (an identical entry
// is logged: here is its record) or "refused" (why), and is told what
// became of each ticket: sequenced at an index, or not.
//
// Its promise, whatever the implementation: between a New decision and
// its Sequenced report no other decision is taken for that path, by this
// writer or any other, so a path never gets two contents PAUSE's rules
// forbid. A writer that dies holding a ticket leaves a decision that
// stands: whoever finishes it logs the same leaf (a repeat, never a
// rewrite).
//
// Two implementations: package memory (one writer, which the data
// directory's lock makes the only one, deciding in memory) and package
// shared (any number of writers on one MySQL/MariaDB database, deciding in
// it at the cost of one row per path).
package decide

import (
	"context"
	"errors"
	"sync"

	"github.com/CPAN-Security/cpan-tlog/log/entry"
	"github.com/CPAN-Security/cpan-tlog/log/index"
)

// Rule applies PAUSE's rules to an entry given its path's history, oldest
// first: it returns the record the entry repeats, or why the entry may not
// be logged, or neither (log it).
type Rule func(history []index.Record) (dup *index.Record, err error)

// Request asks whether Leaf, Entry's leaf, may be logged at Entry.Path.
type Request struct {
	Entry *entry.Entry
	Leaf  []byte
	Rule  Rule
}

// Kind is what was decided.
type Kind int

const (
	New       Kind = iota // sequence the leaf, then report the Ticket
	Duplicate             // Existing is the identical entry already logged
	Refused               // Err says why (it may be a busy or storage error)
)

// Decision is the answer to one Request.
type Decision struct {
	Kind     Kind
	Ticket   *Ticket      // New
	Existing index.Record // Duplicate
	Err      error        // Refused
}

// Ticket is a New decision in flight: the path is held for its leaf until
// Sequenced reports it.
type Ticket struct {
	Path  string
	Leaf  []byte
	Entry *entry.Entry
	// Token is the implementation's handle (the claim's token in the
	// database; nil in memory).
	Token []byte
	// release, when set, lets the path go to the next decision.
	release func()
}

// NewTicket makes a ticket whose release lets the path go.
func NewTicket(e *entry.Entry, leaf, token []byte, release func()) *Ticket {
	return &Ticket{Path: e.Path, Leaf: leaf, Entry: e, Token: token, release: release}
}

// Release lets the path go to the next decision; once only.
func (t *Ticket) Release() {
	if t.release != nil {
		t.release()
		t.release = nil
	}
}

// Outcome reports what became of a ticket: sequenced at Index (Err nil),
// refused before it was queued (Queued false: certainly not sequenced),
// or failed after (perhaps sequenced: whoever meets the path next finds
// out).
type Outcome struct {
	Ticket *Ticket
	Index  uint64
	Err    error
	Queued bool
}

// Decider decides what may be logged at a path.
type Decider interface {
	// Decide answers each request, in order. It waits, bounded by ctx
	// and its own deadline, for decisions in flight on the same paths;
	// one still in flight then is answered Refused with ErrPathBusy. An
	// error means no decision was taken (nothing is held).
	Decide(ctx context.Context, reqs []Request) ([]Decision, error)
	// Sequenced reports the outcome of every New ticket of a Decide, and
	// releases them. It does not block on storage for long: what it
	// records it may record in the background.
	Sequenced(ctx context.Context, outs []Outcome)
	// History is every entry logged at path, oldest first, including
	// entries acknowledged but not indexed yet.
	History(ctx context.Context, path string) ([]index.Record, error)
	// Indexing sees leaves before the lookup index holds them; Indexed
	// is told the index's new size after.
	Indexing(leaves [][]byte)
	Indexed(size uint64)
	// Run does the background work (finishing dead writers' decisions)
	// until ctx ends.
	Run(ctx context.Context)
	// Wait waits for background records of outcomes already reported,
	// or until ctx ends; it reports whether they all finished.
	Wait(ctx context.Context) bool
	Close() error
}

// ErrPathBusy means another add holds the path and did not finish in
// time; retry.
var ErrPathBusy = errors.New("another writer is logging this path; retry")

// Locks serialises work per key without a lock per possible key.
type Locks struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

// keyLock is held while its channel holds a token: a wait for it can end
// at a deadline.
type keyLock struct {
	c    chan struct{}
	refs int
}

// Lock takes key's lock and returns its unlock.
func (k *Locks) Lock(key string) (unlock func()) {
	u, _ := k.LockContext(context.Background(), key)
	return u
}

// LockContext takes key's lock, or gives up when ctx ends.
func (k *Locks) LockContext(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyLock{}
	}
	kl := k.locks[key]
	if kl == nil {
		kl = &keyLock{c: make(chan struct{}, 1)}
		k.locks[key] = kl
	}
	kl.refs++
	k.mu.Unlock()
	done := func() {
		k.mu.Lock()
		if kl.refs--; kl.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
	select {
	case kl.c <- struct{}{}:
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
	return func() { <-kl.c; done() }, nil
}
