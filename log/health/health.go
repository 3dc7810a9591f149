// Package health watches what the operator of a log must act on, and
// only that: storage the log cannot read (the tree, the lookup index),
// witnesses that keep the quorum out of reach, and acknowledged entries
// that no published checkpoint covers (the quorum is not met, or
// publishing fails) for longer than a configured lag. An idle log
// publishes nothing new and is healthy; a checkpoint that advances
// restarts the clock.
//
// Its promise: Unhealthy answers from the last sample, at once and
// without touching the storage (a /healthz probe never waits on an
// outage), and says what is wrong and where to look; the same sample
// sets the gauges an alert can watch (cpantlog_integrated_size,
// cpantlog_published_checkpoint_size, cpantlog_unpublished_seconds).
package health

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultMaxPublishLag is how long entries may wait integrated but not
// covered by the published checkpoint before the log is unhealthy.
const DefaultMaxPublishLag = 2 * time.Minute

// Config says what a Watch samples and how it judges.
type Config struct {
	// Sample reads the size of the published checkpoint (0 when none is
	// published yet) and the integrated size, and checks that the rest of
	// what the log reads (the lookup index) answers.
	Sample func(ctx context.Context) (published, integrated uint64, err error)
	// Dependency names the storage dependency an error of Sample comes
	// from (mysql, s3), or "" when it is not one's. Nil: never one's.
	Dependency func(error) string
	// StorageError, when set, is called with the dependency of each
	// failed sample that has one (the log counts them).
	StorageError func(dependency string)
	// Witnesses, when set, says why the witnesses keep any checkpoint from
	// being published (unhealthy), or what is wrong short of that
	// (degraded).
	Witnesses func() (unhealthy, degraded string)
	// MaxPublishLag is how long entries may wait for a published
	// checkpoint (DefaultMaxPublishLag when 0).
	MaxPublishLag time.Duration
	// Registry, when set, gets the Watch's gauges.
	Registry prometheus.Registerer
}

// Watch is the health of one log, from its last sample.
type Watch struct {
	cfg Config
	now func() time.Time

	integratedGauge, publishedGauge, unpublishedGauge prometheus.Gauge

	mu sync.Mutex
	// published is the size of the published checkpoint; waitingSince
	// is since when it has been that size while entries waited beyond it.
	published    uint64
	integrated   uint64
	waitingSince time.Time // zero: nothing waits
	err          error     // the last sample failed
}

// New returns a Watch that has not sampled yet (healthy until it has).
func New(cfg Config) *Watch {
	if cfg.MaxPublishLag == 0 {
		cfg.MaxPublishLag = DefaultMaxPublishLag
	}
	if cfg.Dependency == nil {
		cfg.Dependency = func(error) string { return "" }
	}
	w := &Watch{
		cfg: cfg,
		now: time.Now,
		integratedGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cpantlog_integrated_size",
			Help: "Entries integrated into the tree (acknowledged and sequenced).",
		}),
		publishedGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cpantlog_published_checkpoint_size",
			Help: "Tree size of the published checkpoint, as the health watcher last read it.",
		}),
		unpublishedGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cpantlog_unpublished_seconds",
			Help: "How long integrated entries have waited for a published checkpoint (0: none waits). Alert when it exceeds a few checkpoint intervals: the witness quorum is not met or publishing fails.",
		}),
	}
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(w.integratedGauge, w.publishedGauge, w.unpublishedGauge)
	}
	return w
}

// Run samples every interval until ctx ends, the first time at once.
func (w *Watch) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		w.Sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sample samples the log once.
func (w *Watch) Sample(ctx context.Context) {
	published, integrated, err := w.cfg.Sample(ctx)
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.err = err
	if err != nil {
		if dep := w.cfg.Dependency(err); dep != "" && w.cfg.StorageError != nil {
			w.cfg.StorageError(dep)
		}
		return
	}
	switch {
	case integrated <= published:
		w.waitingSince = time.Time{}
	case w.waitingSince.IsZero() || published != w.published:
		// Entries wait beyond a checkpoint that just advanced (or just
		// started to): the clock starts now.
		w.waitingSince = now
	}
	w.published, w.integrated = published, integrated
	w.integratedGauge.Set(float64(integrated))
	w.publishedGauge.Set(float64(published))
	if w.waitingSince.IsZero() {
		w.unpublishedGauge.Set(0)
	} else {
		w.unpublishedGauge.Set(now.Sub(w.waitingSince).Seconds())
	}
}

// Unhealthy returns why the log needs its operator, or "".
func (w *Watch) Unhealthy() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		if dep := w.cfg.Dependency(w.err); dep != "" {
			return fmt.Sprintf("storage: %s unreachable: %v", dep, w.err)
		}
		return fmt.Sprintf("storage: reading the tree failed: %v", w.err)
	}
	if why, _ := w.witnesses(); why != "" {
		return why
	}
	if waited := w.now().Sub(w.waitingSince); !w.waitingSince.IsZero() && waited > w.cfg.MaxPublishLag {
		return fmt.Sprintf("checkpoint: %d acknowledged entries are not covered by the published checkpoint (size %d), unchanged for %s, more than %s: is the witness quorum met? the server's log says why each publication failed",
			w.integrated-w.published, w.published, waited.Round(time.Second), w.cfg.MaxPublishLag)
	}
	return ""
}

// Degraded returns what is wrong that does not stop the log from
// publishing (a witness down, the quorum still in reach), or "".
func (w *Watch) Degraded() string {
	_, degraded := w.witnesses()
	return degraded
}

func (w *Watch) witnesses() (unhealthy, degraded string) {
	if w.cfg.Witnesses == nil {
		return "", ""
	}
	return w.cfg.Witnesses()
}
