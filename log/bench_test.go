package log

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAddHTTP adds distinct entries through POST /add from many
// concurrent clients over loopback and reports entries/s.
//
// It runs on every storage storages() names (POSIX, and S3 + MariaDB when
// the test services are up).
//
//	go test -run '^$' -bench AddHTTP -benchtime 20000x ./log/
func BenchmarkAddHTTP(b *testing.B) {
	for _, st := range storages(b) {
		b.Run(st, func(b *testing.B) { benchAddHTTP(b, st) })
	}
}

func benchAddHTTP(b *testing.B, storage string) {
	s := startServer(b, b.TempDir(), onStorage(b, storage))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	token := "Bearer " + s.log.Token()
	var n, pushback atomic.Uint64
	b.SetParallelism(32) // 32 × GOMAXPROCS clients
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			body := fmt.Sprintf(`{"path":"authors/id/B/BE/BENCH/Bench-%d.tar.gz","size":%d,"sha256":"%064x","uploader":"BENCH","time":"2024-01-02T03:04:05Z"}`, i, i, i)
			for {
				req, _ := http.NewRequest("POST", s.url+"/add", strings.NewReader(body))
				req.Header.Set("Authorization", token)
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusServiceUnavailable {
					pushback.Add(1) // intended back-pressure: retry shortly
					time.Sleep(10 * time.Millisecond)
					continue
				}
				if resp.StatusCode != 200 {
					b.Errorf("add: %d", resp.StatusCode)
					return
				}
				break
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(float64(pushback.Load()), "503s")
}
