package log

import (
	"context"
	"crypto/sha256"
	"fmt"

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
