package log

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/CPAN-Security/cpan-tlog/internal/confline"
)

// The log's diagnosis of its witnesses, from their answers to its
// add-checkpoint requests (C2SP tlog-witness). A witness that refuses the
// log's checkpoints (403: it does not trust the log's key; 404: it does
// not know the origin; 409 without a size: it cosigned another tree at
// that size; 422: the log's tree does not extend what it cosigned; 400)
// never changes its mind by itself: each change of a witness's state is
// one WARN naming it, the reason it gave and what to check, /healthz
// names it, and POST /add?wait=1 and shutdown stop waiting for a
// checkpoint the quorum cannot cosign.

// Witness states.
const (
	witnessOK          = "ok"          // it cosigned
	witnessRefusing    = "refusing"    // a 4xx answer other than the size handshake and 429
	witnessFailing     = "failing"     // 5xx or 429: its own trouble, which may pass
	witnessUnreachable = "unreachable" // no answer
)

// maxWitnessReason bounds the part of a witness's answer kept and logged.
const maxWitnessReason = 512

type witnessState struct {
	name, base string // the policy's name and URL
	sigPrefix  string // "— <key name> ": a cosignature line of its key
	keyHash    []byte // its key's hash, which the line's signature starts with
	host       string // the label of the witness metrics
	state      string // "" until it answers
	status     int
	reason     string
	since      time.Time
	seq        uint64 // of its last answer
}

// witnessWatch holds the state of every witness of the policy.
type witnessWatch struct {
	logger   *slog.Logger
	origin   string
	vkey     string
	failOpen bool
	quorum   *quorumNode // nil: quorum none
	byKey    map[string]*witnessState
	order    []*witnessState
	refusing *prometheus.GaugeVec

	mu      sync.Mutex
	seq     uint64
	changed chan struct{} // closed and replaced on every answer
}

// newWitnessWatch reads the policy's witness, group and quorum lines
// (Tessera has checked the policy already).
func newWitnessWatch(policy []byte, origin, vkey string, failOpen bool, logger *slog.Logger, reg *prometheus.Registry) (*witnessWatch, error) {
	w := &witnessWatch{logger: logger, origin: origin, vkey: vkey, failOpen: failOpen, byKey: map[string]*witnessState{}, changed: make(chan struct{})}
	nodes := map[string]*quorumNode{}
	quorum := ""
	err := confline.Each("policy", policy, func(f []string) error {
		switch {
		case f[0] == "witness" && len(f) == 4:
			u, err := url.Parse(f[3])
			if err != nil {
				return err
			}
			ep := u.JoinPath("/add-checkpoint") // where Tessera posts
			s := &witnessState{name: f[1], base: f[3], host: ep.Host}
			if kname, rest, ok := strings.Cut(f[2], "+"); ok {
				if h, _, ok := strings.Cut(rest, "+"); ok {
					if kh, err := hex.DecodeString(h); err == nil && len(kh) == 4 {
						s.sigPrefix, s.keyHash = "— "+kname+" ", kh
					}
				}
			}
			w.byKey[endpointKey(ep)] = s
			w.order = append(w.order, s)
			nodes[f[1]] = &quorumNode{witness: s}
		case f[0] == "group" && len(f) >= 3:
			g := &quorumNode{}
			for _, m := range f[3:] {
				if nodes[m] == nil {
					return fmt.Errorf("unknown member %q", m)
				}
				g.kids = append(g.kids, nodes[m])
			}
			switch f[2] {
			case "any":
				g.need = 1
			case "all":
				g.need = len(g.kids)
			default:
				n, err := strconv.Atoi(f[2])
				if err != nil {
					return err
				}
				g.need = n
			}
			nodes[f[1]] = g
		case f[0] == "quorum" && len(f) == 2:
			quorum = f[1] // as in Tessera: the last line counts, resolved at the end
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if quorum != "none" {
		if w.quorum = nodes[quorum]; w.quorum == nil {
			return nil, fmt.Errorf("unknown quorum %q", quorum)
		}
	}
	w.refusing = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cpantlog_witness_refusing",
		Help: "1 while a witness refuses the log's checkpoints (its last answer was a 4xx other than the size handshake or 429: wrong log key, unknown origin, another tree), else 0; by witness host (as cpantlog_witness_requests_total) and policy name.",
	}, []string{"witness", "name"})
	for _, s := range w.order {
		w.refusing.WithLabelValues(s.host, s.name).Set(0)
	}
	reg.MustRegister(w.refusing)
	return w, nil
}

// endpointKey names a witness's add-checkpoint URL (url.JoinPath leaves
// the path of a URL without one relative).
func endpointKey(u *url.URL) string { return u.Host + "/" + strings.TrimPrefix(u.Path, "/") }

// quorumNode is the policy's quorum as a tree: a witness, or a group
// needing need of its kids.
type quorumNode struct {
	witness *witnessState
	need    int
	kids    []*quorumNode
}

// possible says whether the quorum can be met without the lost witnesses.
func (n *quorumNode) possible(lost func(*witnessState) bool) bool {
	if n.witness != nil {
		return !lost(n.witness)
	}
	have := 0
	for _, k := range n.kids {
		if k.possible(lost) {
			have++
		}
	}
	return have >= n.need
}

// observe records a witness's answer to an add-checkpoint request: resp
// and its body, or err. It reads a refusal's body (bounded) and puts it
// back for Tessera.
func (w *witnessWatch) observe(r *http.Request, resp *http.Response, err error) {
	s := w.byKey[endpointKey(r.URL)]
	if s == nil {
		return
	}
	var state, reason string
	status := 0
	switch {
	case err != nil && errors.Is(r.Context().Err(), context.Canceled):
		return // Tessera stopped asking: the quorum was met, or shutdown
	case err != nil && r.Context().Err() != nil:
		state, reason = witnessUnreachable, "no answer within the witness timeout"
	case err != nil:
		state, reason = witnessUnreachable, err.Error()
	case resp.StatusCode == http.StatusOK:
		// Tessera checks the signature; a 200 of no line of the
		// witness's key is not a cosignature (garbage, another key).
		b, _ := io.ReadAll(io.LimitReader(resp.Body, MaxWitnessAnswer))
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), resp.Body), resp.Body}
		state = witnessOK
		if !s.cosignatureLine(b) {
			state, status = witnessFailing, resp.StatusCode
			reason = "answered without a cosignature line of its key: " + printable(b[:min(len(b), maxWitnessReason)])
		}
	case resp.StatusCode == http.StatusConflict && resp.Header.Get("Content-Type") == "text/x.tlog.size":
		return // the size handshake: Tessera asks again with the right size
	default:
		status = resp.StatusCode
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxWitnessReason))
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), resp.Body), resp.Body}
		reason = printable(b)
		state = witnessRefusing
		if status >= 500 || status == http.StatusTooManyRequests || status < 400 {
			state = witnessFailing
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq++
	s.seq = w.seq
	was, wasStatus, since := s.state, s.status, s.since
	s.status, s.reason = status, reason
	if state != was || status != wasStatus {
		s.state, s.since = state, time.Now()
		w.announce(s, was, since)
	}
	v := 0.0
	if state == witnessRefusing {
		v = 1
	}
	w.refusing.WithLabelValues(s.host, s.name).Set(v)
	close(w.changed)
	w.changed = make(chan struct{})
}

// cosignatureLine says whether b holds a signature line of s's key (its
// name, and a signature starting with its key hash). A policy key this
// cannot read is taken on trust, as before.
func (s *witnessState) cosignatureLine(b []byte) bool {
	if s.sigPrefix == "" {
		return true
	}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, s.sigPrefix)
		if !ok {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(rest)
		if err == nil && len(sig) > len(s.keyHash) && bytes.Equal(sig[:len(s.keyHash)], s.keyHash) {
			return true
		}
	}
	return false
}

// announce logs s's new state; was is the state before, since when.
func (w *witnessWatch) announce(s *witnessState, was string, since time.Time) {
	attrs := []any{"witness", s.name, "url", s.base}
	switch s.state {
	case witnessOK:
		if was == "" {
			w.logger.Info("witness cosigns the log's checkpoints", attrs...)
			return
		}
		w.logger.Info("witness cosigns the log's checkpoints again", append(attrs, "was", was, "for", time.Since(since).Round(time.Second))...)
		return
	case witnessRefusing:
		w.logger.Warn("witness refuses the log's checkpoints", append(attrs, "status", s.status, "reason", s.reason, "check", w.hint(s))...)
	case witnessFailing:
		w.logger.Warn("witness fails to cosign", append(attrs, "status", s.status, "reason", s.reason, "check", "the witness's operators find why in its log; the log asks again with every checkpoint")...)
	case witnessUnreachable:
		w.logger.Warn("witness unreachable", append(attrs, "err", s.reason, "check", "is the witness running, and is its URL in the policy right? the log asks again with every checkpoint")...)
	}
	if w.quorum != nil && !w.quorum.possible(func(o *witnessState) bool { return o.state != witnessOK && o.state != "" }) {
		var not []string
		for _, o := range w.order {
			if o.state != witnessOK && o.state != "" {
				not = append(not, o.name+" "+o.state)
			}
		}
		w.logger.Warn("the witness quorum cannot be met: no new checkpoint is published until the witnesses cosign (acknowledged entries are stored and wait)", "witnesses", strings.Join(not, ", "))
	}
}

// hint is what to check about a refusing witness.
func (w *witnessWatch) hint(s *witnessState) string {
	switch s.status {
	case http.StatusForbidden:
		return fmt.Sprintf("the witness does not trust this log's key: give it this log's verifier key %s (for cpantlog-witness, the config line 'log %s'); if it should know it, compare the key it has", w.vkey, w.vkey)
	case http.StatusNotFound:
		return fmt.Sprintf("the witness does not know this log's origin %q: add the log to its configuration with the verifier key %s (for cpantlog-witness, 'log %s')", w.origin, w.vkey, w.vkey)
	case http.StatusConflict:
		return "the witness cosigned a different tree of this origin at the size it holds: this log's tree is not the one it saw (restored from an old backup? another log under this origin?): do not reset the witness; see SECURITY.md"
	case http.StatusUnprocessableEntity:
		return "the witness refuses the consistency proof: this log's tree does not extend the tree it cosigned (restored from an old backup? another log under this origin?): do not reset the witness; see SECURITY.md"
	case http.StatusBadRequest:
		return "the witness finds the request malformed: compare its version with the log's, and read its log"
	case http.StatusUnauthorized:
		return "the witness wants authentication the log does not send: ask its operators"
	}
	return "read the reason, and the witness's log"
}

// describeLocked names the witnesses not cosigning (all of them not ok;
// refusingOnly: only the refusing ones), one clause each. w.mu is held.
func (w *witnessWatch) describeLocked(refusingOnly bool) string {
	var out []string
	for _, s := range w.order {
		if s.state == witnessOK || s.state == "" || refusingOnly && s.state != witnessRefusing {
			continue
		}
		c := fmt.Sprintf("witness %s (%s) %s since %s", s.name, s.base, s.state, s.since.UTC().Format(time.RFC3339))
		if s.status != 0 {
			c += fmt.Sprintf(": %d %s", s.status, s.reason)
		} else if s.reason != "" {
			c += ": " + s.reason
		}
		if s.state == witnessRefusing {
			c += " (check: " + w.hint(s) + ")"
		}
		out = append(out, c)
	}
	return strings.Join(out, "; ")
}

// health says what /healthz reports of the witnesses: why the log is
// unhealthy (refusing witnesses leave the quorum out of reach: a refusal
// does not pass by itself), or why it is degraded (a witness is not
// cosigning but the quorum is within reach, or it may come back), or
// neither.
func (w *witnessWatch) health() (unhealthy, degraded string) {
	if w == nil {
		return "", ""
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.quorum != nil && !w.quorum.possible(func(s *witnessState) bool { return s.state == witnessRefusing }) {
		if w.failOpen {
			return "witnesses: the quorum cannot be met: checkpoints are published without it (--witness-fail-open), and clients of the policy refuse them: " + w.describeLocked(true), ""
		}
		return "witnesses: the quorum cannot be met, no checkpoint can be published: " + w.describeLocked(true), ""
	}
	if d := w.describeLocked(false); d != "" {
		return "", "witnesses: " + d
	}
	return "", ""
}

// mark is the sequence number of the latest answer, and a channel closed
// at the next one.
func (w *witnessWatch) mark() (uint64, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seq, w.changed
}

// blockedAfter says why no checkpoint can be cosigned, going by the
// answers after mark: the quorum is out of reach without the witnesses
// that refused, failed or did not answer since. "" when it may come (or
// when checkpoints are published without the quorum, fail-open).
func (w *witnessWatch) blockedAfter(mark uint64) string {
	if w == nil || w.quorum == nil || w.failOpen {
		return ""
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	lost := func(s *witnessState) bool { return s.seq > mark && s.state != witnessOK }
	if w.quorum.possible(lost) {
		return ""
	}
	var out []string
	for _, s := range w.order {
		if !lost(s) {
			continue
		}
		c := fmt.Sprintf("witness %s %s", s.name, s.state)
		if s.status != 0 {
			c += fmt.Sprintf(" (%d %s)", s.status, s.reason)
		} else if s.reason != "" {
			c += " (" + s.reason + ")"
		}
		out = append(out, c)
	}
	return "the witness quorum cannot be met: " + strings.Join(out, "; ")
}

// printable is b as one line of text: invalid UTF-8 and control
// characters replaced, white space runs made one space.
func printable(b []byte) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if !utf8.ValidString(s) {
		return ""
	}
	return s
}
