package api

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the API's Prometheus metrics, on the log's registry, which
// GET /metrics serves whole.
type Metrics struct {
	registry   *prometheus.Registry
	adds       *prometheus.CounterVec
	addSeconds prometheus.Histogram
	requests   *prometheus.CounterVec
	cpSize     prometheus.Gauge
}

// NewMetrics registers the API's metrics in reg: once per registry, so
// that every Server of one log counts in the same metrics.
func NewMetrics(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		registry: reg,
		adds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cpantlog_adds_total",
			Help: "POST /add requests by outcome (logged, duplicate, conflict, invalid, unauthorized, too_large, overloaded, error) and by the name of the ingest token used (empty when none matched).",
		}, []string{"outcome", "token"}),
		addSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cpantlog_add_seconds",
			Help:    "Time from an add request to its durable sequencing.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cpantlog_http_requests_total",
			Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		cpSize: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cpantlog_checkpoint_size",
			Help: "Tree size of the latest checkpoint served.",
		}),
	}
	reg.MustRegister(m.adds, m.addSeconds, m.requests, m.cpSize)
	return m
}

func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
