package log

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/CPAN-Security/cpan-tlog/log/api"
	"github.com/CPAN-Security/cpan-tlog/log/index"
)

// metrics are the log's Prometheus metrics, on a registry of its own so
// that several logs can live in one process (tests do). The health
// watch (package health) adds its gauges to the registry.
type metrics struct {
	registry *prometheus.Registry
	// api are the HTTP API's: requests, adds, the checkpoint served.
	api *api.Metrics
	// indexRoundsSkipped counts the follower's rounds left to another
	// writer indexing the shared lookup index (it held the indexer lock).
	indexRoundsSkipped prometheus.Counter
	// indexAppendsMoved counts the follower's index transactions lost to
	// another writer that indexed the same leaves first.
	indexAppendsMoved prometheus.Counter
	// storageErrors counts storage failures by dependency (mysql, s3).
	storageErrors *prometheus.CounterVec
	// witnessRequests counts the log's add-checkpoint requests to its
	// witnesses by outcome.
	witnessRequests *prometheus.CounterVec
	// followPolls and followLastOK are the --follow mirrors' polls.
	followPolls  *prometheus.CounterVec
	followLastOK *prometheus.GaugeVec
	// claimsRolledForward counts claims of dead writers finished by this
	// one, by what it found: the leaf already in the tree, or logged now.
	claimsRolledForward *prometheus.CounterVec
}

// newMetrics registers the log's metrics, cpantlog_index_size among them:
// read from ix at each scrape, so that it says the index's size whoever
// indexed it (this writer, another writer of a shared index, or nobody
// since Open), NaN when the index cannot say.
func newMetrics(ix index.Store) *metrics {
	indexSize := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cpantlog_index_size",
		Help: "Entries held by the lookup index.",
	}, func() float64 {
		n, err := ix.Size()
		if err != nil {
			return math.NaN()
		}
		return float64(n)
	})
	m := &metrics{
		registry: prometheus.NewRegistry(),
		indexRoundsSkipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cpantlog_index_rounds_skipped_total",
			Help: "Rounds of the lookup index follower skipped because another writer of the shared index was indexing (held the indexer lock).",
		}),
		indexAppendsMoved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cpantlog_index_appends_moved_total",
			Help: "Lookup index transactions of this writer lost to another writer of the shared index that indexed the same entries first: work done twice. Rare while writers take turns (the indexer lock); rising steadily, they are not.",
		}),
	}
	m.api = api.NewMetrics(m.registry)
	m.followPolls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cpantlog_follow_polls_total",
		Help: "Polls of each --follow mirror, by outcome (ok, error).",
	}, []string{"mirror", "outcome"})
	m.followLastOK = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cpantlog_follow_last_success_timestamp_seconds",
		Help: "When each --follow mirror was last polled without error (Unix time).",
	}, []string{"mirror"})
	m.witnessRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cpantlog_witness_requests_total",
		Help: "The log's requests to its witnesses (add-checkpoint), by witness host and outcome: 200, 409 (the size handshake), another status, or error (unreachable).",
	}, []string{"witness", "outcome"})
	m.storageErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cpantlog_storage_errors_total",
		Help: "Storage operations that failed because a dependency was unavailable, by dependency (mysql, s3, storage when unknown).",
	}, []string{"dependency"})
	m.claimsRolledForward = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cpantlog_claims_rolled_forward_total",
		Help: "Path claims left by a writer that stopped between deciding an add and acknowledging it, finished by this writer: found (the tree held the leaf) or logged (this writer logged it).",
	}, []string{"outcome"})
	m.registry.MustRegister(m.followPolls, m.followLastOK, m.witnessRequests, m.storageErrors, m.claimsRolledForward)
	m.registry.MustRegister(indexSize, m.indexRoundsSkipped, m.indexAppendsMoved,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// countingTransport counts each request's outcome by host.
type countingTransport struct {
	next   http.RoundTripper
	counts *prometheus.CounterVec
	// watch, when not nil, diagnoses the witnesses from their answers.
	watch *witnessWatch
}

// MaxWitnessAnswer bounds a witness's answer to add-checkpoint (a
// cosignature line, or a size, or a reason: a few KiB even for
// ML-DSA-44). Tessera reads the answer whole and quotes it in its errors,
// so a longer one ends in an error instead.
const MaxWitnessAnswer = 64 << 10

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(r)
	if err == nil {
		resp.Body = &boundedBody{rc: resp.Body, left: MaxWitnessAnswer}
	}
	outcome := "error"
	if err == nil {
		outcome = strconv.Itoa(resp.StatusCode)
	}
	c.counts.WithLabelValues(r.URL.Host, outcome).Inc()
	if c.watch != nil {
		c.watch.observe(r, resp, err)
	}
	return resp, err
}

// boundedBody is a response body that fails past left bytes.
type boundedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly the bound from a longer one.
		var one [1]byte
		if n, err := b.rc.Read(one[:]); n == 0 {
			return 0, err
		}
		return 0, fmt.Errorf("the witness's answer is longer than %d bytes", MaxWitnessAnswer)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *boundedBody) Close() error { return b.rc.Close() }
