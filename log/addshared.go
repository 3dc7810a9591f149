package log

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/transparency-dev/tessera"

	"github.com/CPAN-Security/cpan-tlog/log/entry"
	"github.com/CPAN-Security/cpan-tlog/log/index"
)

// addShared is AddBatch with several writers: each path is claimed in the
// database (claims.go) before its leaf is sequenced. errs[i] != nil marks
// an entry already refused.
func (l *Log) addShared(ctx context.Context, entries []*entry.Entry, leaves [][]byte, hasBytes map[[32]byte]bool, results []AddResult, errs []error) {
	var todo []int
	for i := range entries {
		if errs[i] == nil {
			todo = append(todo, i)
		}
	}
	deadline := time.Now().Add(claimWait)
	for wait := 5 * time.Millisecond; len(todo) > 0; wait = min(2*wait, 200*time.Millisecond) {
		reqs := make([]claimReq, len(todo))
		for k, i := range todo {
			reqs[k] = claimReq{e: entries[i], leaf: leaves[i], decide: func(h []index.Record) (*index.Record, error) {
				return decide(entries[i], leaves[i], h, hasBytes)
			}}
		}
		rs, err := l.claims.claim(ctx, reqs)
		if err != nil {
			for _, i := range todo {
				errs[i] = fmt.Errorf("claim the path: %w", err)
			}
			return
		}
		var mine, retry []int
		var tokens [][]byte
		for k, i := range todo {
			switch r := rs[k]; r.outcome {
			case claimed:
				mine, tokens = append(mine, i), append(tokens, r.token)
			case claimDup:
				results[i] = AddResult{Index: r.rec.Index, Leaf: r.rec.Leaf, Duplicate: true}
			case claimRefused:
				errs[i] = r.err
			case claimBusy:
				retry = append(retry, i)
			case claimOrphan:
				if err := l.rollForward(ctx, entries[i].Path, r); err != nil {
					errs[i] = err
				} else {
					retry = append(retry, i)
				}
			}
		}
		l.sequenceClaimed(ctx, entries, leaves, mine, tokens, results, errs)
		if todo = retry; len(todo) > 0 && time.Now().After(deadline) {
			for _, i := range todo {
				errs[i] = ErrPathBusy
			}
			return
		}
		if len(todo) > 0 {
			time.Sleep(wait)
		}
	}
}

// sequenceClaimed sequences the claimed entries mine, renewing their
// claims while Tessera works, and acknowledges them in the database.
func (l *Log) sequenceClaimed(ctx context.Context, entries []*entry.Entry, leaves [][]byte, mine []int, tokens [][]byte, results []AddResult, errs []error) {
	if len(mine) == 0 {
		return
	}
	bg := context.WithoutCancel(ctx)
	futures := make([]tessera.IndexFuture, len(mine))
	paths := make([]string, len(mine))
	for k, i := range mine {
		paths[k] = entries[i].Path
		futures[k] = l.appender.Add(bg, tessera.NewEntry(leaves[i]))
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(l.claims.lease / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if err := l.claims.renew(bg, paths, tokens); err != nil {
					l.cfg.Logger.Warn("could not renew path claims; another writer may finish them", "err", err)
				}
			}
		}
	}()
	var acks []ackedEntry
	var acked []int
	for k, i := range mine {
		idx, err := futures[k]()
		if err != nil {
			errs[i] = appendError(err)
			if errors.Is(errs[i], ErrOverloaded) || errors.Is(errs[i], ErrShutdown) {
				// Refused before it was queued: certainly not sequenced.
				err = l.claims.release(bg, paths[k], tokens[k])
			} else {
				// Perhaps sequenced: whoever meets the claim next finds out.
				err = l.claims.orphan(bg, paths[k], tokens[k])
			}
			if err != nil {
				l.cfg.Logger.Warn("could not give up a path claim; it expires by itself", "path", paths[k], "err", err)
			}
			continue
		}
		acks = append(acks, ackedEntry{path: paths[k], token: tokens[k], idx: idx.Index, leaf: leaves[i], sequenced: true})
		acked = append(acked, i)
	}
	close(stop)
	<-stopped
	// The entries are durably sequenced: acknowledge them now, and record
	// them in the database (clearing their claims) in the background,
	// batched with other adds'. Until then another writer meeting a claim
	// waits for it; if this writer dies first, the claim is rolled
	// forward and the leaf found in the tree. Nothing acknowledged hangs
	// on that transaction, so it is off the add's path.
	if len(acks) > 0 {
		l.resolving.Go(func() {
			if err := l.claims.resolve(bg, acks); err != nil {
				l.cfg.Logger.Warn("could not record acknowledged entries in the database; their claims are rolled forward when they expire", "entries", len(acks), "err", err)
			}
		})
	}
	for k, i := range acked {
		results[i] = AddResult{Index: acks[k].idx, Leaf: leaves[i]}
		l.addPending(entries[i].Path, index.Record{Index: acks[k].idx, Leaf: leaves[i], Entry: entries[i]})
	}
}

// rollForward finishes the add of a writer that claimed path and did not
// acknowledge it before its lease ran out: its decision stands. Once the
// lookup index covers every entry sequenced so far, the tree either holds
// the claimed leaf (the writer died after sequencing it) or never will
// (it died before): then it is logged now.
func (l *Log) rollForward(ctx context.Context, path string, orphan claimResult) error {
	bg := context.WithoutCancel(ctx)
	tok, ok, err := l.claims.takeOver(bg, path, orphan.token)
	if err != nil || !ok {
		return err // another writer took it, or it was resolved: look again
	}
	giveUp := func(err error) error {
		if oerr := l.claims.orphan(bg, path, tok); oerr != nil {
			l.cfg.Logger.Warn("could not give up a path claim; it expires by itself", "path", path, "err", oerr)
		}
		return err
	}
	l.cfg.Logger.Warn("a writer claimed a path and did not finish; finishing its add", "path", path)
	next, err := l.claims.sequenced(bg)
	if err != nil {
		return giveUp(err)
	}
	for deadline := time.Now().Add(claimWait); ; time.Sleep(100 * time.Millisecond) {
		size, err := l.index.Size()
		if err != nil {
			return giveUp(err)
		}
		if size >= next {
			break
		}
		if time.Now().After(deadline) {
			return giveUp(ErrPathBusy)
		}
		if err := l.follow.catchUp(bg); err != nil {
			return giveUp(err)
		}
	}
	h, err := l.claims.history(bg, path)
	if err != nil {
		return giveUp(err)
	}
	if slices.ContainsFunc(h, func(r index.Record) bool { return bytes.Equal(r.Leaf, orphan.leaf) }) {
		l.metrics.claimsRolledForward.WithLabelValues("found").Inc()
		return l.claims.resolve(bg, []ackedEntry{{path: path, token: tok}})
	}
	idx, err := l.appender.Add(bg, tessera.NewEntry(orphan.leaf))()
	if err != nil {
		return giveUp(appendError(err))
	}
	l.metrics.claimsRolledForward.WithLabelValues("logged").Inc()
	return l.claims.resolve(bg, []ackedEntry{{path: path, token: tok, idx: idx.Index, leaf: orphan.leaf, sequenced: true}})
}

// sweepClaims rolls forward, once a lease, the claims of writers that
// died and whose adds nobody retried: their decisions stand, and an entry
// sequenced but never acknowledged is recorded as such.
func (l *Log) sweepClaims(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(l.claims.lease):
		}
		orphans, err := l.claims.expired(ctx, 100)
		if err != nil {
			if ctx.Err() == nil {
				l.cfg.Logger.Warn("could not look for claims of dead writers; will try again", "err", err)
			}
			continue
		}
		for _, o := range orphans {
			unlock := l.paths.lock(o.path)
			err := l.rollForward(ctx, o.path, o.claimResult)
			unlock()
			if err != nil && ctx.Err() == nil {
				l.cfg.Logger.Warn("could not finish a dead writer's add; will try again", "path", o.path, "err", err)
			}
		}
	}
}

// writerID names this writer in the claims it holds: the host and data
// directory, for an operator reading the table.
func writerID(dataDir string) string {
	host, _ := os.Hostname()
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	id := host + ":" + dataDir
	if len(id) > 255 {
		id = id[len(id)-255:]
	}
	return id
}
