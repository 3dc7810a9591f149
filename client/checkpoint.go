package client

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	flog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// MaxCheckpointSize bounds a checkpoint note with its cosignatures.
const MaxCheckpointSize = 64 << 10

// Checkpoint is a checkpoint that verified against a policy.
type Checkpoint struct {
	flog.Checkpoint
	Raw []byte
	// CosignedBy names the policy's witnesses whose cosignature verified.
	CosignedBy []string
}

// VerifyCheckpoint checks raw against the policy: the log's signature, then
// the witness quorum. A signature line that claims to be from the log's key
// but does not verify is a SecurityError; an unknown key or a missing
// quorum is ErrNotVerified.
func (p *Policy) VerifyCheckpoint(raw []byte) (*Checkpoint, error) {
	if len(raw) > MaxCheckpointSize {
		return nil, notVerified("checkpoint of %d bytes is larger than %d", len(raw), MaxCheckpointSize)
	}
	origin, _, _ := strings.Cut(string(raw), "\n")
	l, ok := p.Log(origin)
	if !ok {
		return nil, notVerified("checkpoint is from log %q, which the policy does not name", origin)
	}
	var invalid *note.InvalidSignatureError
	var unverified *note.UnverifiedNoteError
	_, err := note.Open(raw, note.VerifierList(l.Verifier))
	if errors.As(err, &invalid) {
		return nil, &SecurityError{Reason: fmt.Sprintf("checkpoint carries a signature by the log's key %s that does not verify", l.VKey), Offered: raw}
	}
	if errors.As(err, &unverified) {
		var by []string
		for _, s := range unverified.Note.UnverifiedSigs {
			by = append(by, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
		}
		return nil, notVerified("checkpoint is not signed by the policy's log key %s+%08x but by %s: the policy names another key for this log (check its log line against the log's log.vkey), or this is not the log you think",
			l.Verifier.Name(), l.Verifier.KeyHash(), listOrNone(by))
	}
	cp, _, _, err := flog.ParseCheckpoint(raw, l.Origin, l.Verifier)
	if err != nil {
		return nil, notVerified("checkpoint does not verify with the log key %s: %v", l.VKey, err)
	}
	c := &Checkpoint{Checkpoint: *cp, Raw: bytes.Clone(raw)}
	for _, w := range p.Witnesses {
		n, err := note.Open(raw, note.VerifierList(w.Verifier))
		switch {
		case err == nil && len(n.Sigs) == 1:
			c.CosignedBy = append(c.CosignedBy, w.Name)
		case errors.As(err, &invalid):
			return nil, &SecurityError{Reason: fmt.Sprintf("checkpoint carries a cosignature by witness %s's key that does not verify", w.Name), Offered: raw}
		}
	}
	if !p.Quorum.Satisfied(raw) {
		return nil, notVerified("checkpoint of size %d is not cosigned by the policy's quorum %q (cosigned by: %s)", cp.Size, p.QuorumName, listOrNone(c.CosignedBy))
	}
	return c, nil
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
