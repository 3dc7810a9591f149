package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/client/proxy"
)

// BenchmarkVerify measures verifying Try-Tiny-0.31.tar.gz's hash against a
// log of 5,001 entries on loopback: online with a warm tile cache (lookup,
// checkpoint, consistency and inclusion proofs), and offline from a saved
// tlog-proof. It reports p50 and p99 latencies.
//
//	go test -run '^$' -bench Verify -benchtime 2000x ./cmd/cpantlog/
func BenchmarkVerify(b *testing.B) {
	tl := startLog(b, b.TempDir())
	content, err := os.ReadFile("../../testdata/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz")
	if err != nil {
		b.Fatal(err)
	}
	const path = "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz"
	tl.add(b, path, content, "2024-01-02T03:04:05Z")
	var wg sync.WaitGroup
	for w := range 50 {
		wg.Go(func() {
			for i := w; i < 5000; i += 50 {
				body := fmt.Sprintf(`{"path":"authors/id/S/SY/SYNTH/S-%d.tar.gz","size":1,"sha256":"%064x","uploader":"SYNTH","time":"2024-01-02T03:04:05Z"}`, i, i)
				req, _ := http.NewRequest("POST", tl.url+"/add", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tl.log.Token())
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode != 200 {
					b.Errorf("add: %v %v", err, resp)
					return
				}
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	tl.add(b, "authors/id/S/SY/SYNTH/last.tar.gz", []byte("x"), "2024-01-02T03:04:05Z") // waits for a checkpoint of 5,002

	p, err := client.ParsePolicy([]byte(fmt.Sprintf("log %s %s\nquorum none\n", tl.log.VerifierKey(), tl.url)))
	if err != nil {
		b.Fatal(err)
	}
	st, _ := client.OpenState(b.TempDir())
	v, err := client.NewVerifier(p, "", "", st, filepath.Join(b.TempDir(), "cache"))
	if err != nil {
		b.Fatal(err)
	}
	f := filepath.Join(b.TempDir(), "Try-Tiny-0.31.tar.gz")
	os.WriteFile(f, content, 0o644)
	file, _ := client.HashFile(f, path)
	ctx := context.Background()
	res, err := v.FetchProof(ctx, path)
	if err != nil {
		b.Fatal(err)
	}

	b.Run("online-warm", func(b *testing.B) {
		if _, err := v.VerifyFile(ctx, file); err != nil { // warm the tile cache
			b.Fatal(err)
		}
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			start := time.Now()
			if _, err := v.VerifyFile(ctx, file); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		reportPercentiles(b, lat)
	})
	b.Run("offline", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			start := time.Now()
			if _, err := v.VerifyProof(res.Proof, file); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		reportPercentiles(b, lat)
	})
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkProxyOverhead fetches every sample tarball straight from a
// loopback mirror, through the verifying proxy with no cache (download,
// hash, lookup, checkpoint, inclusion proof from cached tiles) and through
// a proxy whose verified-file cache is warm, all in the same iteration, and
// reports the proxy's cost as ratios to the direct fetch.
//
//	go test -run '^$' -bench ProxyOverhead -benchtime 200x ./cmd/cpantlog/
func BenchmarkProxyOverhead(b *testing.B) {
	smp := samples(b)
	tl := startLog(b, b.TempDir())
	for _, s := range smp {
		tl.add(b, s.path, s.content, "2024-01-02T03:04:05Z")
	}
	policy := filepath.Join(b.TempDir(), "policy")
	os.WriteFile(policy, []byte(fmt.Sprintf("log %s %s\nquorum none\n", tl.log.VerifierKey(), tl.url)), 0o644)
	_, mirror := buildMirror(b, smp)
	p, _ := client.ParsePolicy([]byte(fmt.Sprintf("log %s %s\nquorum none\n", tl.log.VerifierKey(), tl.url)))
	newProxy := func(cache string) string {
		st, _ := client.OpenState(b.TempDir())
		v, _ := client.NewVerifier(p, "", "", st, b.TempDir())
		px, err := proxy.New(proxy.Config{Upstream: mirror, Verifier: v, CacheDir: cache, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(px)
		b.Cleanup(srv.Close)
		return srv.URL
	}
	cold, warm := newProxy(""), newProxy(b.TempDir())
	hc := &http.Client{}
	fetchAll := func(base string) time.Duration {
		start := time.Now()
		for _, s := range smp {
			resp, err := hc.Get(base + "/" + s.path)
			if err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || n != int64(len(s.content)) {
				b.Fatalf("%s: %d, %d bytes", s.path, resp.StatusCode, n)
			}
		}
		return time.Since(start)
	}
	fetchAll(cold) // warm the tile cache; the verified-file cache stays off
	fetchAll(warm)
	var direct, viaCold, viaWarm time.Duration
	// The cold proxy leaves garbage that the collector works off during
	// whatever runs next: direct and warm take turns running right after
	// it, so that neither is always the one to pay.
	for i := 0; b.Loop(); i++ {
		viaCold += fetchAll(cold)
		if i%2 == 0 {
			direct += fetchAll(mirror)
			viaWarm += fetchAll(warm)
		} else {
			viaWarm += fetchAll(warm)
			direct += fetchAll(mirror)
		}
	}
	b.ReportMetric(float64(direct.Microseconds())/float64(b.N), "direct-µs")
	b.ReportMetric(float64(viaCold)/float64(direct), "cold-x")
	b.ReportMetric(float64(viaWarm)/float64(direct), "warm-x")
}
