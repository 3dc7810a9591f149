package client

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	flog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/client/tlogproof"
)

// MaxCheckpointSize bounds a checkpoint note with its cosignatures (see
// tlogproof.MaxCheckpointSize): 16 signatures of 5 kB fit, as C2SP
// signed-note asks of verifiers.
const MaxCheckpointSize = tlogproof.MaxCheckpointSize

// CheckKeyName says what is wrong with name as a signed-note key name (a
// log's origin, a witness's name), or nil. C2SP signed-note: key names
// MUST be non-empty and MUST NOT contain Unicode spaces or '+'; and since
// an origin is a checkpoint's first line, and a note holds no control
// characters but newline, none may appear in it either. x/mod's note
// accepts no other names (note.NewVerifier), but note.GenerateKey makes a
// key for any: check before writing one.
func CheckKeyName(name string) error {
	const rule = "C2SP signed-note: a key name is non-empty, valid UTF-8, with no spaces, no '+' and no control characters; for example cpan-tlog.example.org/log"
	switch {
	case name == "":
		return fmt.Errorf("the key name is empty (%s)", rule)
	case !utf8.ValidString(name):
		return fmt.Errorf("key name %q is not valid UTF-8 (%s)", name, rule)
	case strings.Contains(name, "+"):
		return fmt.Errorf("key name %q contains '+' (%s)", name, rule)
	case strings.IndexFunc(name, unicode.IsSpace) >= 0:
		return fmt.Errorf("key name %q contains a space (%s)", name, rule)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("key name %q contains a control character (%s)", name, rule)
	}
	return nil
}

// Checkpoint is a checkpoint that verified against a policy.
type Checkpoint struct {
	flog.Checkpoint
	Raw []byte
	// CosignedBy names the policy's witnesses whose cosignature verified.
	CosignedBy []string
	// LogVKey is the policy's key of the log that signed it: the trusted
	// state is kept per log key (State).
	LogVKey string
}

// VerifyCheckpoint checks raw against the policy: the log's signature, then
// the witness quorum. Every failure is ErrNotVerified, a signature line
// under a trusted key that does not verify included (a BadSignatureError):
// bytes that do not verify are no evidence against the log (anyone who can
// flip a byte of a proof in transit makes them), so they never make a
// SecurityError, which is kept for signed views that conflict (State).
func (p *Policy) VerifyCheckpoint(raw []byte) (*Checkpoint, error) {
	if len(raw) > MaxCheckpointSize {
		return nil, notVerified("checkpoint of %d bytes is larger than %d", len(raw), MaxCheckpointSize)
	}
	origin, _, _ := strings.Cut(string(raw), "\n")
	l, ok := p.Log(origin)
	if !ok {
		return nil, notVerified("checkpoint is from log %q, which the policy does not name", origin)
	}
	if err := checkSignatureLines(raw); err != nil {
		return nil, notVerified("checkpoint is not a well-formed signed note: %v", err)
	}
	// x/mod's note verifies only the first line under a key and drops the
	// rest; C2SP signed-note: every line under a known key MUST verify, and
	// one that does not rejects the whole note.
	if bad, ok := FailingSignatureLine(raw, l.Verifier); ok {
		return nil, &BadSignatureError{Reason: fmt.Sprintf("checkpoint carries a signature line by the log's key %s that does not verify (%q), so the note is rejected whole", l.VKey, strings.TrimSuffix(bad, "\n")), Offered: raw}
	}
	for _, w := range p.Witnesses {
		if _, ok := FailingSignatureLine(raw, w.Verifier); ok {
			return nil, &BadSignatureError{Reason: fmt.Sprintf("checkpoint carries a cosignature line by witness %s's key that does not verify, so the note is rejected whole", w.Name), Offered: raw}
		}
	}
	var invalid *note.InvalidSignatureError
	var unverified *note.UnverifiedNoteError
	_, err := note.Open(raw, note.VerifierList(l.Verifier))
	if errors.As(err, &invalid) {
		return nil, &BadSignatureError{Reason: fmt.Sprintf("checkpoint carries a signature by the log's key %s that does not verify", l.VKey), Offered: raw}
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
	if err := checkCanonical(raw, cp); err != nil {
		return nil, notVerified("checkpoint signed by the log key %s is not canonical: %v", l.VKey, err)
	}
	c := &Checkpoint{Checkpoint: *cp, Raw: bytes.Clone(raw), LogVKey: l.VKey}
	for _, w := range p.Witnesses {
		n, err := note.Open(raw, note.VerifierList(w.Verifier))
		switch {
		case err == nil && len(n.Sigs) == 1:
			c.CosignedBy = append(c.CosignedBy, w.Name)
		case errors.As(err, &invalid):
			return nil, &BadSignatureError{Reason: fmt.Sprintf("checkpoint carries a cosignature by witness %s's key that does not verify", w.Name), Offered: raw}
		}
	}
	if !p.Quorum.Satisfied(raw) {
		return nil, notVerified("checkpoint of size %d is not cosigned by the policy's quorum %q (cosigned by: %s)", cp.Size, p.QuorumName, listOrNone(c.CosignedBy))
	}
	return c, nil
}

// maxSignatureLines is x/mod note's limit (C2SP signed-note: at least 16).
const maxSignatureLines = 100

// checkSignatureLines checks what x/mod's note is lax about, so that
// every verifier reads a note alike: at most maxSignatureLines signature
// lines, each in canonical base64.
func checkSignatureLines(raw []byte) error {
	i := bytes.LastIndex(raw, []byte("\n\n"))
	if i < 0 {
		return errors.New("no signature block")
	}
	lines := strings.Split(strings.TrimSuffix(string(raw[i+2:]), "\n"), "\n")
	if len(lines) > maxSignatureLines {
		return fmt.Errorf("%d signature lines, more than %d", len(lines), maxSignatureLines)
	}
	for _, l := range lines {
		f := strings.Split(l, " ")
		if len(f) != 3 {
			continue // note.Open says what is wrong
		}
		b, err := base64.StdEncoding.Strict().DecodeString(f[2])
		if err != nil || base64.StdEncoding.EncodeToString(b) != f[2] {
			return fmt.Errorf("signature of %q is not canonical base64", f[1])
		}
	}
	return nil
}

// FailingSignatureLine finds a signature line of the signed note raw under
// v's key name and key ID that does not verify, whether or not another
// line under the same key does. C2SP signed-note: a line whose key name
// and ID match a known key MUST be verified; x/mod's note.Open verifies
// only the first such line and skips the others. The witness uses it too
// (C2SP tlog-witness: such a note gets 403).
func FailingSignatureLine(raw []byte, v note.Verifier) (string, bool) {
	i := bytes.LastIndex(raw, []byte("\n\n"))
	if i < 0 {
		return "", false
	}
	text := raw[:i+1]
	for _, l := range strings.SplitAfter(string(raw[i+2:]), "\n") {
		name, b64, ok := strings.Cut(strings.TrimPrefix(strings.TrimSuffix(l, "\n"), "\u2014 "), " ")
		if !ok || name != v.Name() {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(sig) < 5 || binary.BigEndian.Uint32(sig) != v.KeyHash() {
			continue
		}
		one := append(append(bytes.Clone(text), '\n'), l...)
		if _, err := note.Open(one, note.VerifierList(v)); err != nil {
			return l, true
		}
	}
	return "", false
}

// checkCanonical checks the checkpoint text's size and root are written
// as tlog-checkpoint says: decimal without leading zeros, and the
// canonical base64 of 32 bytes.
func checkCanonical(raw []byte, cp *flog.Checkpoint) error {
	lines := strings.SplitN(string(raw), "\n", 4)
	if len(lines) < 4 {
		return errors.New("fewer than three lines")
	}
	if lines[1] != strconv.FormatUint(cp.Size, 10) {
		return fmt.Errorf("size %q is not written canonically", lines[1])
	}
	if lines[2] != base64.StdEncoding.EncodeToString(cp.Hash) || len(cp.Hash) != 32 {
		return fmt.Errorf("root hash %q is not the canonical base64 of 32 bytes", lines[2])
	}
	return nil
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
