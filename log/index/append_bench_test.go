package index

import (
	"fmt"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// BenchmarkAppend times the lookup index's appends on POSIX (bbolt) onto
// an index of 200,000 entries, by the size of the transaction (the index
// follower's are up to 16 entry bundles, 4,096 entries): 64,000 uploads
// of distributions in random order, so that each bucket takes its keys
// scattered, as CPAN's paths come. It reports the process's CPU time per
// entry (cpu-ns/entry), the commits' fsyncs aside.
//
//	go test -run '^$' -bench Append -benchtime 2x ./log/index/
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1000, 4000, 16000} {
		b.Run(strconv.Itoa(batch), func(b *testing.B) {
			ix, err := Open(filepath.Join(b.TempDir(), "index.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer ix.Close()
			fillSynthetic(b, ix, 200_000)
			var leaves [][]byte
			for i := range 64_000 {
				n := 200_000 + i
				leaves = append(leaves, leaf(b, fmt.Sprintf("authors/id/B/BE/BENCH%d/Bench-Dist-%d-1.%d.tar.gz", n%1000, i*7919%64_000, n%97), strconv.Itoa(n)))
			}
			var r0, r1 syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
			b.ResetTimer()
			size := uint64(200_000)
			for range b.N {
				for off := 0; off < len(leaves); off += batch {
					if _, err := ix.Append(size, leaves[off:off+batch]); err != nil {
						b.Fatal(err)
					}
					size += uint64(batch)
				}
			}
			b.StopTimer()
			syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
			cpu := r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano()
			b.ReportMetric(float64(cpu)/float64(b.N*len(leaves)), "cpu-ns/entry")
		})
	}
}
