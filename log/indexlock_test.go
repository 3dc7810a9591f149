package log

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/log/entry"
	"github.com/CPAN-Security/cpan-tlog/log/index"
)

// The indexer lock (index.MySQL.TryIndexer): writers on one database take
// turns at indexing, and one frozen or dead holding it stops nobody.

// bodyEntry is the entry of an addBody-style JSON body, as POST /add
// reads it.
func bodyEntry(body string) (*entry.Entry, error) {
	var r AddRequest
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return nil, err
	}
	return r.Entry()
}

// addAt adds an addBody-style JSON body at l, from any goroutine.
func addAt(l *Log, body string) (AddResult, error) {
	e, err := bodyEntry(body)
	if err != nil {
		return AddResult{}, err
	}
	return l.Add(context.Background(), e)
}

// roundsSkipped is l's cpantlog_index_rounds_skipped_total.
func roundsSkipped(t *testing.T, l *Log) float64 {
	return metricValue(t, l, "cpantlog_index_rounds_skipped_total")
}

// metricValue is the value of l's metric name, a counter or a gauge
// without labels.
func metricValue(t *testing.T, l *Log, name string) float64 {
	t.Helper()
	mfs, err := l.metrics.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s", name)
	return 0
}

// holdIndexerLock takes the writers' indexer lock on a connection of the
// test's own, as a writer frozen holding it does; it checks the writer l
// now finds it held (the same lock).
func holdIndexerLock(t *testing.T, s3 Config, l *Log) *sql.Conn {
	t.Helper()
	conn, err := pathsDB(t, s3).Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var got int
	if err := conn.QueryRowContext(t.Context(), `SELECT GET_LOCK(CONCAT('cpantlog_indexer_', LEFT(SHA2(DATABASE(), 256), 47)), 0)`).Scan(&got); err != nil || got != 1 {
		t.Fatalf("take the indexer lock: %d, %v", got, err)
	}
	release, ok, err := l.index.(*index.MySQL).TryIndexer(t.Context())
	if err != nil || ok {
		if ok {
			release()
		}
		t.Fatalf("the writer's TryIndexer with the lock held elsewhere: ok %v, err %v", ok, err)
	}
	return conn
}

// awaitIndexed waits until l's lookup index covers the tree and at least
// want entries (an acknowledged add may not be integrated yet), or fails
// after within.
func awaitIndexed(t *testing.T, l *Log, want uint64, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	size, err := l.reader.IntegratedSize(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	size = max(size, want)
	for {
		n, err := l.index.Size()
		if err != nil {
			t.Fatal(err)
		}
		if n >= size {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("the lookup index holds %d entries, the tree %d, after %v", n, size, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIndexerOneWriterAtATime: two live writers under adds at both. Every
// acknowledged add is in the shared index at its index, and the writers
// took turns: an Append finding the index moved on (the loser of a race
// throwing its reading and parsing away) is rare; without the lock, on
// this machine, several in the same run (5 and 6 in two runs here).
func TestIndexerOneWriterAtATime(t *testing.T) {
	s3 := needS3(t)
	useS3 := func(c *Config) { c.Storage, c.S3 = s3.Storage, s3.S3 }
	dirA := t.TempDir()
	a := openWriter(t, dirA, useS3)
	b := openWriter(t, secondWriter(t, dirA), useS3)

	var mu sync.Mutex
	acked := map[string]uint64{}
	var failed []error
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 6 {
		w := []*Log{a, b}[c%2]
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := fmt.Sprintf("authors/id/T/TU/TURNS/C%d-%d.tar.gz", c, i)
				r, err := addAt(w, addBody(p, c*1000000+i))
				mu.Lock()
				if err != nil {
					failed = append(failed, err)
				} else {
					acked[p] = r.Index
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(4 * time.Second)
	close(stop)
	wg.Wait()
	if len(failed) > 0 {
		t.Errorf("%d adds failed, the first: %v", len(failed), failed[0])
	}
	if len(acked) < 100 {
		t.Fatalf("only %d adds acknowledged in 4 s", len(acked))
	}
	var want uint64
	for _, idx := range acked {
		want = max(want, idx+1)
	}
	awaitIndexed(t, a, want, 10*time.Second)
	for p, idx := range acked {
		recs, err := b.index.ByPath(p)
		if err != nil || len(recs) != 1 || recs[0].Index != idx {
			t.Errorf("%s acknowledged at %d; the index holds %+v (%v)", p, idx, recs, err)
			continue
		}
		if h, err := a.History(p); err != nil || len(h) != 1 || h[0].Index != idx {
			t.Errorf("%s acknowledged at %d; History %+v (%v)", p, idx, h, err)
		}
	}
	moved := metricValue(t, a, "cpantlog_index_appends_moved_total") + metricValue(t, b, "cpantlog_index_appends_moved_total")
	skipped := roundsSkipped(t, a) + roundsSkipped(t, b)
	t.Logf("%d adds; %v appends lost to the other writer, %v rounds left to it", len(acked), moved, skipped)
	if moved > 2 {
		t.Errorf("%v appends found the index moved on by the other writer: the writers indexed at the same time", moved)
	}
}

// loggedS3Writer opens a writer on a bucket and database of its own,
// logging into logs.
func loggedS3Writer(t *testing.T) (s3 Config, w *Log, logs *logBuffer) {
	t.Helper()
	s3, logs = needS3(t), &logBuffer{}
	w = openWriter(t, t.TempDir(), func(c *Config) {
		c.Storage, c.S3 = s3.Storage, s3.S3
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	return s3, w, logs
}

// TestIndexerFrozenHolder: the indexer lock held by a writer frozen
// (SIGSTOP) keeps its session open until wait_timeout (20 s); a live
// writer indexes without it after a few seconds, so its adds are indexed
// and a path whose entry before its last must be indexed for a decision
// is not busy meanwhile; later adds are indexed at once, not after the
// wait again.
func TestIndexerFrozenHolder(t *testing.T) {
	s3, w, logs := loggedS3Writer(t)
	holdIndexerLock(t, s3, w)
	p := "authors/id/F/FR/FROZEN/Frozen-1.tar.gz"
	if _, err := addAt(w, addBody(p, 1)); err != nil {
		t.Fatal(err)
	}
	del := `{"kind":"delete","path":"` + p + `","time":"2024-02-02T03:04:05Z"}`
	first, err := addAt(w, del)
	if err != nil {
		t.Fatal(err)
	}
	// Deciding on p again needs its upload indexed.
	start := time.Now()
	again, err := addAt(w, del)
	if err != nil || !again.Duplicate || again.Index != first.Index {
		t.Fatalf("the delete re-submitted after %v: %+v, %v; want the duplicate of %d", time.Since(start).Round(time.Millisecond), again, err, first.Index)
	}
	if took := time.Since(start); took > 6*time.Second {
		t.Errorf("the re-submission waited %v for the index", took)
	}
	took := awaitIndexed(t, w, first.Index+1, 6*time.Second)
	t.Logf("re-submission answered after %v, index complete %v later", time.Since(start).Round(time.Millisecond), took.Round(time.Millisecond))
	if n := roundsSkipped(t, w); n == 0 {
		t.Error("no round skipped for the lock's holder")
	}
	// While the holder stays frozen, the next adds are indexed at the next
	// round, without waiting again; and that is said once, not at every
	// round indexed without the lock.
	next, err := addAt(w, addBody("authors/id/F/FR/FROZEN/Frozen-2.tar.gz", 2))
	if err != nil {
		t.Fatal(err)
	}
	took = awaitIndexed(t, w, next.Index+1, 2*time.Second)
	t.Logf("the next add indexed %v after it was acknowledged", took.Round(time.Millisecond))
	if n := strings.Count(logs.String(), "indexing without the lock"); n != 1 {
		t.Errorf("%d WARN lines on indexing without the lock, want 1:\n%s", n, logs)
	}
}

// TestIndexerHolderGone: a writer that dies holding the indexer lock (its
// connection closed) gives it up with its session: the other skips its
// rounds while the holder lives, then indexes under the lock at its next
// round, without waiting for the holder to look frozen.
func TestIndexerHolderGone(t *testing.T) {
	s3, w, logs := loggedS3Writer(t)
	holder := holdIndexerLock(t, s3, w)
	r, err := addAt(w, addBody("authors/id/G/GO/GONE/Gone-1.tar.gz", 1))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	if n, err := w.index.Size(); err != nil || n > r.Index {
		t.Fatalf("the index holds %d entries (%v), the add's at %d: indexed while another writer held the lock", n, err, r.Index)
	}
	if roundsSkipped(t, w) == 0 {
		t.Fatal("no round skipped for the lock's holder")
	}
	// The holder dies: its connection closes, not released.
	holder.Raw(func(any) error { return sqldriver.ErrBadConn })
	holder.Close()
	took := awaitIndexed(t, w, r.Index+1, 2*time.Second)
	t.Logf("indexed %v after the holder's connection closed", took.Round(time.Millisecond))
	if strings.Contains(logs.String(), "without the lock") {
		t.Errorf("the writer indexed without the lock, as if the holder were frozen:\n%s", logs)
	}
}

// TestIndexSizeGaugeWithoutIndexing: a Log that indexes nothing itself
// says the shared index's size in cpantlog_index_size, not what it last
// indexed (nothing: 0). A second writer whose rounds find the index
// already up to the tree (the other indexed it, or it was complete at
// Open); a read-only front end, whose writers keep the index.
func TestIndexSizeGaugeWithoutIndexing(t *testing.T) {
	for _, c := range []struct {
		name     string
		readOnly bool
	}{
		{"second writer", false},
		{"read-only front end", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s3 := needS3(t) // a bucket and database of its own
			useS3 := func(c *Config) { c.Storage, c.S3 = s3.Storage, s3.S3 }
			dirA := t.TempDir()
			a := openWriter(t, dirA, useS3)
			var last AddResult
			for i := range 3 {
				r, err := addAt(a, addBody(fmt.Sprintf("authors/id/G/GA/GAUGE/Gauge-%d.tar.gz", i), i))
				if err != nil {
					t.Fatal(err)
				}
				last = r
			}
			awaitIndexed(t, a, last.Index+1, 5*time.Second)
			size, err := a.index.Size()
			if err != nil {
				t.Fatal(err)
			}
			b := openWriter(t, secondWriter(t, dirA), func(cfg *Config) { useS3(cfg); cfg.ReadOnly = c.readOnly })
			for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				got := metricValue(t, b, "cpantlog_index_size")
				if got == float64(size) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("cpantlog_index_size is %v after 3 s of rounds; the index holds %d", got, size)
				}
			}
		})
	}
}
