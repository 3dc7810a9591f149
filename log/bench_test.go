package log

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// BenchmarkAddHTTP adds distinct entries through POST /add from many
// concurrent clients over loopback and reports entries/s.
//
//	go test -run '^$' -bench AddHTTP -benchtime 20000x ./log/
func BenchmarkAddHTTP(b *testing.B) {
	s := startServer(b, b.TempDir())
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	token := "Bearer " + s.log.Token()
	var n atomic.Uint64
	b.SetParallelism(32) // 32 × GOMAXPROCS clients
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			body := fmt.Sprintf(`{"path":"authors/id/B/BE/BENCH/Bench-%d.tar.gz","size":%d,"sha256":"%064x","uploader":"BENCH","time":"2024-01-02T03:04:05Z"}`, i, i, i)
			req, _ := http.NewRequest("POST", s.url+"/add", strings.NewReader(body))
			req.Header.Set("Authorization", token)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("add: %d", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
