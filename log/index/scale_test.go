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
//
// CPANTLOG_SCALE_MYSQL_DSN instead of CPANTLOG_SCALE_INDEX times the MySQL
// store in that database (the S3 + MariaDB storage's), which it first
// fills with the synthetic log's leaves up to CPANTLOG_SCALE_ENTRIES.
func BenchmarkSearchAtScale(b *testing.B) {
	path, dsn := os.Getenv("CPANTLOG_SCALE_INDEX"), os.Getenv("CPANTLOG_SCALE_MYSQL_DSN")
	n, err := strconv.Atoi(os.Getenv("CPANTLOG_SCALE_ENTRIES"))
	if path == "" && dsn == "" || err != nil || n <= 0 {
		b.Skip("set CPANTLOG_SCALE_INDEX (a log of scripts/bench-scale.sh) or CPANTLOG_SCALE_MYSQL_DSN, and CPANTLOG_SCALE_ENTRIES")
	}
	var ix Store
	if dsn != "" {
		m, err := OpenMySQL(dsn)
		if err != nil {
			b.Fatal(err)
		}
		fillSynthetic(b, m, n)
		ix = m
	} else if ix, err = Open(path); err != nil {
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

// fillSynthetic appends the synthetic log's leaves to ix up to n (see
// monitor's TestWriteSyntheticLog: entry i is Synthetic-Dist-<i> by
// SYNTH<i%1000>, the content's sha256 that of the decimal i).
func fillSynthetic(b *testing.B, ix Store, n int) {
	size, err := ix.Size()
	if err != nil {
		b.Fatal(err)
	}
	for start := int(size); start < n; {
		var leaves [][]byte
		for i := start; i < min(n, start+5000); i++ {
			leaves = append(leaves, leaf(b, fmt.Sprintf("authors/id/S/SY/SYNTH%d/Synthetic-Dist-%d-1.%d.tar.gz", i%1000, i, i%97), strconv.Itoa(i)))
		}
		if _, err := ix.Append(uint64(start), leaves); err != nil {
			b.Fatal(err)
		}
		if start += len(leaves); start%100000 == 0 {
			b.Logf("filled %d of %d", start, n)
		}
	}
}
