package witness

import (
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/CPAN-Security/cpan-tlog/internal/httpserver"
)

type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	size     *prometheus.GaugeVec
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cpantlog_witness_add_checkpoint_total",
			Help: "add-checkpoint requests by outcome.",
		}, []string{"outcome"}),
		size: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cpantlog_witness_latest_size",
			Help: "Tree size of the latest cosigned checkpoint per log.",
		}, []string{"origin"}),
	}
	m.registry.MustRegister(m.requests, m.size, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves POST /add-checkpoint, GET /<hex sha256(origin)>/checkpoint,
// /healthz and /metrics.
func (w *Witness) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /add-checkpoint", w.handleAdd)
	mux.HandleFunc("GET /{id}/checkpoint", w.handleLatest)
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, r *http.Request) {
		if why := w.Unhealthy(); why != "" {
			http.Error(rw, why, http.StatusServiceUnavailable)
			return
		}
		io.WriteString(rw, "ok\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(w.metrics.registry, promhttp.HandlerOpts{}))
	// nosniff and a CSP on every response.
	return httpserver.SecureHeaders(mux)
}

func (w *Witness) handleAdd(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, MaxRequestSize))
	var a Answer
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		a = answer(http.StatusRequestEntityTooLarge, "too_large", "request body is larger than %d bytes", MaxRequestSize)
	case err != nil:
		a = answer(http.StatusBadRequest, "malformed", "read body: %v", err)
	default:
		a = w.AddCheckpoint(body)
	}
	w.metrics.requests.WithLabelValues(a.Outcome).Inc()
	if a.Status != http.StatusOK {
		w.logger.Info("add-checkpoint refused", "status", a.Status, "outcome", a.Outcome, "remote", r.RemoteAddr, "reason", strings.TrimSpace(string(a.Body)))
	}
	if a.Status == http.StatusTooManyRequests {
		rw.Header().Set("Retry-After", "1")
	}
	rw.Header().Set("Content-Type", a.ContentType)
	rw.WriteHeader(a.Status)
	rw.Write(a.Body)
}

func (w *Witness) handleLatest(rw http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for origin, keys := range w.config.Load().Logs {
		if OriginID(origin) != id {
			continue
		}
		b, err := w.store.get(origin)
		if err != nil {
			w.logger.Error("reading its state failed", "err", err)
			http.Error(rw, "the witness failed reading its state; its operators find the details in its log", http.StatusInternalServerError)
			return
		}
		if b == nil {
			break
		}
		// A state written before the witness kept only what it verified may
		// hold lines it never checked: serve only the lines that verify.
		if b = w.onlyVerified(b, keys); b == nil {
			break
		}
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rw.Header().Set("Cache-Control", "no-cache")
		rw.Write(b)
		return
	}
	http.Error(rw, "this witness has cosigned no checkpoint of that log", http.StatusNotFound)
}
