package witness

import (
	"testing"
)

// BenchmarkAddCheckpoint measures durable cosignatures per second: each
// request grows the tree by one entry with a consistency proof, is
// verified, cosigned and fsynced before it is answered.
//
//	go test -run '^$' -bench AddCheckpoint -benchtime 2000x ./witness/
func BenchmarkAddCheckpoint(b *testing.B) {
	l := newFakeLog(b, b.N+1)
	w := newWitness(b, b.TempDir(), l, 1e9)
	reqs := make([][]byte, b.N)
	for i := range reqs {
		reqs[i] = l.request(b, uint64(i), uint64(i+1))
	}
	b.ResetTimer()
	for i := range reqs {
		if a := w.AddCheckpoint(reqs[i]); a.Status != 200 {
			b.Fatalf("add %d: %d %s", i, a.Status, a.Body)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cosignatures/s")
}
