package log

import (
	"context"
	"fmt"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/tessera"
	tclient "github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/client/tlogproof"
)

// awaitProof waits until a checkpoint covers idx and returns the
// tlog-proof; ctx bounds the wait (api.MaxProofWait for POST /add?wait=1).
func (l *Log) awaitProof(ctx context.Context, idx uint64, leaf []byte) ([]byte, error) {
	// Early, with the reason, when the checkpoint cannot come (drain.go).
	ctx, stop := l.stopWaiting(ctx, true)
	defer stop()
	// Tessera's awaiter sees ctx end only when its poller next reads a
	// checkpoint, which never happens while none was ever published (a new
	// log whose witnesses do not cosign): wait for ctx here too. The
	// awaiting goroutine ends with that first checkpoint, or at shutdown.
	type awaited struct {
		cp  []byte
		err error
	}
	done := make(chan awaited, 1)
	go func() {
		_, cp, err := l.awaiter.Await(ctx, func() (tessera.Index, error) { return tessera.Index{Index: idx}, nil })
		done <- awaited{cp, err}
	}()
	var cp []byte
	select {
	case a := <-done:
		if a.err != nil {
			return nil, whyStopped(ctx, a.err)
		}
		cp = a.cp
	case <-ctx.Done():
		return nil, whyStopped(ctx, ctx.Err())
	}
	return l.Proof(ctx, idx, leaf, cp)
}

// Proof returns the tlog-proof of the entry leaf at idx in checkpoint cp.
func (l *Log) Proof(ctx context.Context, idx uint64, leaf, cp []byte) ([]byte, error) {
	c, err := l.parseCheckpoint(cp)
	if err != nil {
		return nil, err
	}
	if idx >= c.Size {
		return nil, fmt.Errorf("checkpoint of size %d does not cover index %d yet", c.Size, idx)
	}
	pb, err := tclient.NewProofBuilder(ctx, c.Size, l.reader.ReadTile)
	if err != nil {
		return nil, err
	}
	hashes, err := pb.InclusionProof(ctx, idx)
	if err != nil {
		return nil, err
	}
	p := &tlogproof.Proof{Extra: leaf, Index: idx, InclusionProof: hashes, Checkpoint: cp}
	return p.Marshal()
}

func (l *Log) parseCheckpoint(cp []byte) (*flog.Checkpoint, error) {
	v, err := note.NewVerifier(l.vkey)
	if err != nil {
		return nil, err
	}
	c, _, _, err := flog.ParseCheckpoint(cp, l.Origin(), v)
	if err != nil {
		return nil, fmt.Errorf("own checkpoint does not verify: %w", err)
	}
	return c, nil
}
