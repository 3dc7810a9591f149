package log

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"path/filepath"

	"github.com/CPAN-Security/cpan-tlog/log/health"
	"github.com/CPAN-Security/cpan-tlog/log/indexfiles"
	"github.com/CPAN-Security/cpan-tlog/log/prooftree"
)

// The parts the log composes, each in a package of its own, and what the
// log hands them.

// ProofsDir is the directory in the data directory that holds the proof
// tree (package prooftree).
const ProofsDir = prooftree.Dir

// newProofTree is the writer's proof tree, derived from its published
// tree and lookup index, under its witness policy.
func (l *Log) newProofTree() *prooftree.Tree {
	cfg := prooftree.Config{
		DataDir:  l.cfg.DataDir,
		Index:    l.index,
		Reader:   l.reader,
		PolicyID: "none",
		Verify: func(cp []byte) (uint64, error) {
			c, err := l.parseCheckpoint(cp)
			if err != nil {
				return 0, err
			}
			return c.Size, nil
		},
		History:  l.history,
		Busy:     l.addsInFlight,
		Interval: l.cfg.CheckpointInterval,
		Logger:   l.cfg.Logger,
	}
	if l.cfg.Storage == StorageS3 {
		// Each writer keeps its own copy of the proof tree, and its own
		// progress in the shared lookup index.
		cfg.Writer = writerID(l.cfg.DataDir)
	}
	if l.quorum != nil {
		cfg.Accepts = l.quorum.Satisfied
		cfg.PolicyID = fmt.Sprintf("%x", sha256.Sum256(l.cfg.WitnessPolicy))
	}
	return prooftree.New(cfg)
}

// WriteProofs brings the proof tree up to the latest checkpoint that
// meets the log's witness policy (prooftree.Tree.Write) and returns how
// many proofs it wrote.
func (l *Log) WriteProofs(ctx context.Context) (int, error) { return l.proofs.Write(ctx) }

// IndexFilesDir is the directory in the data directory (and the prefix in
// the bucket) that keeps the bytes of every logged index file version
// (package indexfiles).
const IndexFilesDir = indexfiles.Dir

// indexFiles is the log's store of index file versions (package
// indexfiles), under the names the add path calls it by.
type indexFiles struct{ *indexfiles.Store }

func (f indexFiles) has(ctx context.Context, sha [32]byte) (bool, error) { return f.Has(ctx, sha) }

func (f indexFiles) put(ctx context.Context, sha [32]byte, r io.Reader) (bool, error) {
	return f.Put(ctx, sha, r)
}

// openIndexFiles opens the store of index file versions: the data
// directory, or on S3 the bucket, which every writer and front end shares.
func openIndexFiles(ctx context.Context, cfg Config) (indexFiles, error) {
	if cfg.Storage != StorageS3 {
		return indexFiles{indexfiles.InDir(filepath.Join(cfg.DataDir, IndexFilesDir))}, nil
	}
	b, err := newBucket(ctx, cfg.S3)
	if err != nil {
		return indexFiles{}, err
	}
	return indexFiles{indexfiles.InBucket(bucketObjects{b}, "bucket "+b.name)}, nil
}

// bucketObjects is the log's bucket as package indexfiles uses it.
type bucketObjects struct{ b *bucket }

func (o bucketObjects) Exists(ctx context.Context, key string) (bool, error) {
	return o.b.exists(ctx, key)
}

func (o bucketObjects) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	return o.b.get(ctx, key)
}

func (o bucketObjects) Put(ctx context.Context, key string, body io.ReadSeeker) error {
	return o.b.put(ctx, key, body)
}

// DefaultMaxPublishLag is how long entries may wait integrated but not
// covered by the published checkpoint before /healthz says so
// (Config.MaxPublishLag).
const DefaultMaxPublishLag = health.DefaultMaxPublishLag

// newHealth is the log's health watch: its storage, its witnesses, and
// the lag of its published checkpoint.
func (l *Log) newHealth() *health.Watch {
	return health.New(health.Config{
		Sample:        l.sampleHealth,
		Dependency:    l.storageDependency,
		StorageError:  func(dep string) { l.metrics.storageErrors.WithLabelValues(dep).Inc() },
		Witnesses:     l.witness.health, // nil-safe: a log without a policy has no witnesses to judge
		MaxPublishLag: l.cfg.MaxPublishLag,
		Registry:      l.metrics.registry,
	})
}

// sampleHealth reads the published checkpoint's size and the integrated
// size, and checks that the lookup index answers: lookups and, with
// several writers, every add read it.
func (l *Log) sampleHealth(ctx context.Context) (published, integrated uint64, err error) {
	raw, err := l.reader.ReadCheckpoint(ctx)
	if notFound(err) {
		raw, err = nil, nil // nothing published yet
	}
	if err != nil {
		return 0, 0, err
	}
	if raw != nil {
		c, err := l.parseCheckpoint(raw)
		if err != nil {
			return 0, 0, err
		}
		published = c.Size
	}
	if integrated, err = l.reader.IntegratedSize(ctx); err != nil {
		return 0, 0, err
	}
	if _, err := l.index.Size(); err != nil {
		return 0, 0, err
	}
	return published, integrated, nil
}
