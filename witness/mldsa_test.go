package witness

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/mldsa"
	flog "github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// TestKeygenMLDSA44: C2SP tlog-cosignature, Format: an ML-DSA-44 vkey is
// type 0x06 and the 1312-byte public key, and the key ID is
// SHA-256(name || "\n" || 0x06 || public key)[:4]; the key file is 0600.
// The default stays Ed25519 (type 0x04).
func TestKeygenMLDSA44(t *testing.T) {
	dir := t.TempDir()
	vkey, err := KeygenWith(dir, "pq.example", MLDSA44)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(vkey, "+", 3)
	key := mustB64(t, parts[2])
	if parts[0] != "pq.example" || key[0] != 0x06 || len(key) != 1+mldsa.MLDSA44PublicKeySize {
		t.Fatalf("vkey %q...: type 0x%02x, %d bytes; want pq.example, 0x06 and 1313 bytes", vkey[:40], key[0], len(key))
	}
	id := sha256.Sum256(append([]byte("pq.example\n"), key...))
	if want := strings.ToLower(strings.TrimSpace(string(hexOf(id[:4])))); parts[1] != want {
		t.Errorf("key ID %s, want %s", parts[1], want)
	}
	if fi, err := os.Stat(filepath.Join(dir, KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v %v, want mode 0600", KeyFile, fi.Mode(), err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, VKeyFile)); strings.TrimSpace(string(b)) != vkey {
		t.Errorf("%s does not hold the vkey printed", VKeyFile)
	}
	if _, err := KeygenWith(dir, "pq.example", MLDSA44); err == nil {
		t.Error("KeygenWith overwrote an existing key")
	}
	edDir := t.TempDir()
	edVKey, err := Keygen(edDir, "ed.example")
	if err != nil {
		t.Fatal(err)
	}
	if k := mustB64(t, strings.SplitN(edVKey, "+", 3)[2]); k[0] != 0x04 || len(k) != 33 {
		t.Errorf("Keygen's default key is type 0x%02x, %d bytes; want Ed25519 (0x04, 33)", k[0], len(k))
	}
	for _, s := range []string{"ed25519", "ML-DSA-44", "ml-dsa-44"} {
		if _, err := ParseAlgorithm(s); err != nil {
			t.Errorf("ParseAlgorithm(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "mldsa", "ml-dsa-65", "rsa"} {
		if _, err := ParseAlgorithm(s); err == nil {
			t.Errorf("ParseAlgorithm(%q) accepted", s)
		}
		if _, err := KeygenWith(filepath.Join(t.TempDir(), "d"), "x.example", Algorithm(s)); err == nil {
			t.Errorf("KeygenWith(%q) accepted", s)
		}
	}
}

func hexOf(b []byte) []byte {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return out
}

// TestMLDSA44Cosignature: a witness keyed ML-DSA-44 cosigns a checkpoint
// with a signature that (1) verifies with code written from C2SP
// tlog-cosignature's ML-DSA-44 section, independent of the signer's
// library: timestamp || ML-DSA-44(cosigned_message), the message being
// "subtree/v1\n\0", the cosigner name, the timestamp, the origin, start 0,
// end = size and the root, TLS-encoded; (2) verifies with
// transparency-dev/formats' verifier, as other clients check it; and the
// state it keeps and serves back carries it.
func TestMLDSA44Cosignature(t *testing.T) {
	l := newFakeLog(t, 5)
	dir := t.TempDir()
	vkey, err := KeygenWith(dir, "pq.example", MLDSA44)
	if err != nil {
		t.Fatal(err)
	}
	w := newWitness(t, dir, l, 1000)
	if w.VerifierKey() != vkey {
		t.Fatalf("VerifierKey %q, want the key made", w.VerifierKey())
	}
	a := w.AddCheckpoint(l.request(t, 0, 5))
	if a.Status != 200 {
		t.Fatalf("add-checkpoint: %d %s", a.Status, a.Body)
	}
	cp := l.checkpoint(t, 5)
	text, _, _ := bytes.Cut(cp, []byte("\n\n"))
	var c flog.Checkpoint
	if _, err := c.Unmarshal(append(text, '\n')); err != nil {
		t.Fatal(err)
	}
	verifyMLDSACosignature(t, vkey, &c, string(a.Body))

	cosigned := append(bytes.Clone(cp), a.Body...)
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := note.Open(cosigned, note.VerifierList(v)); err != nil || len(n.Sigs) != 1 {
		t.Fatalf("formats' verifier: %v", err)
	}
	// A flipped bit in the ML-DSA signature does not verify.
	sig := mustB64(t, strings.Fields(string(a.Body))[2])
	sig[len(sig)-100] ^= 1
	bad := append(bytes.Clone(cp), []byte("\u2014 pq.example "+b64(sig)+"\n")...)
	var invalid *note.InvalidSignatureError
	if _, err := note.Open(bad, note.VerifierList(v)); !asInvalid(err, &invalid) {
		t.Errorf("a flipped ML-DSA-44 cosignature: %v, want InvalidSignatureError", err)
	}
	latest, err := w.Latest(origin)
	if err != nil || !bytes.Contains(latest, a.Body) {
		t.Errorf("the stored state lacks the witness's ML-DSA-44 cosignature: %v\n%s", err, latest)
	}
	// Served back at the read endpoint with only verified lines.
	if got := w.onlyVerified(latest, []note.Verifier{mustVerifier(t, l.vkey)}); !bytes.Contains(got, a.Body) {
		t.Errorf("onlyVerified dropped the witness's own ML-DSA-44 line")
	}
}

// TestMLDSA44KeyFromFormats: a key made by transparency-dev/formats'
// GenerateMLDSAKey (what another tool writes) opens as a witness key and
// cosigns; a vkey file that does not match the key is refused at Open.
func TestMLDSA44KeyFromFormats(t *testing.T) {
	l := newFakeLog(t, 3)
	dir := t.TempDir()
	skey, vkey, err := fnote.GenerateMLDSAKey("other.example")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, KeyFile), []byte(skey+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, VKeyFile), []byte(vkey+"\n"), 0o644)
	w := newWitness(t, dir, l, 1000)
	if a := w.AddCheckpoint(l.request(t, 0, 3)); a.Status != 200 {
		t.Fatalf("add-checkpoint: %d %s", a.Status, a.Body)
	}
	_, otherVKey, _ := fnote.GenerateMLDSAKey("other.example")
	os.WriteFile(filepath.Join(dir, VKeyFile), []byte(otherVKey+"\n"), 0o644)
	cfg, _ := ParseConfig([]byte("log " + l.vkey + "\n"))
	if _, err := Open(dir, cfg, 1, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil || !strings.Contains(err.Error(), VKeyFile) {
		t.Errorf("Open with a vkey of another ML-DSA-44 key: %v, want refused naming %s", err, VKeyFile)
	}
}

// verifyMLDSACosignature checks an ML-DSA-44 cosignature line as C2SP
// tlog-cosignature defines it, with filippo.io/mldsa for the primitive
// only.
func verifyMLDSACosignature(t *testing.T, vkey string, c *flog.Checkpoint, line string) {
	t.Helper()
	parts := strings.SplitN(vkey, "+", 3)
	name, key := parts[0], mustB64(t, parts[2])
	pk, err := mldsa.NewPublicKey(mldsa.MLDSA44(), key[1:])
	if err != nil {
		t.Fatal(err)
	}
	prefix := "\u2014 " + name + " "
	if !strings.HasPrefix(line, prefix) || !strings.HasSuffix(line, "\n") {
		t.Fatalf("signature line %q", line)
	}
	sig := mustB64(t, strings.TrimSuffix(strings.TrimPrefix(line, prefix), "\n"))
	id := sha256.Sum256(append([]byte(name+"\n"), key...))
	if len(sig) != 4+8+2420 || !bytes.Equal(sig[:4], id[:4]) {
		t.Fatalf("signature of %d bytes with key ID %x; want 4+8+2420 and %x", len(sig), sig[:4], id[:4])
	}
	ts := binary.BigEndian.Uint64(sig[4:12])
	var msg []byte
	msg = append(msg, "subtree/v1\n\x00"...)
	msg = append(msg, byte(len(name)))
	msg = append(msg, name...)
	msg = binary.BigEndian.AppendUint64(msg, ts)
	msg = append(msg, byte(len(c.Origin)))
	msg = append(msg, c.Origin...)
	msg = binary.BigEndian.AppendUint64(msg, 0)
	msg = binary.BigEndian.AppendUint64(msg, c.Size)
	msg = append(msg, c.Hash...)
	if err := mldsa.Verify(pk, msg, sig[12:], nil); err != nil {
		t.Fatalf("ML-DSA-44 cosignature does not verify (independent message): %v", err)
	}
	if ts == 0 {
		t.Error("timestamp 0: the witness states the tree is the largest it saw, so it must give the time")
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func asInvalid(err error, target **note.InvalidSignatureError) bool { return errors.As(err, target) }

func mustVerifier(t *testing.T, vkey string) note.Verifier {
	t.Helper()
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
