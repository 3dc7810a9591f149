package proxy

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/witness"
)

// TestProxyCountsMLDSA44Cosignature: a real log cosigned by a real
// witness keyed ML-DSA-44 (pq) and one keyed Ed25519 (w1) under "group
// both 2 w1 pq". The proxy serves a distribution the log's proof vouches
// for (200, the bytes); with pq's cosignature flipped by a front before
// the log, it refuses it (403, naming witness pq).
func TestProxyCountsMLDSA44Cosignature(t *testing.T) {
	dir := t.TempDir()
	logVKey, err := tlog.Keygen(dir, tlog.DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	w1 := testlog.StartWitness(t, "w1.example", logVKey)
	pq := testlog.StartWitnessWith(t, "pq.example", logVKey, witness.MLDSA44)
	policyText := func(logURL string) string {
		return fmt.Sprintf("log %s %s\nwitness w1 %s %s\nwitness pq %s %s\ngroup both 2 w1 pq\nquorum both\n",
			logVKey, logURL, w1.VKey, w1.URL, pq.VKey, pq.URL)
	}
	tl := testlog.Start(t, tlog.Config{DataDir: dir, WitnessPolicy: []byte(policyText("http://127.0.0.1:1"))})
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
	if code, body := get(flipFront(t, tl.URL, "pq.example")); code != 403 || !strings.Contains(body, "witness pq") {
		t.Errorf("pq's cosignature flipped: %d %q, want 403 naming witness pq", code, body)
	}
}

// flipFront serves the log at target, changing one base64 digit in the
// middle of every signature line of name it relays.
func flipFront(t *testing.T, target, name string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	prefix := []byte("\u2014 " + name + " ")
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(r *http.Response) error {
		if r.Header.Get("Content-Encoding") != "" {
			return nil
		}
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return err
		}
		for i := 0; ; {
			j := bytes.Index(b[i:], prefix)
			if j < 0 {
				break
			}
			start := i + j + len(prefix)
			end := start + bytes.IndexByte(b[start:], '\n')
			if end < start {
				end = len(b)
			}
			if k := start + (end-start)/2; b[k] == 'A' {
				b[k] = 'B'
			} else {
				b[k] = 'A'
			}
			i = end
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.ContentLength = int64(len(b))
		r.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL
}
