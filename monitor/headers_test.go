package monitor

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/internal/httpserver"
)

// TestEveryResponseIsNosniff: every response of the monitor's server
// (/metrics, /healthz healthy or not, errors) says nosniff and carries a
// CSP that lets nothing load or run.
func TestEveryResponseIsNosniff(t *testing.T) {
	logURL, _, vkey, _ := craftedLog(t, [][]byte{mkUpload(t, "authors/id/A/AB/ABC/Foo-1.0.tar.gz", "ABC", "foo", time.Now(), nil)}, nil, "")
	m, err := New(Config{Policy: mustPolicy(t, vkey, logURL), StateDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	srv := httptest.NewServer(m.Handler(time.Hour))
	defer srv.Close()
	check := func(path string, code int) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != code {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, code)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s (%d): X-Content-Type-Options %q", path, resp.StatusCode, got)
		}
		if got := resp.Header.Values("Content-Security-Policy"); len(got) != 1 || got[0] != httpserver.DefaultCSP {
			t.Errorf("%s (%d): Content-Security-Policy %q", path, resp.StatusCode, got)
		}
	}
	check("/healthz", http.StatusServiceUnavailable) // no round yet
	check("/metrics", http.StatusOK)
	check("/nowhere", http.StatusNotFound)
	m.RoundDone(nil)
	check("/healthz", http.StatusOK)
}
