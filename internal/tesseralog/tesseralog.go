// Package tesseralog adapts what Tessera logs (through klog) to the
// server's slog stream, so that an operator reads it: a message is one
// line (Tessera joins wrapped errors with newlines), the same message
// repeated every checkpoint interval (a witness that is down) is logged
// once a minute with how many were left out, and the witness protocol's
// ordinary size handshake (a 409 with the witness's size, answered by a
// retry) is debug, not news.
package tesseralog

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"
)

// DefaultEvery is how often one repeated message is let through.
const DefaultEvery = time.Minute

// New returns a handler that passes Tessera's records to next.
func New(next slog.Handler, every time.Duration) slog.Handler {
	if every == 0 {
		every = DefaultEvery
	}
	return &handler{next: next, every: every, s: &shared{last: map[string]time.Time{}, left: map[string]int{}}}
}

type shared struct {
	mu   sync.Mutex
	last map[string]time.Time // when a message (by key) was last let through
	left map[string]int       // how many were left out since
}

type handler struct {
	next  slog.Handler
	every time.Duration
	s     *shared
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, slog.LevelDebug) || h.next.Enabled(ctx, l)
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	msg := oneLine(r.Message)
	level := r.Level
	if isHandshake(msg) {
		level = slog.LevelDebug
	}
	if !h.next.Enabled(ctx, level) {
		return nil
	}
	key := keyOf(msg)
	h.s.mu.Lock()
	if last, ok := h.s.last[key]; ok && r.Time.Sub(last) < h.every {
		h.s.left[key]++
		h.s.mu.Unlock()
		return nil
	}
	left := h.s.left[key]
	h.s.last[key], h.s.left[key] = r.Time, 0
	if len(h.s.last) > 1000 { // bounded: forget the oldest keys' memory wholesale
		clear(h.s.last)
		clear(h.s.left)
	}
	h.s.mu.Unlock()
	out := slog.NewRecord(r.Time, level, msg, r.PC)
	r.Attrs(func(a slog.Attr) bool { out.AddAttrs(a); return true })
	if left > 0 {
		out.AddAttrs(slog.Int("repeated", left), slog.Duration("within", h.every))
	}
	return h.next.Handle(ctx, out)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &handler{next: h.next.WithAttrs(as), every: h.every, s: h.s}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name), every: h.every, s: h.s}
}

// oneLine joins a message's lines with "; ".
func oneLine(s string) string {
	lines := strings.FieldsFunc(strings.TrimSpace(s), func(r rune) bool { return r == '\n' || r == '\r' })
	return strings.Join(lines, "; ")
}

// isHandshake recognises Tessera's note that a witness answered 409 with
// its size and will be asked again with it: the protocol's first step
// with a witness that knows the log from before, not a failure.
func isHandshake(msg string) bool {
	return strings.Contains(msg, "replied with x.tlog.size") && strings.Contains(msg, "retrying")
}

// keyOf is a message without its numbers (sizes, ports, indexes), so the
// same failure repeated is recognised as one.
func keyOf(msg string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsDigit(r) {
			return -1
		}
		return r
	}, msg)
}
