package decide

import (
	"context"
	"sync"
)

// Group runs functions in goroutines and waits for them, as a
// sync.WaitGroup does, except that a wait can give up when its context
// ends, and a function may start at any time, a wait in progress or not.
// A WaitGroup allows neither: a Wait abandoned at a deadline stays
// registered, and a Go racing the count's return to zero is a misuse it
// may panic on, which at a shutdown past its deadline (late answers from
// Tessera still coming) is exactly when it would happen.
type Group struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n returns to 0
}

// Go runs f in a goroutine of the group.
func (g *Group) Go(f func()) {
	g.mu.Lock()
	if g.n == 0 {
		g.idle = make(chan struct{})
	}
	g.n++
	g.mu.Unlock()
	go func() {
		defer g.done()
		f()
	}()
}

func (g *Group) done() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n--; g.n == 0 {
		close(g.idle)
	}
}

// Wait waits until the functions started before it have returned, or ctx
// ends; it reports whether they all returned.
func (g *Group) Wait(ctx context.Context) bool {
	g.mu.Lock()
	if g.n == 0 {
		g.mu.Unlock()
		return true
	}
	idle := g.idle
	g.mu.Unlock()
	select {
	case <-idle:
		return true
	case <-ctx.Done():
		return false
	}
}
