// Package loadgen drives a log's add endpoint with many concurrent clients
// and measures what it sustains, the same way for cpan-tlog's POST /add and
// for Tessera's conformance personality, so the two can be compared.
package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Target is a log to load.
type Target struct {
	// URLs are the add endpoints: client k sends to URLs[k%len(URLs)],
	// as behind a load balancer over several writers.
	URLs []string
	// Body returns the request body for the i-th add.
	Body  func(i uint64) string
	Token string // bearer token, if any
}

// addURLs turns base URLs, comma-separated, into add endpoints.
func addURLs(bases string) []string {
	var out []string
	for b := range strings.SplitSeq(bases, ",") {
		out = append(out, strings.TrimSuffix(b, "/")+"/add")
	}
	return out
}

// CPANTLog adds distinct v1 uploads through cpan-tlog's JSON API, at one
// base URL or several (comma-separated writers of one log).
func CPANTLog(base, token, prefix string) Target {
	return Target{URLs: addURLs(base), Token: token, Body: func(i uint64) string {
		return fmt.Sprintf(`{"path":"authors/id/L/LO/LOAD/%s-%d.tar.gz","size":%d,"sha256":"%064x","uploader":"LOAD","time":"2024-01-02T03:04:05Z"}`, prefix, i, i, i)
	}}
}

// Tessera adds the same v1 leaves, raw, to Tessera's conformance
// personality (its POST /add takes the entry as the body), at one base
// URL or several (comma-separated front ends of one log).
func Tessera(base, prefix string) Target {
	return Target{URLs: addURLs(base), Body: func(i uint64) string {
		return fmt.Sprintf("cpan-tlog/v1 upload\npath authors/id/L/LO/LOAD/%s-%d.tar.gz\nsize %d\nsha256 %064x\nuploader LOAD\ntime 2024-01-02T03:04:05Z\n", prefix, i, i, i)
	}}
}

// Result is what a run measured.
type Result struct {
	Adds     uint64
	Errors   uint64 // answers other than 200 (503 pushback included)
	Duration time.Duration
	P50, P99 time.Duration
}

// PerSecond is the sustained rate of successful adds.
func (r Result) PerSecond() float64 { return float64(r.Adds) / r.Duration.Seconds() }

// Run sends adds from clients goroutines for d, or until ctx ends.
func Run(ctx context.Context, t Target, clients int, d time.Duration) Result {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	hc := &http.Client{Transport: tr, Timeout: time.Minute}
	var next, ok, bad atomic.Uint64
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	for k := range clients {
		wg.Go(func() {
			var mine []time.Duration
			url := t.URLs[k%len(t.URLs)]
			for ctx.Err() == nil {
				i := next.Add(1)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(t.Body(i)))
				if t.Token != "" {
					req.Header.Set("Authorization", "Bearer "+t.Token)
				}
				s := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						bad.Add(1)
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ok.Add(1)
					mine = append(mine, time.Since(s))
				} else {
					bad.Add(1)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	r := Result{Adds: ok.Load(), Errors: bad.Load(), Duration: time.Since(start)}
	if len(lat) > 0 {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		r.P50, r.P99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return r
}

// MixedResult counts a mixed run's requests by operation and outcome.
type MixedResult struct {
	OK       map[string]uint64 // by operation: add, lookup, proof, tile
	Pushback uint64            // 503 answers (intended back-pressure)
	Errors   map[string]uint64 // anything else, by "op status"
	Duration time.Duration
}

// RunMixed drives cpan-tlog with adds (40%), lookups (25%), proofs (15%)
// and tile reads (20%) of what it added, for d.
func RunMixed(ctx context.Context, base, token, prefix string, clients int, d time.Duration) MixedResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	base = strings.TrimSuffix(base, "/")
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: time.Minute}
	add := CPANTLog(base, token, prefix)
	var next atomic.Uint64
	var mu sync.Mutex
	var ackedIDs []uint64 // adds acknowledged, in no particular order
	res := MixedResult{OK: map[string]uint64{}, Errors: map[string]uint64{}}
	count := func(op string, code int) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case code == http.StatusOK:
			res.OK[op]++
		case code == http.StatusServiceUnavailable:
			res.Pushback++
		default:
			res.Errors[fmt.Sprintf("%s %d", op, code)]++
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for n := c; ctx.Err() == nil; n++ {
				var req *http.Request
				op := "add"
				mu.Lock()
				known := uint64(len(ackedIDs))
				var pick, older uint64
				if known > 0 {
					pick, older = ackedIDs[uint64(n)%known], ackedIDs[uint64(n)%max(known/2, 1)]
				}
				mu.Unlock()
				var i uint64
				switch k := n % 20; {
				case k < 8 || known == 0:
					i = next.Add(1)
					req, _ = http.NewRequestWithContext(ctx, http.MethodPost, add.URLs[0], strings.NewReader(add.Body(i)))
					req.Header.Set("Authorization", "Bearer "+token)
				case k < 13:
					op = "lookup"
					req, _ = http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/lookup?path=authors/id/L/LO/LOAD/%s-%d.tar.gz", base, prefix, pick), nil)
				case k < 16:
					op = "proof"
					req, _ = http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/proof?path=authors/id/L/LO/LOAD/%s-%d.tar.gz", base, prefix, older), nil)
				default:
					op = "tile"
					req, _ = http.NewRequestWithContext(ctx, http.MethodGet, base+"/checkpoint", nil)
				}
				resp, err := hc.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						count(op, 0)
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if op == "add" && resp.StatusCode == http.StatusOK {
					mu.Lock()
					ackedIDs = append(ackedIDs, i)
					mu.Unlock()
				}
				count(op, resp.StatusCode)
			}
		})
	}
	wg.Wait()
	res.Duration = time.Since(start)
	return res
}
