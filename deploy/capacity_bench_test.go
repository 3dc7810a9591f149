package deploy

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// BenchmarkDiskPerEntry measures what a POSIX log keeps on disk per
// upload, for deploy/README.md's "Capacity": the tree (tiles, entry
// bundles, checkpoint), the lookup index (index.db) and the proof tree
// (proofs/, one tlog-proof file per upload), both as file bytes and as
// disk blocks used (a proof file is smaller than a block). Uploads like
// CPAN's: 20,000 distributions of 1,000 authors, added in batches of 500.
//
//	go test -run '^$' -bench DiskPerEntry -benchtime 1x ./deploy/
func BenchmarkDiskPerEntry(b *testing.B) {
	const n = 20000
	for range b.N {
		data := b.TempDir()
		tl := testlog.Start(b, tlog.Config{DataDir: data})
		when := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := 0; i < n; i += 500 {
			var batch []*entry.Entry
			for j := i; j < i+500; j++ {
				id := fmt.Sprintf("AUTHOR%03d", j%1000)
				batch = append(batch, &entry.Entry{Kind: entry.Upload, Size: uint64(10000 + j*7%90000),
					SHA256: sha256.Sum256([]byte(fmt.Sprint(j))), Uploader: id, Time: when.Add(time.Duration(j) * time.Minute),
					Path: fmt.Sprintf("authors/id/%s/%s/%s/Some-Distribution-%d-1.%03d.tar.gz", id[:1], id[:2], id, j/3, j%1000)})
			}
			if _, errs := tl.AddBatch(context.Background(), batch); errs[0] != nil {
				b.Fatal(errs[0])
			}
		}
		proofs := filepath.Join(data, tlog.ProofsDir)
		for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
			if files, _, _ := usage(proofs); files >= n {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("the log did not write a proof for every upload")
			}
		}
		tl.Stop()
		b.StopTimer()
		for _, d := range []struct{ name, path string }{
			{"tree", filepath.Join(data, tlog.TreeDir)}, {"index", filepath.Join(data, tlog.IndexFile)}, {"proofs", proofs},
		} {
			_, size, blocks := usage(d.path)
			b.ReportMetric(float64(size)/n, d.name+"-B/entry")
			b.ReportMetric(float64(blocks)/n, d.name+"-disk-B/entry")
		}
		b.StartTimer()
	}
}

// usage is how many files are under root, their bytes, and the disk
// blocks they use (in bytes).
func usage(root string) (files int, size, blocks int64) {
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			blocks += st.Blocks * 512
		}
		if d.Type().IsRegular() {
			files++
			size += info.Size()
		}
		return nil
	})
	return
}
