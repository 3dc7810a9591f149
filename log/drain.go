package log

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// What the log waits for, and when it stops waiting: a POST /add?wait=1
// and a shutdown wait for a checkpoint covering acknowledged entries, and
// give up early, with the reason, when it cannot come (the witnesses that
// answered since leave the quorum out of reach) or, for the adds, when
// shutdown begins.

// noCheckpointError is why a wait for a checkpoint ended early.
type noCheckpointError struct{ why string }

func (e *noCheckpointError) Error() string { return e.why }

// errDraining ends the waits of POST /add?wait=1 when shutdown begins.
var errDraining = &noCheckpointError{"the log is shutting down; the entry is stored and is published by the next checkpoint"}

// stopWaiting is parent, canceled with a *noCheckpointError as its cause
// once the witnesses answering after now leave the quorum out of reach,
// or (onDrain) once shutdown begins.
func (l *Log) stopWaiting(parent context.Context, onDrain bool) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	var mark uint64
	var changed <-chan struct{}
	if l.witness != nil {
		mark, changed = l.witness.mark()
	}
	var draining chan struct{}
	if onDrain {
		draining = l.draining // nil on a read-only front end: never closed
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-draining:
				cancel(errDraining)
				return
			case <-changed:
				// Take the next channel before looking, so that no answer
				// goes unseen.
				_, changed = l.witness.mark()
				if why := l.witness.blockedAfter(mark); why != "" {
					cancel(&noCheckpointError{why})
					return
				}
			}
		}
	}()
	return ctx, func() { cancel(context.Canceled) }
}

// whyStopped is the reason ctx (from stopWaiting) stopped early, or err.
func whyStopped(ctx context.Context, err error) error {
	var nc *noCheckpointError
	if errors.As(context.Cause(ctx), &nc) {
		return nc
	}
	return err
}

// beginDrain ends the waits of POST /add?wait=1: shutdown has begun.
func (l *Log) beginDrain() {
	if l.draining != nil {
		l.drainingOnce.Do(func() { close(l.draining) })
	}
}

// drainStatus says what a shutdown begun now waits for.
func (l *Log) drainStatus(ctx context.Context) string {
	if l.appender == nil {
		return "nothing to wait for (a read-only front end)"
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var parts []string
	adds := l.adding.Load()
	if adds > 0 {
		parts = append(parts, fmt.Sprintf("%d adds in flight to be sequenced", adds))
	}
	integrated, ierr := l.reader.IntegratedSize(ctx)
	var published uint64
	raw, perr := l.reader.ReadCheckpoint(ctx)
	if perr == nil {
		if c, err := l.parseCheckpoint(raw); err == nil {
			published = c.Size
		}
	} else if notFound(perr) {
		perr = nil
	}
	cosigned := ""
	if l.witness != nil && l.witness.quorum != nil {
		cosigned = " cosigned by the witness quorum"
	}
	switch {
	case ierr != nil || perr != nil:
		parts = append(parts, "a checkpoint"+cosigned+" covering every acknowledged entry (the storage does not say how many wait)")
	case integrated > published:
		parts = append(parts, fmt.Sprintf("a checkpoint%s covering the %d entries no published checkpoint covers", cosigned, integrated-published))
	case adds > 0:
		parts = append(parts, "a checkpoint"+cosigned+" covering them")
	}
	if len(parts) == 0 {
		return "nothing to wait for"
	}
	s := "waiting for " + strings.Join(parts, " and ")
	if why, deg := l.witness.health(); why != "" {
		s += " (" + why + ")"
	} else if deg != "" {
		s += " (" + deg + ")"
	}
	return s
}
