package proxy

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
)

// TestProxyCountsMLDSA44Cosignature: a real log cosigned by a real
// witness keyed ML-DSA-44 (pq) and one keyed Ed25519 (w1) under "group
// both 2 w1 pq". The proxy serves a distribution the log's proof vouches
// for (200, the bytes); with pq's cosignature flipped by a front before
// the log, it refuses it (403, naming witness pq).
func TestProxyCountsMLDSA44Cosignature(t *testing.T) {
	tl, policyText := testlog.StartMLDSA44Pair(t)
	dist := []byte("a distribution's bytes\n")
	tl.Add(t, distPath, dist, "2024-01-02T03:04:05Z", true)
	mirror := t.TempDir()
	os.MkdirAll(filepath.Join(mirror, filepath.Dir(distPath)), 0o755)
	if err := os.WriteFile(filepath.Join(mirror, distPath), dist, 0o644); err != nil {
		t.Fatal(err)
	}
	get := func(logURL string) (int, string) {
		t.Helper()
		policy, err := client.ParsePolicy([]byte(policyText(logURL)))
		if err != nil {
			t.Fatal(err)
		}
		st, err := client.OpenState(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		v, err := client.NewVerifier(policy, "", "", st, "")
		if err != nil {
			t.Fatal(err)
		}
		p, err := New(Config{Upstream: mirror, Hosts: DefaultHosts, Verifier: v, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, httptest.NewRequest("GET", "/"+distPath, nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get(tl.URL); code != 200 || body != string(dist) {
		t.Errorf("the log cosigned by w1 and pq: %d %q, want 200 and the distribution", code, body)
	}
	if code, body := get(testlog.FlippingFront(t, tl.URL, "pq.example")); code != 403 || !strings.Contains(body, "witness pq") {
		t.Errorf("pq's cosignature flipped: %d %q, want 403 naming witness pq", code, body)
	}
}
