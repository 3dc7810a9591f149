package witness

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/CPAN-Security/cpan-tlog/client"
)

// MaxRequestSize bounds an add-checkpoint body: the old size line, 63
// proof lines (2,835 bytes) and a checkpoint of client.MaxCheckpointSize,
// which holds 16 signatures of 5 kB as C2SP signed-note asks.
const MaxRequestSize = client.MaxCheckpointSize + 4<<10

// Request is a parsed add-checkpoint body.
type Request struct {
	OldSize    uint64
	Proof      [][]byte
	Checkpoint []byte // the signed note, verbatim
}

// ErrMalformed is wrapped by ParseRequest errors.
var ErrMalformed = errors.New("malformed add-checkpoint request")

// ParseRequest parses a C2SP tlog-witness add-checkpoint body: an "old N"
// line, at most 63 base64 hash lines, an empty line and a checkpoint.
func ParseRequest(b []byte) (*Request, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
	if len(b) > MaxRequestSize {
		return nil, bad("%d bytes, more than %d", len(b), MaxRequestSize)
	}
	head, cp, ok := bytes.Cut(b, []byte("\n\n"))
	if !ok {
		return nil, bad("no empty line before the checkpoint")
	}
	lines := strings.Split(string(head), "\n")
	old, ok := strings.CutPrefix(lines[0], "old ")
	if !ok {
		return nil, bad("first line %q is not 'old N'", lines[0])
	}
	n, err := strconv.ParseUint(old, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != old {
		return nil, bad("old size %q is not a decimal without leading zeroes", old)
	}
	r := &Request{OldSize: n, Checkpoint: cp}
	if len(lines)-1 > 63 {
		return nil, bad("%d proof lines, at most 63", len(lines)-1)
	}
	for i, l := range lines[1:] {
		// Go's decoder skips CR and LF: only the canonical encoding is a
		// hash line (a line ending in CR LF is not one).
		h, err := base64.StdEncoding.Strict().DecodeString(l)
		if err != nil || len(h) != 32 || base64.StdEncoding.EncodeToString(h) != l {
			return nil, bad("proof line %d is not a base64 SHA-256 hash", i+1)
		}
		r.Proof = append(r.Proof, h)
	}
	if len(cp) == 0 || cp[len(cp)-1] != '\n' {
		return nil, bad("checkpoint does not end with a newline")
	}
	return r, nil
}

// Marshal encodes the request, for clients and tests.
func (r *Request) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", r.OldSize)
	for _, h := range r.Proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
	}
	b.WriteString("\n")
	b.Write(r.Checkpoint)
	return b.Bytes()
}
