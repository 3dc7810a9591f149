package loadgen

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRunCountsAndSendsDistinctBodies(t *testing.T) {
	var mu sync.Mutex
	bodies := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		dup := bodies[string(b)]
		bodies[string(b)] = true
		n := len(bodies)
		mu.Unlock()
		if dup || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "bad", 400)
			return
		}
		if n%10 == 0 {
			http.Error(w, "busy", 503)
		}
	}))
	defer srv.Close()
	r := Run(context.Background(), CPANTLog(srv.URL, "tok", "t"), 8, 300*time.Millisecond)
	srv.Close() // waits for handlers of requests cut off by the deadline
	mu.Lock()
	defer mu.Unlock()
	// Requests cut off by the deadline reach the server but are not counted.
	if n := uint64(len(bodies)); r.Adds == 0 || r.Errors == 0 || r.Adds+r.Errors > n || n > r.Adds+r.Errors+8 {
		t.Errorf("%+v for %d distinct bodies", r, len(bodies))
	}
	if r.PerSecond() <= 0 || r.P99 < r.P50 {
		t.Errorf("rate %f, p50 %s p99 %s", r.PerSecond(), r.P50, r.P99)
	}
	if !strings.HasPrefix(Tessera("http://x", "p").Body(1), "cpan-tlog/v1 upload\npath authors/id/L/LO/LOAD/p-1.tar.gz\n") {
		t.Error("tessera body is not a v1 leaf")
	}
}

// TestRunSpreadsOverWriters: with several base URLs every one gets a
// share of the clients, as behind a load balancer.
func TestRunSpreadsOverWriters(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	handler := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			hits[name+" "+r.URL.Path]++
			mu.Unlock()
		})
	}
	a, b := httptest.NewServer(handler("a")), httptest.NewServer(handler("b"))
	defer a.Close()
	defer b.Close()
	r := Run(context.Background(), Tessera(a.URL+","+b.URL+"/", "p"), 4, 200*time.Millisecond)
	a.Close()
	b.Close()
	mu.Lock()
	defer mu.Unlock()
	if r.Adds == 0 || hits["a /add"] == 0 || hits["b /add"] == 0 || len(hits) != 2 {
		t.Errorf("%d adds, hits %v: want both writers' /add loaded", r.Adds, hits)
	}
}
