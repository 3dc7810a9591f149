package client

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"filippo.io/mldsa"
	flog "github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// mldsaKey is an ML-DSA-44 cosigning key made from a fixed seed (fuzz
// seeds need keys that are the same in every run), in the skey and vkey
// forms transparency-dev/formats reads.
func mldsaKey(t testing.TB, name string, seed byte) (note.Signer, string) {
	t.Helper()
	sk := append([]byte{0x06}, bytes.Repeat([]byte{seed}, 32)...)
	skey := fmt.Sprintf("PRIVATE+KEY+%s+00000000+%s", name, base64.StdEncoding.EncodeToString(sk))
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s, mldsaVKey(t, name, seed)
}

func mldsaPublicKey(t testing.TB, seed byte) []byte {
	t.Helper()
	sk, err := mldsa.NewPrivateKey(mldsa.MLDSA44(), bytes.Repeat([]byte{seed}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return sk.PublicKey().Bytes()
}

// mldsaVKey is the vkey of mldsaKey(name, seed): type 0x06 and the
// 1312-byte public key, key ID SHA-256(name || "\n" || 0x06 || key)[:4].
func mldsaVKey(t testing.TB, name string, seed byte) string {
	t.Helper()
	pub := mldsaPublicKey(t, seed)
	key := append([]byte{0x06}, pub...)
	h := sha256.Sum256(append([]byte(name+"\n"), key...))
	return fmt.Sprintf("%s+%x+%s", name, h[:4], base64.StdEncoding.EncodeToString(key))
}

// mldsaKeys is a log key, an Ed25519 witness w1 and an ML-DSA-44 witness
// pq, with a policy naming them.
type mldsaKeys struct {
	*keys
	pqSigner note.Signer
	pqVKey   string
}

func newMLDSAKeys(t testing.TB) *mldsaKeys {
	t.Helper()
	k := &mldsaKeys{keys: newKeysFrom(t, "localhost/cpan-tlog", bytes.NewReader(bytes.Repeat([]byte("cpan-tlog ml-dsa "), 16)))}
	k.pqSigner, k.pqVKey = mldsaKey(t, "pq.example", 7)
	return k
}

// policy: "both" needs w1 and pq, "either" one of them, "pq" pq alone.
func (k *mldsaKeys) policy(t testing.TB, quorum string) *Policy {
	t.Helper()
	text := fmt.Sprintf("log %s http://127.0.0.1:1\nwitness w1 %s http://127.0.0.1:2\nwitness pq %s http://127.0.0.1:3\ngroup both 2 w1 pq\ngroup either any w1 pq\nquorum %s\n",
		k.logVKey, k.witnessVKeys[0], k.pqVKey, quorum)
	p, err := ParsePolicy([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// checkpoint signs a checkpoint by the log, then w1 and pq as asked.
func (k *mldsaKeys) checkpoint(t testing.TB, size uint64, w1, pq bool) []byte {
	t.Helper()
	text := flog.Checkpoint{Origin: k.logSigner.Name(), Size: size, Hash: rootOf(size, "")}.Marshal()
	signers := []note.Signer{k.logSigner}
	if w1 {
		signers = append(signers, k.witnessSigners[0])
	}
	if pq {
		signers = append(signers, k.pqSigner)
	}
	b, err := note.Sign(&note.Note{Text: string(text)}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pqLineIndex is the index of pq's line among the checkpoint's signatures.
func pqLineIndex(cp []byte) int {
	_, sigs, _ := strings.Cut(string(cp), "\n\n")
	for i, l := range strings.Split(sigs, "\n") {
		if strings.HasPrefix(l, "\u2014 pq.example ") {
			return i
		}
	}
	return -1
}

// TestPolicyMLDSA44Witness: C2SP tlog-cosignature: a witness key may be
// type 0x04 (Ed25519) or 0x06 (ML-DSA-44, a 1312-byte public key); the
// key ID must be SHA-256(name || "\n" || type || key)[:4]. Other types,
// sizes and IDs are refused, naming the line.
func TestPolicyMLDSA44Witness(t *testing.T) {
	k := newMLDSAKeys(t)
	p := k.policy(t, "both")
	if len(p.Witnesses) != 2 || p.Witnesses[1].Algorithm() != "ML-DSA-44" || p.Witnesses[0].Algorithm() != "Ed25519" {
		t.Fatalf("witnesses %+v", p.Witnesses)
	}
	if p.Witnesses[1].Verifier.KeyHash() != k.pqSigner.KeyHash() {
		t.Errorf("the ML-DSA-44 verifier's key ID %08x is not the signer's %08x", p.Witnesses[1].Verifier.KeyHash(), k.pqSigner.KeyHash())
	}
	parts := strings.SplitN(k.pqVKey, "+", 3)
	raw, _ := base64.StdEncoding.DecodeString(parts[2])
	withKey := func(key []byte) string {
		h := sha256.Sum256(append([]byte(parts[0]+"\n"), key...))
		return fmt.Sprintf("%s+%x+%s", parts[0], h[:4], base64.StdEncoding.EncodeToString(key))
	}
	ed := strings.SplitN(k.witnessVKeys[0], "+", 3)
	edRaw, _ := base64.StdEncoding.DecodeString(ed[2])
	for name, vkey := range map[string]string{
		"wrong key ID":               parts[0] + "+00000000+" + parts[2],
		"short ML-DSA-44 key":        withKey(raw[:len(raw)-1]),
		"long ML-DSA-44 key":         withKey(append(bytes.Clone(raw), 0)),
		"type 0x05 with ML-DSA key":  withKey(append([]byte{0x05}, raw[1:]...)),
		"type 0x07 with ML-DSA key":  withKey(append([]byte{0x07}, raw[1:]...)),
		"type 0x06 with Ed25519 key": withKey(append([]byte{0x06}, edRaw[1:]...)),
		"type 0x01 (a log's key)":    withKey(append([]byte{0x01}, edRaw[1:]...)),
		"not base64":                 parts[0] + "+" + parts[1] + "+" + parts[2][:len(parts[2])-2] + "!!",
	} {
		text := fmt.Sprintf("log %s\nwitness pq %s\nquorum pq\n", k.logVKey, vkey)
		_, err := ParsePolicy([]byte(text))
		if err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%s: %v, want refused on line 2", name, err)
		}
	}
	// One ML-DSA-44 key on two lines counts once (C2SP tlog-policy).
	text := fmt.Sprintf("log %s\nwitness pq %s\nwitness pq2 %s\ngroup g 2 pq pq2\nquorum g\n", k.logVKey, k.pqVKey, renamedVKey(t, k.pqVKey, "pq2.example"))
	if _, err := ParsePolicy([]byte(text)); err == nil || !strings.Contains(err.Error(), "same public key") {
		t.Errorf("one ML-DSA-44 key on two witness lines: %v, want refused", err)
	}
}

// TestVerifyCheckpointMLDSA44: an ML-DSA-44 cosignature counts toward the
// quorum as an Ed25519 one does, and one that does not verify rejects the
// note whole (C2SP signed-note), whether or not the quorum is met without
// it. The cosignatures are made by transparency-dev/formats' ML-DSA-44
// signer: what other witnesses (omniwitness, litewitness) send.
func TestVerifyCheckpointMLDSA44(t *testing.T) {
	k := newMLDSAKeys(t)
	both := k.checkpoint(t, 5, true, true)
	i := pqLineIndex(both)
	if i < 0 {
		t.Fatalf("no pq line in %s", both)
	}
	truncated := func(cp []byte) []byte {
		// pq's line cut to a signature of the wrong length, ID kept.
		text, sigs, _ := strings.Cut(string(cp), "\n\n")
		lines := strings.Split(sigs, "\n")
		f := strings.Fields(lines[i])
		b, _ := base64.StdEncoding.DecodeString(f[2])
		lines[i] = f[0] + " " + f[1] + " " + base64.StdEncoding.EncodeToString(b[:len(b)-3])
		return []byte(text + "\n\n" + strings.Join(lines, "\n"))
	}
	// pq's valid line, then a corrupted copy of it.
	flipped := strings.Split(strings.SplitN(string(corruptSig(both, i)), "\n\n", 2)[1], "\n")[i]
	dup := []byte(string(both) + flipped + "\n")
	for _, c := range []struct {
		name, quorum string
		cp           []byte
		bad          bool // a BadSignatureError
		want         error
		cosig        string
	}{
		{"Ed25519 and ML-DSA-44, both needed", "both", both, false, nil, "w1,pq"},
		{"ML-DSA-44 alone", "pq", k.checkpoint(t, 5, false, true), false, nil, "pq"},
		{"ML-DSA-44 alone meets any", "either", k.checkpoint(t, 5, false, true), false, nil, "pq"},
		{"Ed25519 meets any, ML-DSA-44 present", "either", both, false, nil, "w1,pq"},
		{"ML-DSA-44 missing", "both", k.checkpoint(t, 5, true, false), false, ErrNotVerified, ""},
		{"ML-DSA-44 flipped", "both", corruptSig(both, i), true, ErrNotVerified, ""},
		{"ML-DSA-44 flipped, quorum met without it", "either", corruptSig(both, i), true, ErrNotVerified, ""},
		{"ML-DSA-44 signature of the wrong length", "both", truncated(both), true, ErrNotVerified, ""},
		{"ML-DSA-44 valid line and a corrupted duplicate", "both", dup, true, ErrNotVerified, ""},
		{"ML-DSA-44 cosignature of another checkpoint", "both", swapPQLine(t, both, k.checkpoint(t, 6, false, true)), true, ErrNotVerified, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cp, err := k.policy(t, c.quorum).VerifyCheckpoint(c.cp)
			var bad *BadSignatureError
			switch {
			case c.want == nil && err != nil:
				t.Fatalf("error %v", err)
			case c.want != nil && !errors.Is(err, c.want):
				t.Fatalf("error %v, want %v", err, c.want)
			case errors.Is(err, ErrSecurity):
				t.Fatalf("a security error from bytes that do not verify: %v", err)
			case c.bad != errors.As(err, &bad):
				t.Fatalf("error %v: BadSignatureError %v, want %v", err, !c.bad, c.bad)
			case c.bad && !strings.Contains(err.Error(), "witness pq"):
				t.Errorf("error %v does not name witness pq", err)
			case c.want == nil && strings.Join(cp.CosignedBy, ",") != c.cosig:
				t.Errorf("cosigned by %v, want %s", cp.CosignedBy, c.cosig)
			}
		})
	}
}

// swapPQLine puts pq's line of from into cp in place of cp's.
func swapPQLine(t *testing.T, cp, from []byte) []byte {
	t.Helper()
	_, fs, _ := strings.Cut(string(from), "\n\n")
	line := strings.Split(fs, "\n")[pqLineIndex(from)]
	text, sigs, _ := strings.Cut(string(cp), "\n\n")
	lines := strings.Split(sigs, "\n")
	lines[pqLineIndex(cp)] = line
	return []byte(text + "\n\n" + strings.Join(lines, "\n"))
}

// TestMLDSA44InteropWithFormats: the verifier the policy builds for an
// ML-DSA-44 witness accepts what formats' signer makes (above), and
// formats' own verifier, built from the same vkey as another client
// would, accepts a note our client accepted.
func TestMLDSA44InteropWithFormats(t *testing.T) {
	k := newMLDSAKeys(t)
	cp := k.checkpoint(t, 9, true, true)
	if _, err := k.policy(t, "both").VerifyCheckpoint(cp); err != nil {
		t.Fatal(err)
	}
	v, err := fnote.NewMLDSAVerifier(k.pqVKey)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := note.Open(cp, note.VerifierList(v)); err != nil || len(n.Sigs) != 1 {
		t.Fatalf("formats' NewMLDSAVerifier: %v", err)
	}
}

// TestCosignedAtMLDSA44: the cross-check reads the time of an ML-DSA-44
// cosignature (8+2420 bytes after the key ID), and timestamp 0 (no
// statement about the largest tree, C2SP tlog-cosignature) is the zero
// time, which the stale-view check passes over.
func TestCosignedAtMLDSA44(t *testing.T) {
	k := newMLDSAKeys(t)
	p := k.policy(t, "both")
	before := time.Now().Add(-time.Minute)
	when, ok := cosignedAt(k.checkpoint(t, 3, true, true), &p.Witnesses[1])
	if !ok || when.Before(before) || when.After(time.Now().Add(time.Minute)) {
		t.Errorf("cosignedAt: %v %v, want about now", when, ok)
	}
	// A cosignature with timestamp 0, made with formats' subtree signer.
	st, err := fnote.NewMLDSASigner(mldsaSKey(7, "pq.example"))
	if err != nil {
		t.Fatal(err)
	}
	c := flog.Checkpoint{Origin: "localhost/cpan-tlog", Size: 3, Hash: rootOf(3, "")}
	sig, err := st.SignSubtree(0, c.Origin, 0, c.Size, c.Hash)
	if err != nil {
		t.Fatal(err)
	}
	logOnly := k.checkpoint(t, 3, false, false)
	id := make([]byte, 4)
	binary.BigEndian.PutUint32(id, st.KeyHash())
	zero := []byte(string(logOnly) + "\u2014 pq.example " + base64.StdEncoding.EncodeToString(append(id, sig...)) + "\n")
	when, ok = cosignedAt(zero, &p.Witnesses[1])
	if !ok || !when.IsZero() {
		t.Errorf("cosignedAt of a timestamp-0 cosignature: %v %v, want the zero time", when, ok)
	}
	if _, err := k.policy(t, "pq").VerifyCheckpoint(zero); err != nil {
		t.Errorf("a timestamp-0 ML-DSA-44 cosignature: %v, want counted", err)
	}
}

func mldsaSKey(seed byte, name string) string {
	sk := append([]byte{0x06}, bytes.Repeat([]byte{seed}, 32)...)
	return fmt.Sprintf("PRIVATE+KEY+%s+00000000+%s", name, base64.StdEncoding.EncodeToString(sk))
}

// FuzzVerifyCheckpointMLDSA44 is FuzzVerifyCheckpoint with an ML-DSA-44
// witness in the policy: whatever the bytes, a verified checkpoint whose
// quorum really signed, or ErrNotVerified; never a security error or a
// panic. Seeds: checkpoints as TestVerifyCheckpointMLDSA44 makes them,
// with fixed keys, so their signatures are valid in every run, here and
// in testdata/fuzz/FuzzVerifyCheckpointMLDSA44.
func FuzzVerifyCheckpointMLDSA44(f *testing.F) {
	k := newMLDSAKeys(f)
	p := k.policy(f, "either")
	both := k.checkpoint(f, 5, true, true)
	f.Add(both)
	f.Add(k.checkpoint(f, 5, false, true))
	f.Add(corruptSig(both, pqLineIndex(both)))
	f.Fuzz(func(t *testing.T, raw []byte) {
		cp, err := p.VerifyCheckpoint(raw)
		if err != nil {
			if !errors.Is(err, ErrNotVerified) || errors.Is(err, ErrSecurity) {
				t.Fatalf("error is not (only) not-verified: %v", err)
			}
			return
		}
		if len(cp.CosignedBy) == 0 || !p.Quorum.Satisfied(raw) {
			t.Fatalf("accepted a checkpoint without the quorum: %q", raw)
		}
	})
}
