// Package linebuf batches a process's log lines into fewer writes, so
// that a server logging one line per request does not pay one write(2)
// per line (issue 39: 3–5% of cpantlog-server's CPU under load was the
// write of each add's line to stderr).
//
// A Writer keeps each Write whole: what one Write call was given (one
// slog record) reaches the underlying writer in one piece, in the order
// of the Write calls, never split and never interleaved with another.
// Buffered lines are written out at most the Writer's interval
// (DefaultInterval unless New is told otherwise) after they were
// buffered, at once when the buffer passes MaxBuffered, on Flush and on
// Close. Handler wraps a slog.Handler so that a record of level Warn or
// above is flushed, with every line before it, before the log call
// returns: only Info and Debug lines wait.
//
// What a crash loses: a process killed outright (kill -9, an OOM kill)
// loses the lines still buffered, that is at most the last interval of
// Info and Debug lines (and about MaxBuffered bytes at most); it never
// loses a warning or an error whose log call returned. A panic that
// unwinds through a deferred Close loses nothing; one in another
// goroutine runs no deferred calls and loses what kill -9 would.
//
// A failing underlying writer does not stall the writers: the lines of a
// failed write are dropped (as an unbuffered write would have lost them),
// and the error is returned by the next Flush or Close. A writer that
// blocks blocks the Write that fills the buffer, as it would have blocked
// an unbuffered one.
package linebuf

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// DefaultInterval is how long a line may wait in the buffer when New is
// given no interval: short enough for an operator tailing the log, long
// enough to gather a busy server's lines into one write.
const DefaultInterval = 100 * time.Millisecond

// MaxBuffered is the buffer size past which a Write writes the buffer out
// at once, bounding both memory and what a kill -9 can lose.
const MaxBuffered = 64 << 10

// Writer buffers whole writes for an underlying writer. It is safe for
// concurrent use. Make one with New and Close it when done.
type Writer struct {
	w        io.Writer
	interval time.Duration

	// wmu serializes writes to w, so that the buffers reach it in the order
	// they were filled; it is held while writing, and never while a caller
	// appends (writers do not wait for write(2) unless the buffer is full).
	wmu sync.Mutex
	err error // of a write to w, not yet returned by Flush or Close; wmu

	mu     sync.Mutex
	buf    []byte // lines not yet handed to w
	spare  []byte // the buffer last written, reused for the next lines
	closed bool   // after Close, Write writes through

	kick chan struct{} // the buffer went from empty to not: start the interval
	stop chan struct{}
	done chan struct{} // the timer goroutine has returned
	once sync.Once
}

// New returns a Writer for w that writes buffered lines out at most
// interval after they were written (DefaultInterval if interval <= 0).
func New(w io.Writer, interval time.Duration) *Writer {
	if interval <= 0 {
		interval = DefaultInterval
	}
	bw := &Writer{w: w, interval: interval, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go bw.run()
	return bw
}

// run writes the buffer out an interval after it stopped being empty.
// It wakes only when there is something to write, so an idle server's
// Writer costs nothing.
func (w *Writer) run() {
	defer close(w.done)
	t := time.NewTimer(w.interval)
	t.Stop()
	for {
		select {
		case <-w.kick:
		case <-w.stop:
			return
		}
		t.Reset(w.interval)
		select {
		case <-t.C:
		case <-w.stop:
			t.Stop()
			return
		}
		w.writeOut()
	}
}

// Write buffers p, which reaches the underlying writer whole. It returns
// len(p) and nil once p is buffered; the error of writing it out comes
// from a later Flush or Close. After Close it writes p through at once
// and returns what the underlying writer returned.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		// After Close's final write (Close holds wmu while it marks the
		// Writer closed), so the order of the lines is kept.
		w.wmu.Lock()
		defer w.wmu.Unlock()
		return w.w.Write(p)
	}
	wasEmpty := len(w.buf) == 0
	w.buf = append(w.buf, p...)
	full := len(w.buf) >= MaxBuffered
	w.mu.Unlock()
	if wasEmpty {
		select {
		case w.kick <- struct{}{}:
		default: // a kick is pending already
		}
	}
	if full {
		w.writeOut()
	}
	return len(p), nil
}

// Flush writes out every line buffered before it was called and returns
// the first error of a write to the underlying writer since the last
// Flush or Close (that error is reported once).
func (w *Writer) Flush() error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.writeOutLocked()
	err := w.err
	w.err = nil
	return err
}

// Close writes out the buffered lines, stops the timer goroutine and
// returns as Flush does. Writes after Close go straight through to the
// underlying writer (a goroutine that logs late loses nothing). Close
// does not close the underlying writer; closing twice is harmless.
func (w *Writer) Close() error {
	w.once.Do(func() { close(w.stop) })
	<-w.done
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.writeOutLocked()
	err := w.err
	w.err = nil
	return err
}

func (w *Writer) writeOut() {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.writeOutLocked()
}

// writeOutLocked hands the buffer to the underlying writer; wmu is held.
// Writers append to the spare buffer meanwhile.
func (w *Writer) writeOutLocked() {
	w.mu.Lock()
	p := w.buf
	if len(p) == 0 {
		w.mu.Unlock()
		return
	}
	w.buf, w.spare = w.spare[:0], nil
	w.mu.Unlock()
	if _, err := w.w.Write(p); err != nil && w.err == nil {
		w.err = err // the lines are dropped: keeping them would grow without bound
	}
	if cap(p) <= 2*MaxBuffered { // one huge line's buffer is left to the GC
		w.mu.Lock()
		w.spare = p[:0]
		w.mu.Unlock()
	}
}

// Handler returns a handler that passes records to h, which writes to w,
// and flushes w after every record of level Warn or above: warnings and
// errors reach the operator when they are logged, with every line before
// them, and are never lost to a kill -9. Handle returns h's error, else
// the flush's. Loggers derived with WithAttrs and WithGroup keep doing so.
func Handler(h slog.Handler, w *Writer) slog.Handler {
	return &handler{next: h, w: w}
}

type handler struct {
	next slog.Handler
	w    *Writer
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	err := h.next.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		if ferr := h.w.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &handler{next: h.next.WithAttrs(as), w: h.w}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name), w: h.w}
}
