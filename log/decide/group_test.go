package decide

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestGroupWaitsAndGivesUp(t *testing.T) {
	var g Group
	if !g.Wait(t.Context()) {
		t.Fatal("an empty group's Wait reported functions running")
	}
	release := make(chan struct{})
	var ran atomic.Int32
	for range 3 {
		g.Go(func() { <-release; ran.Add(1) })
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if g.Wait(ctx) {
		t.Fatal("Wait reported every function returned while all three were blocked")
	}
	close(release)
	if !g.Wait(t.Context()) || ran.Load() != 3 {
		t.Fatalf("Wait returned with %d of 3 functions run", ran.Load())
	}
}

// TestGroupGoDuringWaits: functions start while waits are in progress and
// others have given up, the count going to zero and back many times: no
// panic (sync.WaitGroup's misuse), no wait returning before the
// functions it waits for.
func TestGroupGoDuringWaits(t *testing.T) {
	var g Group
	var running atomic.Int32
	stop := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(stop) {
		g.Go(func() { running.Add(1); time.Sleep(time.Microsecond); running.Add(-1) })
		ctx, cancel := context.WithTimeout(t.Context(), time.Microsecond)
		g.Wait(ctx) // may give up
		cancel()
		go g.Wait(t.Context())
	}
	if !g.Wait(t.Context()) {
		t.Fatal("Wait without a deadline gave up")
	}
	if n := running.Load(); n != 0 {
		t.Fatalf("Wait returned with %d functions running", n)
	}
}
