package web

import (
	"net/http"
	"strings"
	"testing"

	"github.com/transparency-dev/tessera/api/layout"

	"github.com/CPAN-Security/cpan-tlog/internal/httpserver"
)

// TestEveryResponseIsNosniff: every response of the log's server, the read
// API's (checkpoint, tiles, bundles, lookup, proofs, index files, feeds,
// health, metrics) and its errors included, says nosniff, so that no
// browser guesses a type and runs what the log serves as text or bytes,
// and carries a Content-Security-Policy: the explorer's own on its pages,
// one that lets nothing load or run everywhere else.
func TestEveryResponseIsNosniff(t *testing.T) {
	_, srv := explorer(t)
	const tt = "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz"
	for _, c := range []struct {
		method, path string
		page         bool // an explorer page, with the explorer's CSP
	}{
		{"GET", "/checkpoint", false},
		{"GET", "/" + layout.TilePath(0, 0, 9), false},
		{"GET", "/" + layout.EntriesPath(0, 9), false},
		{"GET", "/tile/0/999", false},
		{"GET", "/lookup?path=" + tt, false},
		{"GET", "/lookup?path=%3Cscript%3E", false},
		{"GET", "/proof?path=" + tt, false},
		{"GET", "/proof?index=0", false},
		{"GET", "/tlog/proofs/" + tt, false},
		{"GET", "/index-files/" + strings.Repeat("ab", 32), false},
		{"GET", "/index-files/not-a-hash", false},
		{"GET", "/healthz", false},
		{"GET", "/metrics", false},
		{"GET", "/feed.atom", false},
		{"GET", "/dist/Try-Tiny/feed.atom", false},
		{"GET", "/author/ETHER/feed.atom", false},
		{"GET", "/static/verify.js", false},
		{"GET", "/nowhere", false},
		{"POST", "/add", false},
		{"PUT", "/index-files/" + strings.Repeat("ab", 32), false},
		{"GET", "/", true},
		{"GET", "/dist/Try-Tiny", true},
		{"GET", "/entry/0", true},
		{"GET", "/search?q=Try", false}, // a redirect to the distribution
		{"GET", "/search?q=No%3A%3ASuch%3A%3AThing", true},
	} {
		req, err := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s %s (%d): X-Content-Type-Options %q", c.method, c.path, resp.StatusCode, got)
		}
		want := httpserver.DefaultCSP
		if c.page {
			want = csp
		}
		if got := h.Values("Content-Security-Policy"); len(got) != 1 || got[0] != want {
			t.Errorf("%s %s (%d): Content-Security-Policy %q, want %q", c.method, c.path, resp.StatusCode, got, want)
		}
	}
}
