package log

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"

	"github.com/CPAN-Security/cpan-tlog/log/index"
)

// follower keeps the lookup index in step with the tree: it reads the entry
// bundles the index lacks, in order, and appends their leaves.
type follower struct {
	reader tessera.LogReader
	index  index.Store
	// passive followers never write: a read-only front end on a shared
	// database index, which the writer keeps up to date.
	passive bool
	logger  *slog.Logger
	indexed func(size uint64) // called after the index reaches size
	// indexing, when set, sees every leaf before the index holds it.
	indexing func(leaves [][]byte)
	metrics  *metrics

	wake chan struct{}
	done sync.WaitGroup
	// one is a token for the one catch-up at a time: a channel, so that a
	// catch-up waiting for another (stuck on a database lock) gives up at
	// its context's deadline.
	one chan struct{}

	// lock, on an index shared by several writers (MySQL), takes the
	// indexer lock for one background round (index.MySQL.TryIndexer);
	// nil on an index of one writer.
	lock func(context.Context) (release func(), ok bool, err error)
	// waitSize and waitFrom are what the rounds skipped for another
	// writer holding the lock last saw: the index's size, and since when
	// (zero: the last round was not skipped). Used by run's goroutine only.
	waitSize uint64
	waitFrom time.Time
	// passing says this writer indexes without the lock, its holder
	// having left the index behind (said once, not at every round).
	passing bool
}

// indexerStall is how long a background round waits for another writer
// holding the indexer lock to move the index on before indexing without
// the lock: a writer frozen (SIGSTOP) holding it keeps its session, and the
// lock, until the server's wait_timeout (20 s), and meanwhile decisions on
// a path whose entry before its last is not indexed are busy.
const indexerStall = 3 * time.Second

// indexerLock is the index's lock for taking turns at indexing, if it has one.
type indexerLock interface {
	TryIndexer(context.Context) (release func(), ok bool, err error)
}

func newFollower(r tessera.LogReader, ix index.Store, logger *slog.Logger, indexed func(uint64), m *metrics) *follower {
	f := &follower{reader: r, index: ix, logger: logger, indexed: indexed, metrics: m, wake: make(chan struct{}, 1), one: make(chan struct{}, 1)}
	if l, ok := ix.(indexerLock); ok {
		f.lock = l.TryIndexer
	}
	return f
}

// poke asks the follower to look for new entries now.
func (f *follower) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// start runs the follower until ctx ends.
func (f *follower) start(ctx context.Context) {
	f.done.Add(1)
	go f.run(ctx)
}

func (f *follower) run(ctx context.Context) {
	defer f.done.Done()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
			// Let adds integrate before reading, so that under load the
			// index takes many bundles per transaction; until then the
			// pending map answers for what was acknowledged.
			time.Sleep(200 * time.Millisecond)
		case <-t.C:
		}
		if err := f.round(ctx); err != nil && ctx.Err() == nil {
			f.logger.Error("lookup index follower", "err", err)
		}
	}
}

// round is a background catch-up. On an index shared by several writers
// they take turns (the indexer lock), so that two do not read and parse
// the same entry bundles for one of them to find the index moved on: a
// round finding the lock held by another writer is skipped, unless that
// writer has left the index behind the tree for indexerStall (frozen
// holding it): then this one indexes without the lock, which Append makes
// safe. The lock is held for the round only, not across rounds: a writer
// frozen between rounds holds nobody up, and no session is left holding
// it unverified between rounds. Catch-ups that callers wait for
// (catchUp: Open, Shutdown, a decision's roll forward, History) never
// take the lock and are never skipped.
func (f *follower) round(ctx context.Context) error {
	if f.lock == nil || f.passive {
		return f.catchUp(ctx)
	}
	release, ok, err := f.lock(ctx)
	switch {
	case err != nil:
		// Only an optimisation: index without it (and if the database is
		// away, catchUp says so).
		f.logger.Debug("lookup index follower: indexer lock", "err", err)
	case ok:
		defer release()
		f.waitFrom, f.passing = time.Time{}, false
	default:
		stuck, err := f.holderStuck(ctx)
		if err != nil {
			return err
		}
		if !stuck {
			f.metrics.indexRoundsSkipped.Inc()
			return nil
		}
		if !f.passing {
			f.passing = true
			f.logger.Warn("lookup index follower: the writer holding the indexer lock has not moved the index on; indexing without the lock", "index_size", f.waitSize, "for", time.Since(f.waitFrom).Round(time.Millisecond))
		}
		err = f.catchUp(ctx)
		// This writer's own progress is not the holder's: the next
		// round skipped for it does not start the wait again.
		if size, serr := f.index.Size(); serr == nil {
			f.waitSize = size
		}
		return err
	}
	return f.catchUp(ctx)
}

// holderStuck says whether the index has stayed at one size, behind the
// tree, for indexerStall of rounds that found the lock held by another
// writer.
func (f *follower) holderStuck(ctx context.Context) (bool, error) {
	size, err := f.index.Size()
	if err != nil {
		return false, err
	}
	if f.waitFrom.IsZero() || size != f.waitSize {
		f.waitSize, f.waitFrom, f.passing = size, time.Now(), false
		return false, nil
	}
	if time.Since(f.waitFrom) < indexerStall {
		return false, nil
	}
	tree, err := f.reader.IntegratedSize(ctx)
	if err != nil {
		return false, fmt.Errorf("read tree size: %w", err)
	}
	return size < tree, nil
}

func (f *follower) wait() { f.done.Wait() }

// catchUp indexes every entry integrated into the tree so far.
func (f *follower) catchUp(ctx context.Context) error {
	if f.passive {
		return nil
	}
	select {
	case f.one <- struct{}{}:
		defer func() { <-f.one }()
	case <-ctx.Done():
		return ctx.Err()
	}
	for retried := false; ; {
		treeSize, err := f.reader.IntegratedSize(ctx)
		if err != nil {
			return fmt.Errorf("read tree size: %w", err)
		}
		err = syncIndex(ctx, f.index, f.reader.ReadEntryBundle, treeSize, f.indexing, func(size uint64, bad int) {
			if bad > 0 {
				f.logger.Error("log holds entries that are not valid v1 entries; monitors will flag them", "count", bad, "below", size)
			}
			f.indexed(size)
		})
		// With several writers on one database, their followers share
		// the index: one that lost the race goes on from where the
		// winner left it (each try starts further on), and one that read
		// the tree size before another indexed past it reads it again.
		switch {
		case errors.Is(err, index.ErrMoved):
			f.metrics.indexAppendsMoved.Inc()
		case errors.Is(err, errIndexAhead) && !retried:
			retried = true
		default:
			return err
		}
	}
}

var errIndexAhead = errors.New("index ahead of the tree")

// syncIndex appends the leaves [ix.Size(), treeSize) to ix, a bundle at a
// time. before, when not nil, sees the leaves before they are appended;
// progress is called after each append.
func syncIndex(ctx context.Context, ix index.Store, readBundle func(context.Context, uint64, uint8) ([]byte, error), treeSize uint64, before func([][]byte), progress func(size uint64, unparsable int)) error {
	from, err := ix.Size()
	if err != nil {
		return err
	}
	if from > treeSize {
		return fmt.Errorf("%w: lookup index holds %d entries but the tree only %d: the index belongs to another log; run 'cpantlog-server reindex'", errIndexAhead, from, treeSize)
	}
	// Leaves go to the index in transactions of up to indexBatch bundles:
	// each commit is an fsync, and under heavy ingest they compete with
	// Tessera's own for the disk.
	const indexBatch = 16
	var leaves [][]byte
	bundles := 0
	flush := func() error {
		if len(leaves) == 0 {
			return nil
		}
		if before != nil {
			before(leaves)
		}
		bad, err := ix.Append(from, leaves)
		if err != nil {
			return err
		}
		from += uint64(len(leaves))
		leaves, bundles = leaves[:0], 0
		progress(from, bad)
		return nil
	}
	for ri := range layout.Range(from, treeSize-from, treeSize) {
		raw, err := readBundle(ctx, ri.Index, ri.Partial)
		if err != nil {
			if ferr := flush(); ferr != nil {
				return ferr
			}
			return fmt.Errorf("read entry bundle %d: %w", ri.Index, err)
		}
		var b api.EntryBundle
		if err := b.UnmarshalText(raw); err != nil {
			return fmt.Errorf("entry bundle %d: %w", ri.Index, err)
		}
		if uint(len(b.Entries)) < ri.First+ri.N {
			return fmt.Errorf("entry bundle %d has %d entries, want at least %d", ri.Index, len(b.Entries), ri.First+ri.N)
		}
		leaves = append(leaves, b.Entries[ri.First:ri.First+ri.N]...)
		if bundles++; bundles == indexBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}
