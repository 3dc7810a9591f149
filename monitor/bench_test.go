package monitor

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/client"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
)

// BenchmarkAudit audits a synthetic log of realistic v1 entries (about 250
// bytes each) served over loopback as static tiles, from empty state, and
// reports entries/s beside the raw SHA-256 throughput over the same leaf
// bytes measured in the same run, and the peak heap, which must not grow
// with the log's size.
//
//	go test -run '^$' -bench Audit -benchtime 1x -timeout 30m ./monitor/
func BenchmarkAudit(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) { benchAudit(b, n) })
	}
}

func benchAudit(b *testing.B, n int) {
	skey, vkey, _ := note.GenerateKey(rand.Reader, tlog.DefaultOrigin)
	signer, _ := note.NewSigner(skey)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	leaves := make([][]byte, n)
	var total int64
	for i := range leaves {
		leaves[i] = mkUpload(b, fmt.Sprintf("authors/id/S/SY/SYNTH%d/Synthetic-Dist-%d-1.%d.tar.gz", i%1000, i, i%97), fmt.Sprintf("SYNTH%d", i%1000), fmt.Sprint(i), t0.Add(time.Duration(i)*time.Second), nil)
		total += int64(len(leaves[i]))
	}
	dir := b.TempDir()
	appendLeaves(b, dir, signer, leaves)
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	p, err := client.ParsePolicy([]byte(fmt.Sprintf("log %s %s\nquorum none\n", vkey, srv.URL)))
	if err != nil {
		b.Fatal(err)
	}

	// The hashing bound: SHA-256 over the same leaf bytes, as RFC 6962 leaf hashes.
	start := time.Now()
	for _, l := range leaves {
		h := sha256.New()
		h.Write([]byte{0})
		h.Write(l)
		h.Sum(nil)
	}
	hashRate := float64(n) / time.Since(start).Seconds()
	leaves = nil
	runtime.GC()

	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	b.ResetTimer()
	for b.Loop() {
		m, err := New(Config{Policy: p, StateDir: b.TempDir(), Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Sync(context.Background()); err != nil {
			b.Fatal(err)
		}
		if fs, _ := m.Deliver(context.Background()); len(fs) != 0 {
			b.Fatalf("synthetic log has findings: %+v", fs[0])
		}
		m.Close()
	}
	b.StopTimer()
	close(stop)
	rate := float64(n) * float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "entries/s")
	b.ReportMetric(hashRate, "sha256-leaves/s")
	b.ReportMetric(hashRate/rate, "x-hash-bound")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(total)/float64(n), "bytes/entry")
}

// TestWriteSyntheticLog writes the synthetic log BenchmarkAudit audits into
// $CPANTLOG_SYNTHETIC_LOG (tree/, log.vkey and log.key), with
// $CPANTLOG_SYNTHETIC_ENTRIES entries, for scripts/bench-monitor.sh to
// serve to the monitor and to Tessera's fsck alike. Where the directory
// holds a synthetic log already (its log.key), the entries are appended
// after it: a monitor's next round audits just those. Skipped otherwise.
func TestWriteSyntheticLog(t *testing.T) {
	dir := os.Getenv("CPANTLOG_SYNTHETIC_LOG")
	if dir == "" {
		t.Skip("set CPANTLOG_SYNTHETIC_LOG (scripts/bench-monitor.sh does)")
	}
	n, err := strconv.Atoi(os.Getenv("CPANTLOG_SYNTHETIC_ENTRIES"))
	if err != nil || n <= 0 {
		t.Fatalf("CPANTLOG_SYNTHETIC_ENTRIES=%q is not a positive number", os.Getenv("CPANTLOG_SYNTHETIC_ENTRIES"))
	}
	skey, vkey, _ := note.GenerateKey(rand.Reader, tlog.DefaultOrigin)
	from := 0
	if b, err := os.ReadFile(filepath.Join(dir, "log.key")); err == nil {
		skey = strings.TrimSpace(string(b))
		cp, err := os.ReadFile(filepath.Join(dir, "tree", "checkpoint"))
		if err != nil {
			t.Fatal(err)
		}
		if from, err = strconv.Atoi(strings.Split(string(cp), "\n")[1]); err != nil {
			t.Fatalf("checkpoint of the synthetic log: %v", err)
		}
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	const batch = 100_000
	for lo := from; lo < from+n; lo += batch {
		leaves := make([][]byte, 0, batch)
		for i := lo; i < min(from+n, lo+batch); i++ {
			leaves = append(leaves, mkUpload(t, fmt.Sprintf("authors/id/S/SY/SYNTH%d/Synthetic-Dist-%d-1.%d.tar.gz", i%1000, i, i%97), fmt.Sprintf("SYNTH%d", i%1000), fmt.Sprint(i), t0.Add(time.Duration(i)*time.Second), nil))
		}
		appendLeaves(t, filepath.Join(dir, "tree"), signer, leaves)
	}
	if from > 0 {
		return
	}
	if err := os.WriteFile(filepath.Join(dir, "log.vkey"), []byte(vkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// With its key the directory is a log cpantlog-server can go on
	// appending to (scripts/bench-scale.sh), and Tessera's conformance
	// personality too (its LOG_PRIVATE_KEY).
	if err := os.WriteFile(filepath.Join(dir, "log.key"), []byte(skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}
