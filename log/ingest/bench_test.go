package ingest

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// BenchmarkImport back-fills a synthetic CPAN tree of 200,000 files (the
// size of today's CPAN; CPANTLOG_BENCH_IMPORT_FILES sets another) in 2,000
// author directories, each with its CHECKSUMS, into an empty log, and
// reports files/s and the log's disk per entry (tree, lookup index).
//
//	go test -run '^$' -bench Import -benchtime 1x -timeout 30m ./log/ingest/
func BenchmarkImport(b *testing.B) {
	n := 200_000
	if v, err := strconv.Atoi(os.Getenv("CPANTLOG_BENCH_IMPORT_FILES")); err == nil && v > 0 {
		n = v
	}
	files := map[string][]byte{}
	for i := range n {
		files[fmt.Sprintf("authors/id/S/SY/SYNTH%d/Synthetic-Dist-%d-1.%d.tar.gz", i%2000, i, i%97)] = []byte(fmt.Sprintf("synthetic tarball %d %0200d", i, i))
	}
	tree := b.TempDir()
	base := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	writeTree(b, tree, files, func(p string) time.Time { return base.Add(time.Duration(len(path.Base(p))) * time.Minute) })
	b.ResetTimer()
	var treeBytes, indexBytes int64
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		l := openLog(b, dir)
		b.StartTimer()
		st, err := Import(context.Background(), l, tree, io.Discard, quiet)
		if err != nil || st.Logged != n {
			b.Fatalf("%+v %v", st, err)
		}
		b.StopTimer()
		l.Shutdown(context.Background())
		treeBytes, indexBytes = du(filepath.Join(dir, "tree")), du(filepath.Join(dir, "index.db"))
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "files/s")
	b.ReportMetric(float64(treeBytes)/float64(n), "tree-B/entry")
	b.ReportMetric(float64(indexBytes)/float64(n), "index-B/entry")
}

// du is the bytes of the files under p.
func du(p string) int64 {
	var n int64
	filepath.Walk(p, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
