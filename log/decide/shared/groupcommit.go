package shared

import (
	"context"
	"errors"
	"sync"
	"time"
)

// groupCommit runs work once for all the requests that queued up while
// the previous runs were in flight, or arrived within linger of the first:
// one database transaction for many concurrent adds, as Tessera batches
// their sequencing. Under load, batches grow to max.
type groupCommit[Req, Res any] struct {
	queue  chan groupItem[Req, Res]
	max    int
	linger time.Duration
	work   func(context.Context, []Req) ([]Res, error)
	// timeout bounds each run of work.
	timeout time.Duration
	// abandoned, when set, gets the results of requests whose caller
	// stopped waiting before the run ended.
	abandoned func([]Req, []Res)
	stopped   chan struct{}
	wg        sync.WaitGroup
}

type groupItem[Req, Res any] struct {
	reqs []Req
	done chan groupDone[Res]
}

type groupDone[Res any] struct {
	res []Res
	err error
}

// newGroupCommit starts workers running work, each run bounded by
// timeout, until ctx ends.
func newGroupCommit[Req, Res any](ctx context.Context, workers, max int, linger, timeout time.Duration, work func(context.Context, []Req) ([]Res, error)) *groupCommit[Req, Res] {
	g := &groupCommit[Req, Res]{queue: make(chan groupItem[Req, Res]), max: max, linger: linger, timeout: timeout, work: work, stopped: make(chan struct{})}
	for range workers {
		g.wg.Go(func() { g.run(ctx) })
	}
	go func() { g.wg.Wait(); close(g.stopped) }()
	return g
}

// do runs reqs in some batch and returns their results, in order.
func (g *groupCommit[Req, Res]) do(ctx context.Context, reqs []Req) ([]Res, error) {
	item := groupItem[Req, Res]{reqs: reqs, done: make(chan groupDone[Res], 1)}
	select {
	case g.queue <- item:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-g.stopped:
		return nil, ErrStopped
	}
	// A worker that took the item always answers it (into its buffer);
	// the caller stops waiting at its deadline, as a database that holds
	// the batch's locks (a writer stopped in a transaction) must not keep
	// an add waiting for ever. The work itself is bounded too (run).
	select {
	case d := <-item.done:
		return d.res, d.err
	case <-ctx.Done():
		// The run may still succeed: what it did for nobody is undone.
		go func() {
			if d := <-item.done; d.err == nil && g.abandoned != nil {
				g.abandoned(reqs, d.res)
			}
		}()
		return nil, ctx.Err()
	}
}

// ErrStopped means the group stopped (its context ended) and takes no work.
var ErrStopped = errors.New("stopped")

func (g *groupCommit[Req, Res]) run(ctx context.Context) {
	for {
		var items []groupItem[Req, Res]
		select {
		case it := <-g.queue:
			items = append(items, it)
		case <-ctx.Done():
			return
		}
		// Linger a moment for the requests arriving with this one:
		// concurrent adds come in waves (Tessera answers a whole batch
		// at once), and one transaction for the wave costs much less
		// than one each.
		n := len(items[0].reqs)
		linger := time.NewTimer(g.linger)
	more:
		for n < g.max {
			select {
			case it := <-g.queue:
				items = append(items, it)
				n += len(it.reqs)
			case <-linger.C:
				break more
			}
		}
		linger.Stop()
		if ctx.Err() != nil {
			// Stopped while gathering: a select between a ready queue
			// and a done context picks either.
			for _, it := range items {
				it.done <- groupDone[Res]{err: ErrStopped}
			}
			return
		}
		all := make([]Req, 0, n)
		for _, it := range items {
			all = append(all, it.reqs...)
		}
		wctx, cancel := context.WithTimeout(ctx, g.timeout)
		res, err := g.work(wctx, all)
		cancel()
		for _, it := range items {
			d := groupDone[Res]{err: err}
			if err == nil {
				d.res, res = res[:len(it.reqs)], res[len(it.reqs):]
			}
			it.done <- d
		}
	}
}
