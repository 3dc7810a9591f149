package log

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// BenchmarkStart measures what a start of a log costs, whole (open, the
// lookup index up to date, shutdown), and the part of it that the checks
// of a restored data directory take (startcheck.go: Tessera's state
// against the checkpoint, the lookup index's last entry against the tree,
// a stat of the logged index file versions), on a log of 20,000 uploads
// and 1,000 index file versions.
//
//	go test -run '^$' -bench Start -benchtime 20x ./log/
func BenchmarkStart(b *testing.B) {
	const uploads, versions = 20000, 1000
	dir := b.TempDir()
	cfg := Config{DataDir: dir, CheckpointInterval: 100 * time.Millisecond, Logger: quietLogger()}
	l, err := Open(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	when := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	var batch []*entry.Entry
	flush := func() {
		_, errs := l.AddBatch(context.Background(), batch)
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		batch = batch[:0]
	}
	for i := range uploads {
		batch = append(batch, &entry.Entry{Kind: entry.Upload, Path: fmt.Sprintf("authors/id/B/BE/BENCH/Bench-%d.tar.gz", i), Size: uint64(i + 1), SHA256: sha256.Sum256(fmt.Appendf(nil, "%d", i)), Uploader: "BENCH", Time: when})
		if len(batch) == 1000 {
			flush()
		}
	}
	for i := range versions {
		content := fmt.Appendf(nil, "02packages version %d\n", i)
		if err := l.StoreIndexFile(sha256.Sum256(content), strings.NewReader(string(content))); err != nil {
			b.Fatal(err)
		}
		// One version per batch: a path appears once in a batch.
		batch = append(batch, &entry.Entry{Kind: entry.Index, Path: "modules/02packages.details.txt", Size: uint64(len(content)), SHA256: sha256.Sum256(content), Time: when})
		flush()
	}
	// The proof tree written, so that the runs below measure starts, not
	// the proof writer catching up.
	for deadline := time.Now().Add(5 * time.Minute); ; {
		if n, _ := l.index.Size(); n == uploads+versions {
			if w, err := l.WriteProofs(context.Background()); err == nil && w == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("the proof tree was not written in 5 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := l.Shutdown(context.Background()); err != nil {
		b.Fatal(err)
	}

	b.Run("open", func(b *testing.B) {
		for b.Loop() {
			l, err := Open(context.Background(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			if err := l.Shutdown(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The start's checks on the log at rest, with its lookup index and
	// index file versions as Open has them: "full" as after a restore
	// without index.db (every version looked at), "since" as on an
	// ordinary restart (the versions since the last start, and each
	// path's first and last).
	for _, full := range []bool{true, false} {
		b.Run(map[bool]string{true: "checks-full", false: "checks-since"}[full], func(b *testing.B) {
			ctx := context.Background()
			ix, err := openIndex(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer ix.Close()
			files, _ := openIndexFiles(ctx, cfg)
			l := &Log{cfg: cfg, index: ix, indexFiles: files}
			published, _, err := publishedCheckpoint(ctx, cfg)
			if err != nil {
				b.Fatal(err)
			}
			vkey, _ := os.ReadFile(filepath.Join(dir, VKeyFile))
			for b.Loop() {
				if full {
					b.StopTimer()
					if err := ix.PutMeta(metaIndexFilesChecked, []byte("0")); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				st, err := checkTreeOnStart(ctx, cfg, published, strings.TrimSpace(string(vkey)))
				if err != nil {
					b.Fatal(err)
				}
				if why, err := indexMismatch(ctx, cfg, ix, st); err != nil || why != "" {
					b.Fatal(why, err)
				}
				if err := l.checkIndexFilesOnStart(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
