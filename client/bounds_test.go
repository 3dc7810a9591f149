package client

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// pqSignature is the size C2SP signed-note has verifiers allow for:
// "post-quantum signatures can be up to nearly 5kB".
const pqSignature = 5000

// pqLine is a signature line under an unknown key: a key name of nameLen
// bytes and a signature of pqSignature bytes after its key ID.
func pqLine(i, nameLen int) string {
	name := fmt.Sprintf("pq%02d.example/", i)
	name += strings.Repeat("n", nameLen-len(name))
	sig := bytes.Repeat([]byte{byte(i)}, 4+pqSignature)
	return "\u2014 " + name + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
}

// padNote appends signature lines under unknown keys to a signed note
// until it is exactly n bytes long: lines of 5 kB signatures, then one
// whose signature and name take up the rest.
func padNote(t testing.TB, note []byte, n int) []byte {
	t.Helper()
	out := bytes.Clone(note)
	full := pqLine(0, 16)
	for i := 1; n-len(out) >= len(full)+15; i++ {
		out = append(out, pqLine(i, 16)...)
	}
	r := n - len(out) // "— " name " " b64 "\n": 6 bytes and the two fields
	if r < 15 {
		t.Fatalf("cannot pad %d bytes to %d", len(note), n)
	}
	b64 := 4 * ((r - 7) / 4)
	name := strings.Repeat("p", r-6-b64)
	out = append(out, "\u2014 "+name+" "+strings.Repeat("A", b64)+"\n"...)
	if len(out) != n {
		t.Fatalf("padded to %d, want %d", len(out), n)
	}
	return out
}

// TestCheckpointSizeBound: C2SP signed-note, "Format": verifiers MUST
// accept at least 16 signatures, of up to nearly 5 kB each. A checkpoint
// with 16 such lines (under 256-byte key names) besides the log's and the
// witnesses' verifies; one of exactly MaxCheckpointSize bytes does; one
// byte more is refused as not verified (never a security error).
func TestCheckpointSizeBound(t *testing.T) {
	k := newKeys(t, "localhost/cpan-tlog")
	p := k.policy(t, "both")
	cp := k.checkpoint(t, 5, 0, 1)
	sixteen := bytes.Clone(cp)
	for i := range 16 {
		sixteen = append(sixteen, pqLine(i, 256)...)
	}
	if got, err := p.VerifyCheckpoint(sixteen); err != nil || len(got.CosignedBy) != 2 {
		t.Errorf("16 signatures of %d bytes (%d bytes in all): %v", pqSignature, len(sixteen), err)
	}
	if _, err := p.VerifyCheckpoint(padNote(t, cp, MaxCheckpointSize)); err != nil {
		t.Errorf("a checkpoint of exactly MaxCheckpointSize (%d) bytes: %v", MaxCheckpointSize, err)
	}
	_, err := p.VerifyCheckpoint(padNote(t, cp, MaxCheckpointSize+1))
	if !errors.Is(err, ErrNotVerified) || errors.Is(err, ErrSecurity) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("a checkpoint one byte past the bound: %v, want a refusal naming the size", err)
	}
}

// TestCheckKeyName: C2SP signed-note, "Format": "Key names MUST be
// non-empty and MUST NOT contain any Unicode spaces or plus (U+002B)
// characters"; a note holds no control characters but newline.
func TestCheckKeyName(t *testing.T) {
	for _, ok := range []string{"localhost/cpan-tlog", "cpan-tlog.example.org/log", "w1.example", "ex\u00e4mple.org/\uffff"} {
		if err := CheckKeyName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for name, want := range map[string]string{
		"":                 "empty",
		"a+b/log":          "'+'",
		"a b/log":          "space",
		"a\tb":             "space",
		"a\u00a0b":         "space",
		"a\u2003b":         "space",
		"a\nb":             "space",
		"a\x01b":           "control",
		"a\x7fb":           "control",
		"a\xffb":           "UTF-8",
		"example.com/log+": "'+'",
	} {
		err := CheckKeyName(name)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "signed-note") {
			t.Errorf("%q: %v, want an error saying %q and the rule", name, err, want)
		}
	}
}
