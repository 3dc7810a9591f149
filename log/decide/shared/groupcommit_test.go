package shared

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestGroupCommit: concurrent callers share runs of work, each gets its
// own results in order, a failed run fails every caller in it, and a
// stopped group refuses new work instead of hanging.
func TestGroupCommit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var runs, biggest atomic.Int64
	g := newGroupCommit(ctx, 2, 64, 2*time.Millisecond, time.Minute, func(_ context.Context, in []int) ([]int, error) {
		runs.Add(1)
		if int64(len(in)) > biggest.Load() {
			biggest.Store(int64(len(in)))
		}
		if slices.Contains(in, -1) {
			return nil, errors.New("bad batch")
		}
		time.Sleep(time.Millisecond)
		out := make([]int, len(in))
		for i, v := range in {
			out[i] = 2 * v
		}
		return out, nil
	})
	var wg sync.WaitGroup
	for c := range 100 {
		wg.Go(func() {
			in := []int{3 * c, 3*c + 1, 3*c + 2}
			out, err := g.do(context.Background(), in)
			if err != nil || !slices.Equal(out, []int{6 * c, 6*c + 2, 6*c + 4}) {
				t.Errorf("caller %d: %v %v", c, out, err)
			}
		})
	}
	wg.Wait()
	if runs.Load() >= 100 || biggest.Load() < 6 {
		t.Errorf("%d runs for 100 concurrent callers, the biggest of %d requests: not batched", runs.Load(), biggest.Load())
	}
	if _, err := g.do(context.Background(), []int{-1}); err == nil {
		t.Errorf("a failed run reported no error")
	}
	cancel()
	done := make(chan error, 1)
	go func() { _, err := g.do(context.Background(), []int{1}); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrStopped) {
			t.Errorf("do after the group stopped: %v, want ErrStopped", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("do after the group stopped hangs")
	}
}
