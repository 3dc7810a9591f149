package index

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// BenchmarkSearchAtScale times the explorer's four searches (distribution,
// PAUSE id, distribution-name prefix, sha256) on the lookup index of the
// synthetic log scripts/bench-scale.sh keeps: CPANTLOG_SCALE_INDEX names
// its index.db, CPANTLOG_SCALE_ENTRIES its size. It reports each search's
// p50 and p99 in milliseconds.
//
//	CPANTLOG_SCALE_INDEX=/var/tmp/cpantlog-bench-scale/10000000/index.db CPANTLOG_SCALE_ENTRIES=10000000 \
//	  go test -run '^$' -bench SearchAtScale -benchtime 2000x ./log/index/
func BenchmarkSearchAtScale(b *testing.B) {
	path := os.Getenv("CPANTLOG_SCALE_INDEX")
	n, err := strconv.Atoi(os.Getenv("CPANTLOG_SCALE_ENTRIES"))
	if path == "" || err != nil || n <= 0 {
		b.Skip("set CPANTLOG_SCALE_INDEX and CPANTLOG_SCALE_ENTRIES (a log of scripts/bench-scale.sh)")
	}
	ix, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	if size, _ := ix.Size(); size < uint64(n) {
		b.Fatalf("the index holds %d entries, want %d", size, n)
	}
	r := rand.New(rand.NewPCG(1, 2))
	// The synthetic log's entry i: Synthetic-Dist-<i>, by SYNTH<i%1000>,
	// with the sha256 of the decimal i.
	searches := []struct {
		name string
		run  func(i int) (int, error)
	}{
		{"dist", func(i int) (int, error) {
			recs, err := ix.ByDist(fmt.Sprintf("Synthetic-Dist-%d", i), Page{Limit: 50})
			return len(recs), err
		}},
		{"author", func(i int) (int, error) {
			recs, err := ix.ByAuthor(fmt.Sprintf("SYNTH%d", i%1000), Page{Limit: 50})
			return len(recs), err
		}},
		{"prefix", func(i int) (int, error) {
			d := strconv.Itoa(i)
			names, err := ix.DistsWithPrefix("synthetic-dist-"+d[:min(len(d), 3)], 20)
			return len(names), err
		}},
		{"sha256", func(i int) (int, error) {
			recs, err := ix.BySHA256(sha256.Sum256([]byte(strconv.Itoa(i))))
			return len(recs), err
		}},
	}
	took := make([][]time.Duration, len(searches))
	for b.Loop() {
		i := r.IntN(n)
		for k, s := range searches {
			start := time.Now()
			found, err := s.run(i)
			took[k] = append(took[k], time.Since(start))
			if err != nil || found == 0 {
				b.Fatalf("%s search for entry %d: %d found, %v", s.name, i, found, err)
			}
		}
	}
	for k, s := range searches {
		slices.Sort(took[k])
		ms := func(q int) float64 { return float64(took[k][len(took[k])*q/100].Microseconds()) / 1000 }
		b.ReportMetric(ms(50), s.name+"-p50-ms")
		b.ReportMetric(ms(99), s.name+"-p99-ms")
	}
}
