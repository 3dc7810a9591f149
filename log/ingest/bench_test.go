package ingest

import (
	"context"
	"fmt"
	"io"
	"path"
	"testing"
	"time"
)

// BenchmarkImport back-fills a synthetic CPAN tree of 200,000 files (the
// size of today's CPAN) in 2,000 author directories, each with its
// CHECKSUMS, into an empty log, and reports files/s.
//
//	go test -run '^$' -bench Import -benchtime 1x -timeout 30m ./log/ingest/
func BenchmarkImport(b *testing.B) {
	const n = 200_000
	files := map[string][]byte{}
	for i := range n {
		files[fmt.Sprintf("authors/id/S/SY/SYNTH%d/Synthetic-Dist-%d-1.%d.tar.gz", i%2000, i, i%97)] = []byte(fmt.Sprintf("synthetic tarball %d %0200d", i, i))
	}
	tree := b.TempDir()
	base := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	writeTree(b, tree, files, func(p string) time.Time { return base.Add(time.Duration(len(path.Base(p))) * time.Minute) })
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		l := openLog(b, b.TempDir())
		b.StartTimer()
		st, err := Import(context.Background(), l, tree, io.Discard, quiet)
		if err != nil || st.Logged != n {
			b.Fatalf("%+v %v", st, err)
		}
		b.StopTimer()
		l.Shutdown(context.Background())
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "files/s")
}
