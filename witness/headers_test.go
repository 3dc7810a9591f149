package witness

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/CPAN-Security/cpan-tlog/internal/httpserver"
)

// TestEveryResponseIsNosniff: every response of the witness, its answers
// to add-checkpoint (cosigned or refused), its latest cosigned checkpoint,
// health, metrics and errors, says nosniff and carries a CSP that lets
// nothing load or run.
func TestEveryResponseIsNosniff(t *testing.T) {
	l := newFakeLog(t, 20)
	w := newWitness(t, t.TempDir(), l, 1000)
	srv := httptest.NewServer(w.Handler())
	defer srv.Close()
	id := sha256.Sum256([]byte(origin))
	for _, c := range []struct {
		method, path string
		body         []byte
		code         int
	}{
		{"GET", "/" + hex.EncodeToString(id[:]) + "/checkpoint", nil, http.StatusNotFound},
		{"POST", "/add-checkpoint", l.request(t, 0, 10), http.StatusOK},
		{"POST", "/add-checkpoint", []byte("<script>alert(1)</script>"), http.StatusBadRequest},
		{"POST", "/add-checkpoint", l.request(t, 3, 12), http.StatusConflict},
		{"GET", "/" + hex.EncodeToString(id[:]) + "/checkpoint", nil, http.StatusOK},
		{"GET", "/healthz", nil, http.StatusOK},
		{"GET", "/metrics", nil, http.StatusOK},
		{"GET", "/nowhere", nil, http.StatusNotFound},
	} {
		req, err := http.NewRequest(c.method, srv.URL+c.path, bytes.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, resp.StatusCode, c.code)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s %s (%d): X-Content-Type-Options %q", c.method, c.path, resp.StatusCode, got)
		}
		if got := resp.Header.Values("Content-Security-Policy"); len(got) != 1 || got[0] != httpserver.DefaultCSP {
			t.Errorf("%s %s (%d): Content-Security-Policy %q", c.method, c.path, resp.StatusCode, got)
		}
	}
}
