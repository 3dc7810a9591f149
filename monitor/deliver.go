package monitor

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/CPAN-Security/cpan-tlog/internal/httpserver"
)

// Sink receives findings.
type Sink interface {
	Deliver(ctx context.Context, f Finding) error
}

// WriterSink prints findings as text lines, or JSON lines.
type WriterSink struct {
	W    io.Writer
	JSON bool
}

func (s WriterSink) Deliver(_ context.Context, f Finding) error {
	if s.JSON {
		_, err := fmt.Fprintf(s.W, "%s\n", f.JSON())
		return err
	}
	_, err := fmt.Fprintln(s.W, f.Text())
	return err
}

// HookSink runs a shell command per finding with the details in the
// environment: CPANTLOG_FINDING_ID, _KIND, _SECURITY (0/1), _INDEX, _PATH,
// _MESSAGE, _EVIDENCE and _JSON.
type HookSink struct {
	Command string
	Timeout time.Duration
}

func (s HookSink) Deliver(ctx context.Context, f Finding) error {
	if s.Timeout == 0 {
		s.Timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", s.Command)
	idx := ""
	if f.Index != nil {
		idx = strconv.FormatUint(*f.Index, 10)
	}
	sec := "0"
	if f.Security {
		sec = "1"
	}
	cmd.Env = append(os.Environ(),
		"CPANTLOG_FINDING_ID="+f.ID, "CPANTLOG_FINDING_KIND="+f.Kind, "CPANTLOG_FINDING_SECURITY="+sec,
		"CPANTLOG_FINDING_INDEX="+idx, "CPANTLOG_FINDING_PATH="+f.Path, "CPANTLOG_FINDING_MESSAGE="+f.Message,
		"CPANTLOG_FINDING_EVIDENCE="+f.Evidence, "CPANTLOG_FINDING_JSON="+string(f.JSON()))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("hook %q: %v: %s", s.Command, err, bytes.TrimSpace(out))
	}
	return nil
}

// WebhookSink POSTs each finding as JSON, retrying with backoff.
type WebhookSink struct {
	URL     string
	Client  *http.Client
	Retries int
}

func (s WebhookSink) Deliver(ctx context.Context, f Finding) error {
	c := s.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	retries := s.Retries
	if retries == 0 {
		retries = 4
	}
	var last error
	for attempt := 0; attempt <= retries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(200<<attempt) * time.Millisecond):
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(f.JSON()))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			last = err
			continue
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return nil
		}
		last = fmt.Errorf("webhook %s: %s", s.URL, resp.Status)
		if resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
			break
		}
	}
	return last
}

// Deliver sends every finding in the outbox to the sinks, oldest first, and
// removes it. A sink that fails is logged; the finding is not sent again,
// so a flaky webhook cannot cause repeated alerts elsewhere. It returns the
// findings delivered.
func (m *Monitor) Deliver(ctx context.Context, sinks ...Sink) ([]Finding, error) {
	var out []Finding
	err := m.DeliverEach(ctx, func(f Finding) { out = append(out, f) }, sinks...)
	return out, err
}

// deliverPage is how many findings Deliver reads from the outbox at a time.
const deliverPage = 256

// DeliverEach is Deliver handing each finding delivered to fn instead of
// returning them: its memory is a page of findings, however many the
// outbox holds.
func (m *Monitor) DeliverEach(ctx context.Context, fn func(Finding), sinks ...Sink) error {
	for {
		keys, findings, err := m.st.outbox(deliverPage)
		if err != nil || len(findings) == 0 {
			return err
		}
		for i, f := range findings {
			for _, s := range sinks {
				if err := s.Deliver(ctx, f); err != nil {
					m.cfg.Logger.Error("deliver finding", "id", f.ID, "err", err)
					m.metrics.deliveryFailures.WithLabelValues(sinkName(s)).Inc()
				}
			}
			m.metrics.findings.WithLabelValues(f.Kind, strconv.FormatBool(f.Security)).Inc()
			err := m.st.delivered(keys[i])
			fn(f)
			if err != nil {
				return err
			}
		}
	}
}

type metrics struct {
	registry         *prometheus.Registry
	entries          prometheus.Counter
	audited          prometheus.Gauge
	checkpointSize   prometheus.Gauge
	logSize          prometheus.Gauge
	findings         *prometheus.CounterVec
	deliveryFailures *prometheus.CounterVec
	lastRound        prometheus.Gauge
	roundErrors      prometheus.Counter
}

// sinkName labels a sink in metrics.
func sinkName(s Sink) string {
	switch s.(type) {
	case WebhookSink, *WebhookSink:
		return "webhook"
	case HookSink, *HookSink:
		return "hook"
	case WriterSink, *WriterSink:
		return "output"
	}
	return "other"
}

func newMetrics() *metrics {
	m := &metrics{
		registry:         prometheus.NewRegistry(),
		entries:          prometheus.NewCounter(prometheus.CounterOpts{Name: "cpantlog_monitor_entries_total", Help: "Entries audited by this process."}),
		audited:          prometheus.NewGauge(prometheus.GaugeOpts{Name: "cpantlog_monitor_audited_size", Help: "Entries audited so far."}),
		checkpointSize:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "cpantlog_monitor_checkpoint_size", Help: "Size of the latest trusted checkpoint."}),
		logSize:          prometheus.NewGauge(prometheus.GaugeOpts{Name: "cpantlog_monitor_log_size", Help: "Size of the latest checkpoint the log served, as read, before it is verified (what the monitor trusts is cpantlog_monitor_checkpoint_size; what it audited, cpantlog_monitor_audited_size)."}),
		findings:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cpantlog_monitor_findings_total", Help: "Findings reported, by kind and whether they are security findings (an incident)."}, []string{"kind", "security"}),
		deliveryFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cpantlog_monitor_delivery_failures_total", Help: "Findings a sink (webhook, hook, output) failed to take, after its retries."}, []string{"sink"}),
		lastRound:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "cpantlog_monitor_last_round_timestamp_seconds", Help: "When the last round that completed without error ended (Unix time)."}),
		roundErrors:      prometheus.NewCounter(prometheus.CounterOpts{Name: "cpantlog_monitor_round_errors_total", Help: "Rounds that failed (the log, a witness or the state could not be read)."}),
	}
	m.registry.MustRegister(m.entries, m.audited, m.checkpointSize, m.logSize, m.findings, m.deliveryFailures, m.lastRound, m.roundErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// RoundDone records how a round ended, for /healthz and the metrics.
func (m *Monitor) RoundDone(err error) {
	m.roundMu.Lock()
	defer m.roundMu.Unlock()
	if err != nil {
		m.metrics.roundErrors.Inc()
		m.lastErr = err
		return
	}
	m.lastErr = nil
	m.lastOK = time.Now()
	m.metrics.lastRound.Set(float64(m.lastOK.Unix()))
}

// Registerer is where parts the monitor runs (a Router) register their
// metrics, to be served with the monitor's own.
func (m *Monitor) Registerer() prometheus.Registerer { return m.metrics.registry }

// AddHealthCheck adds a check to /healthz: it returns why the part it
// checks needs its operator, or "" when healthy.
func (m *Monitor) AddHealthCheck(check func() string) {
	m.roundMu.Lock()
	defer m.roundMu.Unlock()
	m.healthChecks = append(m.healthChecks, check)
}

// Unhealthy says why the following monitor needs its operator: its last
// round failed, no round completed within maxAge, or a check added with
// AddHealthCheck says so. "" when healthy.
func (m *Monitor) Unhealthy(maxAge time.Duration) string {
	m.roundMu.Lock()
	defer m.roundMu.Unlock()
	for _, check := range m.healthChecks {
		if why := check(); why != "" {
			return why
		}
	}
	switch {
	case m.lastErr != nil:
		return "round: the last round failed: " + m.lastErr.Error()
	case m.lastOK.IsZero():
		return "round: no round has completed yet"
	case time.Since(m.lastOK) > maxAge:
		return fmt.Sprintf("round: the last completed round ended %s ago, more than %s", time.Since(m.lastOK).Round(time.Second), maxAge)
	}
	return ""
}

// MetricsHandler serves the monitor's Prometheus metrics.
func (m *Monitor) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(m.metrics.registry, promhttp.HandlerOpts{})
}

// Handler serves /metrics and /healthz (503 with the reason when the last
// round failed or none completed within maxAge), every response with
// nosniff and a CSP.
func (m *Monitor) Handler(maxAge time.Duration) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.MetricsHandler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if why := m.Unhealthy(maxAge); why != "" {
			http.Error(w, why, http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	return httpserver.SecureHeaders(mux)
}
