package witness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/internal/atomicfile"
)

// LearnedLogsFile, in a witness's data directory, holds the logs the
// witness learned from a c2sp.org/tlog-list, as a tlog-list. It is the
// witness's own configuration: the witness reads it at every start,
// whether or not a list is still configured or reachable.
const LearnedLogsFile = "learned-logs.list"

// DefaultLogListTimeout bounds one read of a list.
const DefaultLogListTimeout = 30 * time.Second

// LogListOptions says where a witness's tlog-list is.
type LogListOptions struct {
	// Source is an http(s) URL or a file path; "" for none (the logs
	// learned before are still witnessed).
	Source string
	// Timeout bounds one read of the list (0: DefaultLogListTimeout).
	Timeout time.Duration
}

// LogList keeps a witness's logs: those of its configuration file (the
// base, replaced on reload) and those it learned from a tlog-list. As the
// public witness network asks, a list only ever adds logs: a log the
// witness has is never removed or changed because a list dropped it or
// lists it with another key, qpd or contact. A list that cannot be read,
// is too large or does not parse changes nothing.
type LogList struct {
	w       *Witness
	source  string
	url     *url.URL // nil for a file
	timeout time.Duration
	client  *http.Client
	path    string
	logger  *slog.Logger
	m       *listMetrics
	poke    chan struct{}

	mu      sync.Mutex
	base    *Config
	learned []ListLog
	told    map[string]bool // what was logged once
}

type listMetrics struct {
	fetches   *prometheus.CounterVec
	logs      prometheus.Gauge
	learned   prometheus.Gauge
	conflicts prometheus.Gauge
	success   prometheus.Gauge
}

// Outcomes of a list read, the label of cpantlog_witness_log_list_reads_total.
const (
	listOK          = "ok"
	listUnreachable = "unreachable"
	listTooLarge    = "too_large"
	listMalformed   = "malformed"
	listStoreFailed = "store_failed"
)

func register[T prometheus.Collector](r *prometheus.Registry, c T) T {
	if err := r.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return are.ExistingCollector.(T)
		}
		panic(err)
	}
	return c
}

func newListMetrics(r *prometheus.Registry) *listMetrics {
	m := &listMetrics{
		fetches: register(r, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cpantlog_witness_log_list_reads_total",
			Help: "Reads of the c2sp.org/tlog-list by outcome (ok, unreachable, too_large, malformed, store_failed).",
		}, []string{"outcome"})),
		logs: register(r, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cpantlog_witness_logs",
			Help: "Logs (origins) the witness cosigns for: its config file's and those learned from a list.",
		})),
		learned: register(r, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cpantlog_witness_logs_learned",
			Help: "Logs the witness learned from a c2sp.org/tlog-list (kept in " + LearnedLogsFile + ").",
		})),
		conflicts: register(r, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cpantlog_witness_log_list_key_conflicts",
			Help: "Logs the last list read gave another key than the one the witness has (refused; the witness keeps its key).",
		})),
		success: register(r, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cpantlog_witness_log_list_last_success_timestamp_seconds",
			Help: "Unix time of the last list read that parsed and was applied.",
		})),
	}
	for _, o := range []string{listOK, listUnreachable, listTooLarge, listMalformed, listStoreFailed} {
		m.fetches.WithLabelValues(o)
	}
	return m
}

// OpenLogList loads the logs w learned from lists before (LearnedLogsFile
// in its data directory), adds them to base, the logs of its configuration
// file, and makes that w's configuration. A learned-logs file that does not
// parse is an error: it is the witness's own configuration.
func OpenLogList(w *Witness, base *Config, opts LogListOptions) (*LogList, error) {
	if base == nil {
		base = &Config{Logs: map[string][]note.Verifier{}}
	}
	l := &LogList{w: w, source: opts.Source, timeout: opts.Timeout, logger: w.logger,
		path: filepath.Join(w.dataDir, LearnedLogsFile), base: base, told: map[string]bool{},
		poke: make(chan struct{}, 1), m: newListMetrics(w.metrics.registry)}
	if l.timeout <= 0 {
		l.timeout = DefaultLogListTimeout
	}
	if strings.HasPrefix(opts.Source, "http://") || strings.HasPrefix(opts.Source, "https://") {
		u, err := url.Parse(opts.Source)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("log list URL %q: not an http(s) URL", opts.Source)
		}
		l.url = u
		l.client = client.NewHTTPClient(l.timeout)
		l.client.CheckRedirect = checkListRedirect
	} else if strings.Contains(opts.Source, "://") {
		return nil, fmt.Errorf("log list %q: want an http(s) URL or a file path", opts.Source)
	}
	learned, err := readLearned(l.path)
	if err != nil {
		return nil, err
	}
	l.learned = learned
	l.mu.Lock()
	defer l.mu.Unlock()
	l.applyLocked()
	return l, nil
}

// checkListRedirect follows a redirect only on the list's own scheme and
// host (port included): a list moved to another server, loopback or
// another port of it included, is refused (the list is not applied; the
// WARN names where it pointed) until the witness is configured with the
// new URL.
func checkListRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("more than 5 redirects")
	}
	if from := via[0].URL; req.URL.Scheme != from.Scheme || !strings.EqualFold(req.URL.Host, from.Host) {
		return fmt.Errorf("refusing a redirect from %s to %s, another scheme or host: configure the list's new URL if it moved", from.Redacted(), req.URL.Redacted())
	}
	return nil
}

// readLearned reads the learned logs; a missing file is no logs.
func readLearned(p string) ([]ListLog, error) {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxLogListSize+1))
	if err != nil {
		return nil, err
	}
	logs, err := ParseLogList(b)
	if err == nil {
		for _, e := range logs {
			if e.Verifier == nil {
				err = fmt.Errorf("line %d: key type 0x%02x, which this witness cannot verify", e.Line, e.KeyType)
				break
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s, the logs this witness learned from a list: %w (restore it from a backup: removing it makes the witness forget those logs)", p, err)
	}
	return logs, nil
}

// SetBase replaces the logs of the configuration file, keeping those
// learned from a list.
func (l *LogList) SetBase(cfg *Config) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.base = cfg
	l.applyLocked()
}

// Known is the number of logs (origins) the witness cosigns for.
func (l *LogList) Known() int { return len(l.w.config.Load().Logs) }

// Learned returns the logs learned from lists, in the order learned.
func (l *LogList) Learned() []ListLog {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.learned)
}

// merged is the base configuration and the learned logs.
func (l *LogList) mergedLocked() *Config {
	c := &Config{Logs: map[string][]note.Verifier{}, VKeys: map[string][]string{}}
	for o, ks := range l.base.Logs {
		c.Logs[o] = slices.Clone(ks)
		if vk := l.base.VKeys[o]; len(vk) == len(ks) {
			c.VKeys[o] = slices.Clone(vk)
		}
	}
	for _, e := range l.learned {
		if i := keyIndex(c, e.Origin, e); i >= 0 {
			continue
		}
		if _, configured := l.base.Logs[e.Origin]; configured {
			// The configuration file names this origin with other keys:
			// the operator's word wins over a key a list chose before.
			if l.once("base|" + e.Origin + "|" + e.VKey) {
				l.logger.Warn("the configuration file names a log learned from a list with another key: only the configured key is trusted",
					"origin", e.Origin, "kept_key", keysOf(c, e.Origin), "listed_key", e.VKey)
			}
			continue
		}
		if len(c.VKeys[e.Origin]) != len(c.Logs[e.Origin]) {
			c.VKeys[e.Origin] = nil // no longer parallel; messages use key IDs
		} else {
			c.VKeys[e.Origin] = append(c.VKeys[e.Origin], e.VKey)
		}
		c.Logs[e.Origin] = append(c.Logs[e.Origin], e.Verifier)
	}
	return c
}

func (l *LogList) applyLocked() {
	c := l.mergedLocked()
	l.w.SetConfig(c)
	l.m.logs.Set(float64(len(c.Logs)))
	l.m.learned.Set(float64(len(l.learned)))
}

// keyIndex is the index of e's key among c's keys of origin, or -1. Keys
// are compared as written where c has them, else by name and key hash.
func keyIndex(c *Config, origin string, e ListLog) int {
	ks := c.Logs[origin]
	if vk := c.VKeys[origin]; len(vk) == len(ks) {
		return slices.Index(vk, e.VKey)
	}
	if e.Verifier == nil {
		return -1
	}
	return slices.IndexFunc(ks, func(k note.Verifier) bool {
		return k.Name() == e.Verifier.Name() && k.KeyHash() == e.Verifier.KeyHash()
	})
}

// keysOf names origin's keys in c: as written where known, else as key IDs.
func keysOf(c *Config, origin string) string {
	ks := c.Logs[origin]
	if vk := c.VKeys[origin]; len(vk) == len(ks) {
		return strings.Join(vk, " ")
	}
	ids := make([]string, len(ks))
	for i, k := range ks {
		ids[i] = fmt.Sprintf("%s+%08x", k.Name(), k.KeyHash())
	}
	return strings.Join(ids, " ")
}

// Poke asks Run to read the list now.
func (l *LogList) Poke() {
	select {
	case l.poke <- struct{}{}:
	default:
	}
}

// Run reads the list now, then every interval and when poked, until ctx
// is done. It does nothing without a list source.
func (l *LogList) Run(ctx context.Context, every time.Duration) {
	if l.source == "" {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		l.Refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-l.poke:
		}
	}
}

// Refresh reads the list once and adds the logs it lists that the witness
// does not know. Any failure is logged at WARN and leaves the witness's
// logs as they were.
func (l *LogList) Refresh(ctx context.Context) error {
	if l.source == "" {
		return errors.New("no log list is configured")
	}
	b, outcome, err := l.fetch(ctx)
	if err == nil {
		var logs []ListLog
		if logs, err = ParseLogList(b); err != nil {
			outcome = listMalformed
		} else {
			outcome, err = l.apply(logs)
		}
	}
	l.m.fetches.WithLabelValues(outcome).Inc()
	if err != nil {
		l.logger.Warn("log list not applied; the witness's logs are unchanged", "list", l.redacted(), "outcome", outcome, "err", err)
		return err
	}
	l.m.success.SetToCurrentTime()
	return nil
}

func (l *LogList) redacted() string {
	if l.url != nil {
		return l.url.Redacted()
	}
	return l.source
}

// fetch reads the list, bounded in size and time.
func (l *LogList) fetch(ctx context.Context) ([]byte, string, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	var r io.Reader
	if l.url != nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.url.String(), nil)
		if err != nil {
			return nil, listUnreachable, err
		}
		req.Header.Set("User-Agent", "cpantlog-witness")
		resp, err := l.client.Do(req)
		if err != nil {
			return nil, listUnreachable, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, listUnreachable, fmt.Errorf("GET %s: %s", l.url.Redacted(), resp.Status)
		}
		if resp.ContentLength > MaxLogListSize {
			return nil, listTooLarge, fmt.Errorf("the list is %d bytes, more than the %d this witness reads", resp.ContentLength, MaxLogListSize)
		}
		r = resp.Body
	} else {
		f, err := os.Open(l.source)
		if err != nil {
			return nil, listUnreachable, err
		}
		defer f.Close()
		if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
			return nil, listUnreachable, fmt.Errorf("%s is not a regular file", l.source)
		}
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, MaxLogListSize+1))
	if err != nil {
		return nil, listUnreachable, err
	}
	if len(b) > MaxLogListSize {
		return nil, listTooLarge, fmt.Errorf("the list is more than the %d bytes this witness reads", MaxLogListSize)
	}
	return b, listOK, nil
}

// once reports whether key was not logged before, and marks it logged.
func (l *LogList) once(key string) bool {
	if l.told[key] {
		return false
	}
	if len(l.told) >= 4*MaxLogListLogs {
		clear(l.told) // bounded: a list that changes often is told again
	}
	l.told[key] = true
	return true
}

// apply adds the listed logs the witness does not know, durably, and logs
// what it does not take.
func (l *LogList) apply(logs []ListLog) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := l.mergedLocked()
	learned := map[string]ListLog{}
	for _, e := range l.learned {
		learned[e.Origin] = e
	}
	listed := map[string]bool{}
	var add []ListLog
	conflicts := 0
	for _, e := range logs {
		listed[e.Origin] = true
		if _, known := cur.Logs[e.Origin]; known {
			if keyIndex(cur, e.Origin, e) < 0 {
				conflicts++
				if l.once("key|" + e.Origin + "|" + e.VKey) {
					l.logger.Warn("the log list gives a log this witness has another key: refused, the witness keeps its key",
						"origin", e.Origin, "kept_key", keysOf(cur, e.Origin), "listed_key", e.VKey, "list", l.redacted())
				}
			} else if was, ok := learned[e.Origin]; ok && (was.QPD != e.QPD || was.Contact != e.Contact) &&
				l.once(fmt.Sprintf("changed|%s|%d|%s", e.Origin, e.QPD, e.Contact)) {
				l.logger.Info("the log list changed a log's qpd or contact: the witness keeps what it learned",
					"origin", e.Origin, "qpd", was.QPD, "listed_qpd", e.QPD, "contact", was.Contact, "listed_contact", e.Contact)
			}
			continue
		}
		if e.Verifier == nil {
			if l.once("type|" + e.Origin + "|" + e.VKey) {
				l.logger.Warn("the log list names a log whose key type this witness cannot verify: not witnessed",
					"origin", e.Origin, "key", e.VKey, "key_type", fmt.Sprintf("0x%02x", e.KeyType))
			}
			continue
		}
		if len(l.learned)+len(add) >= MaxLogListLogs {
			if l.once("full") {
				l.logger.Warn("the witness learned as many logs from lists as it holds: adds no more", "max", MaxLogListLogs)
			}
			continue
		}
		add = append(add, e)
	}
	l.m.conflicts.Set(float64(conflicts))
	for _, e := range l.learned {
		if listed[e.Origin] {
			delete(l.told, "dropped|"+e.Origin)
		} else if l.once("dropped|" + e.Origin) {
			l.logger.Info("a log learned from the log list is no longer in it: still witnessed", "origin", e.Origin, "key", e.VKey)
		}
	}
	if len(add) == 0 {
		return listOK, nil
	}
	next := append(slices.Clone(l.learned), add...)
	header := []string{
		"The logs this witness learned from c2sp.org/tlog-list lists, written by cpantlog-witness.",
		"It witnesses them whatever a later list says. Restore this file from a backup if it is lost.",
	}
	if err := atomicfile.Write(l.path, MarshalLogList(header, next), 0o600); err != nil {
		return listStoreFailed, fmt.Errorf("storing the learned logs: %w", err)
	}
	l.learned = next
	l.applyLocked()
	for _, e := range add {
		l.logger.Info("witnessing a new log from the log list", "origin", e.Origin, "key", e.VKey, "qpd", e.QPD, "contact", e.Contact)
	}
	return listOK, nil
}
