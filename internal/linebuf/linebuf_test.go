package linebuf

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// sink is an underlying writer that records each Write call.
type sink struct {
	mu     sync.Mutex
	writes []string
	fail   error
	slow   bool // each write takes a while, varying, so overlapping writes would show
}

func (s *sink) Write(p []byte) (int, error) {
	if s.slow {
		time.Sleep(time.Duration(len(p)%5) * 100 * time.Microsecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return 0, s.fail
	}
	s.writes = append(s.writes, string(p))
	return len(p), nil
}

func (s *sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.writes, "")
}

func (s *sink) calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.writes...)
}

func (s *sink) setFail(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

// A line is buffered, then written out by the timer with no Flush.
func TestIntervalWritesOut(t *testing.T) {
	var s sink
	const interval = 200 * time.Millisecond
	w := New(&s, interval)
	defer w.Close()
	start := time.Now()
	fmt.Fprintln(w, "one")
	if got := s.String(); got != "" {
		t.Fatalf("written at once, not buffered: %q", got)
	}
	for s.String() == "" {
		if time.Since(start) > 10*interval { // a loaded machine may be late; never is wrong
			t.Fatalf("not written %s after, with an interval of %s", time.Since(start), interval)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if since := time.Since(start); since < interval/2 {
		t.Errorf("written after %s, well before the interval of %s", since, interval)
	}
	if got := s.String(); got != "one\n" {
		t.Errorf("wrote %q", got)
	}
}

// Passing MaxBuffered writes the buffer out without waiting for the timer.
func TestFullBufferWritesOut(t *testing.T) {
	var s sink
	w := New(&s, time.Hour)
	defer w.Close()
	line := strings.Repeat("x", 99) + "\n"
	n := 0
	for ; n*len(line) < MaxBuffered; n++ {
		if s.String() != "" {
			t.Fatalf("written out after %d bytes, before MaxBuffered", n*len(line))
		}
		w.Write([]byte(line))
	}
	if got := s.String(); got != strings.Repeat(line, n) {
		t.Errorf("after %d bytes, %d written, want all of them", n*len(line), len(got))
	}
}

// A warning is in the underlying writer when the log call returns, with
// the Info line before it; an Info line alone waits.
func TestWarnFlushesAtOnce(t *testing.T) {
	var s sink
	w := New(&s, time.Hour)
	defer w.Close()
	log := slog.New(Handler(slog.NewTextHandler(w, nil), w))
	log.Info("first")
	if got := s.String(); got != "" {
		t.Fatalf("an Info line was written at once: %q", got)
	}
	log.Warn("second")
	got := s.String()
	if !strings.Contains(got, "msg=first") || !strings.Contains(got, "level=WARN msg=second") {
		t.Fatalf("after Warn returned, the writer has %q", got)
	}
	log.Error("third")
	if got := s.String(); !strings.Contains(got, "level=ERROR msg=third") {
		t.Fatalf("after Error returned, the writer has %q", got)
	}
}

// Loggers made with With and WithGroup still flush on Warn.
func TestDerivedHandlersFlush(t *testing.T) {
	var s sink
	w := New(&s, time.Hour)
	defer w.Close()
	log := slog.New(Handler(slog.NewTextHandler(w, nil), w))
	log.With("token", "pause").Warn("attrs")
	if got := s.String(); !strings.Contains(got, "msg=attrs token=pause") {
		t.Fatalf("With: after Warn returned, the writer has %q", got)
	}
	log.WithGroup("g").With("k", "v").Warn("group")
	if got := s.String(); !strings.Contains(got, "msg=group g.k=v") {
		t.Fatalf("WithGroup: after Warn returned, the writer has %q", got)
	}
}

// Close writes out what is buffered and stops the timer goroutine;
// later writes go straight through.
func TestCloseFlushesAndStops(t *testing.T) {
	var s sink
	w := New(&s, time.Hour)
	fmt.Fprintln(w, "before")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := s.String(); got != "before\n" {
		t.Fatalf("after Close, the writer has %q", got)
	}
	select {
	case <-w.done:
	default:
		t.Fatal("the timer goroutine still runs after Close")
	}
	fmt.Fprintln(w, "after")
	if got := s.String(); got != "before\nafter\n" {
		t.Errorf("a write after Close: the writer has %q", got)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// Concurrent writers: every line arrives once, whole, in its writer's
// order, and each write to the underlying writer holds whole lines.
func TestConcurrentWritersKeepLinesWhole(t *testing.T) {
	s := sink{slow: true}
	w := New(&s, time.Millisecond)
	const writers, lines = 8, 2000
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				// Lengths vary so that a split or an interleaving shows.
				fmt.Fprintf(w, "g=%d i=%d %s\n", g, i, strings.Repeat("y", i%97))
				if i%500 == 0 {
					w.Flush()
				}
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	calls := s.calls()
	next := make([]int, writers)
	for _, c := range calls {
		if !strings.HasSuffix(c, "\n") {
			t.Fatalf("a write to the underlying writer ends inside a line: ...%q", c[max(0, len(c)-40):])
		}
	}
	for _, l := range strings.Split(strings.TrimSuffix(strings.Join(calls, ""), "\n"), "\n") {
		var g, i int
		if _, err := fmt.Sscanf(l, "g=%d i=%d", &g, &i); err != nil || g < 0 || g >= writers {
			t.Fatalf("mangled line %q", l)
		}
		if want := fmt.Sprintf("g=%d i=%d %s", g, i, strings.Repeat("y", i%97)); l != want {
			t.Fatalf("mangled line %q", l)
		}
		if i != next[g] {
			t.Fatalf("writer %d: line %d where %d was due", g, i, next[g])
		}
		next[g]++
	}
	for g, n := range next {
		if n != lines {
			t.Errorf("writer %d: %d lines of %d arrived", g, n, lines)
		}
	}
	if len(calls) >= writers*lines {
		t.Errorf("%d writes for %d lines: nothing was batched", len(calls), writers*lines)
	}
}

// A failing underlying writer's error is returned by the next Flush
// (once), the writers are not stopped, and lines written after it mends
// get through.
func TestWriteErrorReportedByFlush(t *testing.T) {
	var s sink
	w := New(&s, time.Hour)
	defer w.Close()
	broken := errors.New("disk on fire")
	s.setFail(broken)
	fmt.Fprintln(w, "lost")
	if err := w.Flush(); !errors.Is(err, broken) {
		t.Fatalf("Flush = %v, want %v", err, broken)
	}
	if err := w.Flush(); err != nil {
		t.Errorf("second Flush = %v, want the error reported once", err)
	}
	// The timer's write fails too; Close reports it.
	w2 := New(&s, time.Millisecond)
	fmt.Fprintln(w2, "lost too")
	time.Sleep(50 * time.Millisecond)
	if err := w2.Close(); !errors.Is(err, broken) {
		t.Errorf("Close after a failed timer write = %v, want %v", err, broken)
	}
	s.setFail(nil)
	fmt.Fprintln(w, "kept")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := s.String(); got != "kept\n" {
		t.Errorf("the writer has %q, want the line after it mended", got)
	}
}

// BenchmarkLogLine is an add's log line through slog's TextHandler to
// /dev/null, written directly (one write(2) a line, as before issue 39)
// and through a Writer.
func BenchmarkLogLine(b *testing.B) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	line := func(log *slog.Logger) {
		log.Info("add", "outcome", "logged", "token", "pause", "remote", "127.0.0.1:54321", "path", "authors/id/A/AB/ABC/Some-Dist-1.23.tar.gz", "index", 123456)
	}
	b.Run("direct", func(b *testing.B) {
		log := slog.New(slog.NewTextHandler(f, nil))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				line(log)
			}
		})
	})
	b.Run("buffered", func(b *testing.B) {
		w := New(f, 0)
		defer w.Close()
		log := slog.New(Handler(slog.NewTextHandler(w, nil), w))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				line(log)
			}
		})
	})
}
