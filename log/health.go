package log

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	flog "github.com/transparency-dev/formats/log"
)

// DefaultMaxPublishLag is how long entries may wait integrated but not
// covered by the published checkpoint before /healthz says so.
const DefaultMaxPublishLag = 2 * time.Minute

// health watches what an operator must act on: storage that cannot be
// read (the tree, the lookup index), and acknowledged entries that no
// published checkpoint covers (the witness quorum is not met, or
// publishing fails) for longer than the configured lag. An idle log
// publishes nothing new and is healthy. Read-only front ends watch their
// storage the same way.
type health struct {
	mu sync.Mutex
	// published is the size of the published checkpoint, and since when
	// it has been that size while entries waited beyond it.
	published    uint64
	integrated   uint64
	waitingSince time.Time // zero: nothing waits
	err          error     // reading the tree failed
}

// watchHealth samples the published checkpoint and the integrated size
// every interval until ctx ends.
func (l *Log) watchHealth(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		l.sampleHealth(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (l *Log) sampleHealth(ctx context.Context) {
	var published uint64
	raw, err := l.reader.ReadCheckpoint(ctx)
	if notFound(err) {
		raw, err = nil, nil // nothing published yet
	}
	if err == nil && raw != nil {
		var c *flog.Checkpoint
		if c, err = l.parseCheckpoint(raw); err == nil {
			published = c.Size
		}
	}
	var integrated uint64
	if err == nil {
		integrated, err = l.reader.IntegratedSize(ctx)
	}
	if err == nil {
		// Lookups and, with several writers, every add read the index.
		_, err = l.index.Size()
	}
	now := time.Now()
	h := &l.health
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err = err
	if err != nil {
		if dep := l.storageDependency(err); dep != "" {
			l.metrics.storageErrors.WithLabelValues(dep).Inc()
		}
		return
	}
	switch {
	case integrated <= published:
		h.waitingSince = time.Time{}
	case h.waitingSince.IsZero() || published != h.published:
		// Entries wait beyond a checkpoint that just advanced (or just
		// started to): the clock starts now.
		h.waitingSince = now
	}
	h.published, h.integrated = published, integrated
	l.metrics.integrated.Set(float64(integrated))
	l.metrics.publishedSize.Set(float64(published))
	if h.waitingSince.IsZero() {
		l.metrics.unpublishedSeconds.Set(0)
	} else {
		l.metrics.unpublishedSeconds.Set(now.Sub(h.waitingSince).Seconds())
	}
}

// unhealthy returns why the log needs its operator, or "".
func (l *Log) unhealthy() string {
	h := &l.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		if dep := l.storageDependency(h.err); dep != "" {
			return fmt.Sprintf("storage: %s unreachable: %v", dep, h.err)
		}
		return fmt.Sprintf("storage: reading the tree failed: %v", h.err)
	}
	if why, _ := l.witness.health(); why != "" {
		return why
	}
	lag := l.cfg.MaxPublishLag
	if lag == 0 {
		lag = DefaultMaxPublishLag
	}
	if !h.waitingSince.IsZero() && time.Since(h.waitingSince) > lag {
		return fmt.Sprintf("checkpoint: %d acknowledged entries are not covered by the published checkpoint (size %d), unchanged for %s, more than %s: is the witness quorum met? the server's log says why each publication failed",
			h.integrated-h.published, h.published, time.Since(h.waitingSince).Round(time.Second), lag)
	}
	return ""
}

// handleHealthz answers 200 "ok", or 503 with what needs the operator.
func (l *Log) handleHealthz(w http.ResponseWriter, r *http.Request) {
	if why := l.unhealthy(); why != "" {
		httpError(w, http.StatusServiceUnavailable, "%s", why)
		return
	}
	if _, degraded := l.witness.health(); degraded != "" {
		// Still 200: the log publishes, or may once a witness is back
		// (the publish lag decides when that is too long).
		fmt.Fprintf(w, "degraded: %s\n", degraded)
		return
	}
	io.WriteString(w, "ok\n")
}
