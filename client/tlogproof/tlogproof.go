// Package tlogproof encodes and parses c2sp.org/tlog-proof@v1: a
// self-contained, offline-verifiable proof that an entry is in a log. It
// deals only with the format; checking the checkpoint's signatures and the
// inclusion proof is the caller's job (see package client).
//
// Parse accepts exactly what Marshal produces, so a proof round-trips byte
// for byte.
package tlogproof

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Header is the first line of every proof.
const Header = "c2sp.org/tlog-proof@v1"

// MaxProofHashes is the most hashes an inclusion proof in a tree of up to
// 2^63 entries can need.
const MaxProofHashes = 63

// MaxCheckpointSize bounds a checkpoint note with its signatures. C2SP
// signed-note: verifiers MUST accept at least 16 signatures, and
// post-quantum ones are up to nearly 5 kB. 16 lines each holding a 5,000
// byte signature (6,672 base64 characters with its key ID) under a
// 256-byte key name take 110,944 bytes, which leaves the checkpoint text
// over 19 KiB.
const MaxCheckpointSize = 128 << 10

// MaxSize bounds an encoded proof: a checkpoint of MaxCheckpointSize, 63
// hashes (2,835 bytes) and an extra line holding an entry of up to 8 KiB
// (10,931 bytes) fit.
const MaxSize = MaxCheckpointSize + 16<<10

// Proof is a parsed tlog-proof.
type Proof struct {
	// Extra is the opaque, unauthenticated extra data; nil when absent.
	// cpan-tlog puts the entry's leaf here.
	Extra []byte
	// Index is the entry's zero-based index in the log.
	Index uint64
	// InclusionProof holds the RFC 6962 inclusion proof hashes, from the
	// leaf's sibling up.
	InclusionProof [][]byte
	// Checkpoint is the log's signed checkpoint note, verbatim.
	Checkpoint []byte
}

// ErrMalformed is wrapped by every Parse error.
var ErrMalformed = errors.New("malformed tlog-proof")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// Marshal encodes p. It fails only on a proof Parse could not return.
func (p *Proof) Marshal() ([]byte, error) {
	if len(p.InclusionProof) > MaxProofHashes {
		return nil, malformed("%d proof hashes, at most %d", len(p.InclusionProof), MaxProofHashes)
	}
	if err := checkCheckpoint(p.Checkpoint); err != nil {
		return nil, err
	}
	if p.Extra != nil && len(p.Extra) == 0 {
		return nil, malformed("empty extra data (use nil for none)")
	}
	var b bytes.Buffer
	b.WriteString(Header + "\n")
	if p.Extra != nil {
		b.WriteString("extra " + base64.StdEncoding.EncodeToString(p.Extra) + "\n")
	}
	b.WriteString("index " + strconv.FormatUint(p.Index, 10) + "\n")
	for i, h := range p.InclusionProof {
		if len(h) != 32 {
			return nil, malformed("proof hash %d has %d bytes, want 32", i, len(h))
		}
		b.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
	}
	b.WriteString("\n")
	b.Write(p.Checkpoint)
	if b.Len() > MaxSize {
		return nil, malformed("%d bytes, more than %d", b.Len(), MaxSize)
	}
	return b.Bytes(), nil
}

// Parse decodes a proof, naming the first thing wrong with malformed input.
func Parse(b []byte) (*Proof, error) {
	if len(b) > MaxSize {
		return nil, malformed("%d bytes, more than %d", len(b), MaxSize)
	}
	head, cp, ok := bytes.Cut(b, []byte("\n\n"))
	if !ok {
		return nil, malformed("no blank line before the checkpoint")
	}
	lines := strings.Split(string(head), "\n")
	if lines[0] != Header {
		return nil, malformed("first line %q, want %q", lines[0], Header)
	}
	lines = lines[1:]
	p := &Proof{}
	if len(lines) > 0 && strings.HasPrefix(lines[0], "extra ") {
		enc := strings.TrimPrefix(lines[0], "extra ")
		x, err := base64.StdEncoding.Strict().DecodeString(enc)
		if err != nil || len(x) == 0 || base64.StdEncoding.EncodeToString(x) != enc {
			return nil, malformed("extra line is not canonical non-empty base64")
		}
		p.Extra = x
		lines = lines[1:]
	}
	if len(lines) == 0 {
		return nil, malformed("missing index line")
	}
	idx, ok := strings.CutPrefix(lines[0], "index ")
	if !ok {
		return nil, malformed("line %q, want %q", lines[0], "index N")
	}
	n, err := strconv.ParseUint(idx, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != idx {
		return nil, malformed("index %q is not a decimal without leading zeroes", idx)
	}
	p.Index = n
	lines = lines[1:]
	if len(lines) > MaxProofHashes {
		return nil, malformed("%d proof hashes, at most %d", len(lines), MaxProofHashes)
	}
	for i, l := range lines {
		h, err := base64.StdEncoding.Strict().DecodeString(l)
		if err != nil || len(h) != 32 || base64.StdEncoding.EncodeToString(h) != l {
			return nil, malformed("proof line %d %q is not a base64 SHA-256 hash", i+1, l)
		}
		p.InclusionProof = append(p.InclusionProof, h)
	}
	if err := checkCheckpoint(cp); err != nil {
		return nil, err
	}
	p.Checkpoint = cp
	return p, nil
}

// checkCheckpoint checks the shape of a signed note: text lines, a blank
// line, at least one signature line, a final newline. Whether it is a valid
// checkpoint with trusted signatures is for the verifier to say.
func checkCheckpoint(cp []byte) error {
	text, sigs, ok := bytes.Cut(cp, []byte("\n\n"))
	if !ok || len(text) == 0 || len(sigs) == 0 || !bytes.HasSuffix(sigs, []byte("\n")) {
		return malformed("checkpoint is not a signed note (text, blank line, signature lines)")
	}
	if n := bytes.Count(text, []byte("\n")); n < 2 {
		return malformed("checkpoint has %d text lines, want at least 3 (origin, size, root)", n+1)
	}
	for _, l := range bytes.Split(sigs[:len(sigs)-1], []byte("\n")) {
		if !bytes.HasPrefix(l, []byte("\u2014 ")) {
			return malformed("checkpoint signature line %q does not start with an em dash", l)
		}
	}
	return nil
}
