package health

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// sizes is what the log under watch reports: set by the test, read by
// the Watch's samples.
type sizes struct {
	mu                    sync.Mutex
	published, integrated uint64
	err                   error
}

func (s *sizes) set(published, integrated uint64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.published, s.integrated, s.err = published, integrated, err
}

func (s *sizes) sample(context.Context) (uint64, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.published, s.integrated, s.err
}

func value(g prometheus.Gauge) float64 {
	var m dto.Metric
	g.Write(&m)
	return m.GetGauge().GetValue()
}

var errOutage = errors.New("dial tcp 127.0.0.1:3306: connection refused")

func newWatch(t *testing.T, s *sizes, witnesses func() (string, string)) (*Watch, *time.Time, *prometheus.Registry, *[]string) {
	t.Helper()
	reg := prometheus.NewRegistry()
	var counted []string
	w := New(Config{
		Sample: s.sample,
		Dependency: func(err error) string {
			if errors.Is(err, errOutage) {
				return "mysql"
			}
			return ""
		},
		StorageError:  func(dep string) { counted = append(counted, dep) },
		Witnesses:     witnesses,
		MaxPublishLag: time.Minute,
		Registry:      reg,
	})
	now := time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC)
	w.now = func() time.Time { return now }
	return w, &now, reg, &counted
}

// TestPublishLag: entries waiting beyond the published checkpoint make
// the log unhealthy only once they waited longer than the lag with the
// checkpoint unchanged; a checkpoint that advances restarts the clock;
// an idle log is healthy however long nothing is published.
func TestPublishLag(t *testing.T) {
	s := &sizes{}
	w, now, reg, _ := newWatch(t, s, nil)
	if why := w.Unhealthy(); why != "" {
		t.Fatalf("before any sample: %q", why)
	}
	s.set(10, 10, nil)
	w.Sample(t.Context())
	*now = now.Add(time.Hour)
	w.Sample(t.Context())
	if why := w.Unhealthy(); why != "" {
		t.Fatalf("idle for an hour: %q", why)
	}
	s.set(10, 15, nil) // five entries wait
	w.Sample(t.Context())
	*now = now.Add(50 * time.Second)
	w.Sample(t.Context())
	if why := w.Unhealthy(); why != "" {
		t.Fatalf("waiting 50s of a 1m lag: %q", why)
	}
	if got := value(w.unpublishedGauge); got != 50 {
		t.Errorf("cpantlog_unpublished_seconds = %v, want 50", got)
	}
	s.set(12, 15, nil) // the checkpoint advanced: the clock starts again
	w.Sample(t.Context())
	*now = now.Add(50 * time.Second)
	w.Sample(t.Context())
	if why := w.Unhealthy(); why != "" {
		t.Fatalf("50s after the checkpoint advanced: %q", why)
	}
	*now = now.Add(20 * time.Second)
	w.Sample(t.Context())
	why := w.Unhealthy()
	if !strings.Contains(why, "3 acknowledged entries are not covered by the published checkpoint (size 12), unchanged for 1m10s") {
		t.Fatalf("70s with the checkpoint unchanged: %q", why)
	}
	mfs, err := reg.Gather()
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	if err != nil || strings.Join(names, " ") != "cpantlog_integrated_size cpantlog_published_checkpoint_size cpantlog_unpublished_seconds" {
		t.Errorf("gauges registered: %q, %v", names, err)
	}
	if got := value(w.publishedGauge); got != 12 {
		t.Errorf("cpantlog_published_checkpoint_size = %v, want 12", got)
	}
	s.set(15, 15, nil)
	w.Sample(t.Context())
	if why := w.Unhealthy(); why != "" || value(w.unpublishedGauge) != 0 {
		t.Errorf("once published: %q, unpublished %v s", why, value(w.unpublishedGauge))
	}
}

// TestStorageAndWitnesses: a failed sample makes the log unhealthy with
// the dependency named (and counted), until a sample succeeds; witnesses
// that keep the quorum out of reach make it unhealthy, one that is down
// only degraded.
func TestStorageAndWitnesses(t *testing.T) {
	s := &sizes{}
	var unhealthy, degraded string
	w, _, _, counted := newWatch(t, s, func() (string, string) { return unhealthy, degraded })
	s.set(0, 0, errOutage)
	w.Sample(t.Context())
	if why := w.Unhealthy(); !strings.HasPrefix(why, "storage: mysql unreachable: ") {
		t.Errorf("during an outage: %q", why)
	}
	if len(*counted) != 1 || (*counted)[0] != "mysql" {
		t.Errorf("storage errors counted: %q, want one of mysql", *counted)
	}
	s.set(0, 0, errors.New("tile 0 is damaged"))
	w.Sample(t.Context())
	if why := w.Unhealthy(); why != "storage: reading the tree failed: tile 0 is damaged" {
		t.Errorf("tree unreadable: %q", why)
	}
	if len(*counted) != 1 {
		t.Errorf("an error of no dependency was counted as one: %q", *counted)
	}
	s.set(3, 3, nil)
	w.Sample(t.Context())
	if why := w.Unhealthy(); why != "" {
		t.Errorf("after the outage: %q", why)
	}
	degraded = "witnesses: w1 unreachable"
	if why, d := w.Unhealthy(), w.Degraded(); why != "" || d != degraded {
		t.Errorf("a witness down, the quorum in reach: unhealthy %q, degraded %q", why, d)
	}
	unhealthy = "witnesses: the quorum cannot be met"
	if why := w.Unhealthy(); why != unhealthy {
		t.Errorf("the quorum out of reach: %q", why)
	}
}
