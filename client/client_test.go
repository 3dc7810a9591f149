package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	flog "github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// keys is a log key and two witness keys for tests.
type keys struct {
	logSigner      note.Signer
	logVKey        string
	witnessSigners []note.Signer
	witnessVKeys   []string
}

func newKeys(t testing.TB, origin string) *keys {
	t.Helper()
	return newKeysFrom(t, origin, rand.Reader)
}

// newKeysFrom makes the keys from random, which may be deterministic (fuzz
// seeds need keys that are the same in every run).
func newKeysFrom(t testing.TB, origin string, random io.Reader) *keys {
	t.Helper()
	k := &keys{}
	skey, vkey, err := note.GenerateKey(random, origin)
	if err != nil {
		t.Fatal(err)
	}
	if k.logSigner, err = note.NewSigner(skey); err != nil {
		t.Fatal(err)
	}
	k.logVKey = vkey
	for i := range 2 {
		skey, vkey, err := note.GenerateKey(random, fmt.Sprintf("w%d.example", i+1))
		if err != nil {
			t.Fatal(err)
		}
		s, err := fnote.NewSignerForCosignatureV1(skey)
		if err != nil {
			t.Fatal(err)
		}
		cv, err := fnote.VKeyToCosignatureV1(vkey)
		if err != nil {
			t.Fatal(err)
		}
		k.witnessSigners = append(k.witnessSigners, s)
		k.witnessVKeys = append(k.witnessVKeys, cv)
	}
	return k
}

func (k *keys) policy(t testing.TB, quorum string) *Policy {
	t.Helper()
	text := fmt.Sprintf("log %s http://127.0.0.1:1\nwitness w1 %s http://127.0.0.1:2\nwitness w2 %s http://127.0.0.1:3\ngroup both all w1 w2\ngroup either any w1 w2\nquorum %s\n",
		k.logVKey, k.witnessVKeys[0], k.witnessVKeys[1], quorum)
	p, err := ParsePolicy([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// checkpoint signs a checkpoint of a tree of size leaves "0", "1", ...
func (k *keys) checkpoint(t testing.TB, size uint64, witnesses ...int) []byte {
	t.Helper()
	root := rootOf(size, "")
	text := flog.Checkpoint{Origin: k.logSigner.Name(), Size: size, Hash: root}.Marshal()
	signers := []note.Signer{k.logSigner}
	for _, w := range witnesses {
		signers = append(signers, k.witnessSigners[w])
	}
	b, err := note.Sign(&note.Note{Text: string(text)}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rootOf is the RFC 6962 root of leaves prefix+"0", prefix+"1", ...
func rootOf(size uint64, prefix string) []byte {
	return mth(0, size, prefix)
}

func mth(lo, hi uint64, prefix string) []byte {
	switch {
	case hi == lo:
		return rfc6962.DefaultHasher.EmptyRoot()
	case hi-lo == 1:
		return rfc6962.DefaultHasher.HashLeaf([]byte(fmt.Sprintf("%s%d", prefix, lo)))
	}
	k := uint64(1)
	for k*2 < hi-lo {
		k *= 2
	}
	return rfc6962.DefaultHasher.HashChildren(mth(lo, lo+k, prefix), mth(lo+k, hi, prefix))
}

func TestParsePolicy(t *testing.T) {
	k := newKeys(t, "localhost/cpan-tlog")
	p := k.policy(t, "both")
	if len(p.Logs) != 1 || p.Logs[0].Origin != "localhost/cpan-tlog" || p.Logs[0].URL != "http://127.0.0.1:1" || len(p.Witnesses) != 2 {
		t.Errorf("parsed %+v", p)
	}
	good := fmt.Sprintf("# comment\nlog %s   # trailing comment\n\nquorum none\n", k.logVKey)
	if _, err := ParsePolicy([]byte(good)); err != nil {
		t.Errorf("%q: %v", good, err)
	}
	// A witness URL is optional (Sigsum's policy format): a verifier needs
	// only the key.
	noURL := fmt.Sprintf("log %s\nwitness w1 %s\ngroup g any w1\nquorum g\n", k.logVKey, k.witnessVKeys[0])
	if p, err := ParsePolicy([]byte(noURL)); err != nil || p.Witnesses[0].URL != "" {
		t.Errorf("witness without URL: %v", err)
	}
	w := "witness w1 " + k.witnessVKeys[0] + " http://x\n"
	l := "log " + k.logVKey + " http://x\n"
	for name, c := range map[string]struct{ text, want string }{
		"empty":               {"", "no log"},
		"no quorum":           {l, "no quorum"},
		"unknown keyword":     {l + "quorom none\n", "line 2"},
		"bad log key":         {"log nope http://x\nquorum none\n", "line 1"},
		"log without key":     {"log\nquorum none\n", "line 1"},
		"log bad url":         {"log " + k.logVKey + " ftp://x\nquorum none\n", "not an http"},
		"two logs same":       {l + l + "quorum none\n", "second log"},
		"witness ed25519 key": {l + "witness w1 " + k.logVKey + " http://x\nquorum w1\n", "cosignature/v1"},
		"witness bad url":     {l + "witness w1 " + k.witnessVKeys[0] + " ftp://x\nquorum w1\n", "not an http"},
		"group member twice":  {l + w + "witness w2 " + k.witnessVKeys[1] + " http://y\ngroup g 2 w1 w1 w2\nquorum g\n", "listed twice"},
		"group threshold 0":   {l + w + "group g 0 w1\nquorum g\n", "threshold"},
		"group threshold 01":  {l + w + "group g 01 w1\nquorum g\n", "threshold"},
		"duplicate name":      {l + w + w + "quorum w1\n", "twice"},
		"group unknown":       {l + w + "group g any w1 w9\nquorum g\n", "w9"},
		"group too few":       {l + w + "group g any\nquorum g\n", "line 3"},
		"group threshold":     {l + w + "group g 2 w1\nquorum g\n", "threshold"},
		"quorum unknown":      {l + "quorum g\n", "not defined"},
		"two quorums":         {l + "quorum none\nquorum none\n", "second quorum"},
		"oversized":           {strings.Repeat("#", MaxPolicySize+1), "bytes"},
		// C2SP tlog-policy: "multiple witness lines with the same public
		// key, are not allowed", even under another name and key ID; the
		// error names both lines.
		"witness key twice": {l + w + "witness w1b " + k.witnessVKeys[0] + " http://y\ngroup g 2 w1 w1b\nquorum g\n",
			`policy line 3 ("witness w1b ` + k.witnessVKeys[0] + ` http://y"): witness "w1b" has the same public key as witness "w1" on line 2 ("witness w1 ` + k.witnessVKeys[0] + ` http://x")`},
		"witness key twice, no URLs": {l + "witness a " + k.witnessVKeys[1] + "\n# x\nwitness b " + k.witnessVKeys[1] + "\nquorum a\n", `line 4 ("witness b `},
		"witness key twice, other name and ID": {l + w + "witness w1b " + renamedVKey(t, k.witnessVKeys[0], "elsewhere.example") + " http://y\ngroup g 2 w1 w1b\nquorum g\n",
			`witness "w1b" has the same public key as witness "w1" on line 2`},
		// Tessera's parser (the log's) refuses the format's words as names;
		// C2SP tlog-policy: "none" is predefined.
		"witness named none":          {l + "witness none " + k.witnessVKeys[0] + "\nquorum none\n", `line 2 ("witness none `},
		"group named all":             {l + w + "group all any w1\nquorum all\n", `"all" is a word of the policy format`},
		"log key twice, other origin": {l + "log " + renamedVKey(t, k.logVKey, "other.example/log") + "\nquorum none\n", `log "other.example/log" has the same public key as log "localhost/cpan-tlog" on line 1`},
	} {
		if _, err := ParsePolicy([]byte(c.text)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, c.want)
		}
	}
	// The same key is fine once per kind, and a policy of distinct keys
	// passes CheckDuplicateKeys as it is.
	if err := CheckDuplicateKeys([]byte(l + w + "witness w2 " + k.witnessVKeys[1] + "\nquorum w1\n")); err != nil {
		t.Errorf("distinct keys: %v", err)
	}
}

// renamedVKey is vkey's public key under another key name, with the key
// ID signed-note computes for that name: the same key, another vkey.
func renamedVKey(t testing.TB, vkey, name string) string {
	t.Helper()
	parts := strings.SplitN(vkey, "+", 3)
	key, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(append([]byte(name+"\n"), key...))
	return fmt.Sprintf("%s+%x+%s", name, h[:4], parts[2])
}

func FuzzParsePolicy(f *testing.F) {
	k := newKeys(f, "localhost/cpan-tlog")
	f.Add(fmt.Sprintf("log %s http://127.0.0.1:1\nwitness w1 %s http://x\ngroup g any w1\nquorum g\n", k.logVKey, k.witnessVKeys[0]))
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePolicy([]byte(s))
		if err != nil {
			return
		}
		if len(p.Logs) == 0 || p.QuorumName == "" {
			t.Fatalf("accepted a policy without log or quorum: %q", s)
		}
	})
}

func TestVerifyCheckpoint(t *testing.T) {
	k := newKeys(t, "localhost/cpan-tlog")
	other := newKeys(t, "localhost/cpan-tlog")
	for _, c := range []struct {
		name   string
		quorum string
		cp     []byte
		want   error // nil or ErrNotVerified
		cosig  string
	}{
		{"log only, quorum none", "none", k.checkpoint(t, 5), nil, ""},
		{"both witnesses", "both", k.checkpoint(t, 5, 0, 1), nil, "w1,w2"},
		{"one of two needed", "either", k.checkpoint(t, 5, 1), nil, "w2"},
		{"missing witness", "both", k.checkpoint(t, 5, 0), ErrNotVerified, "w1"},
		{"no witness", "either", k.checkpoint(t, 5), ErrNotVerified, ""},
		{"unknown key, same origin", "none", other.checkpoint(t, 5), ErrNotVerified, ""},
		// A signature that does not verify is bytes anyone can make: a
		// refusal, never evidence against the log (TestVerifyCheckpointNeverAccuses).
		{"log signature corrupted", "none", corruptSig(k.checkpoint(t, 5), 0), ErrNotVerified, ""},
		{"witness signature corrupted", "either", corruptSig(k.checkpoint(t, 5, 0), 1), ErrNotVerified, ""},
		{"other origin", "none", newKeys(t, "example.com/log").checkpoint(t, 5), ErrNotVerified, ""},
		{"garbage", "none", []byte("hello\n"), ErrNotVerified, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cp, err := k.policy(t, c.quorum).VerifyCheckpoint(c.cp)
			switch {
			case c.want == nil && err != nil:
				t.Fatalf("error %v", err)
			case c.want != nil && !errors.Is(err, c.want):
				t.Fatalf("error %v, want %v", err, c.want)
			case c.want == nil && strings.Join(cp.CosignedBy, ",") != c.cosig:
				t.Errorf("cosigned by %v, want %s", cp.CosignedBy, c.cosig)
			}
		})
	}
}

// TestVerifyCheckpointWrongKey: a checkpoint signed by another key of the
// same origin names both keys, not just "no verifiable signatures".
func TestVerifyCheckpointWrongKey(t *testing.T) {
	k, other := newKeys(t, "localhost/cpan-tlog"), newKeys(t, "localhost/cpan-tlog")
	_, err := k.policy(t, "none").VerifyCheckpoint(other.checkpoint(t, 3))
	want := fmt.Sprintf("%s+%08x", other.logSigner.Name(), other.logSigner.KeyHash())
	mine := fmt.Sprintf("%s+%08x", k.logSigner.Name(), k.logSigner.KeyHash())
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), mine) || !strings.Contains(err.Error(), "log.vkey") {
		t.Errorf("error %v does not name both keys and what to check", err)
	}
}

// FuzzVerifyCheckpoint checks the client's checkpoint parsing: whatever
// the bytes, the answer is a verified checkpoint whose note the log's key
// and the quorum really signed, or ErrNotVerified, never a security error
// (one checkpoint alone is no evidence of a fork), another error or a
// panic. The keys are fixed, so the seeds in
// testdata/fuzz/FuzzVerifyCheckpoint carry valid signatures.
func FuzzVerifyCheckpoint(f *testing.F) {
	k := newKeysFrom(f, "localhost/cpan-tlog", bytes.NewReader(bytes.Repeat([]byte("cpan-tlog fuzz "), 16)))
	p := k.policy(f, "either")
	f.Add(k.checkpoint(f, 5, 0))
	f.Add(k.checkpoint(f, 5, 0, 1))
	f.Add(k.checkpoint(f, 5))
	f.Add(corruptSig(k.checkpoint(f, 7, 1), 1))
	f.Fuzz(func(t *testing.T, raw []byte) {
		cp, err := p.VerifyCheckpoint(raw)
		if err != nil {
			if !errors.Is(err, ErrNotVerified) || errors.Is(err, ErrSecurity) {
				t.Fatalf("error is not (only) not-verified: %v", err)
			}
			return
		}
		if _, err := note.Open(raw, note.VerifierList(p.Logs[0].Verifier)); err != nil {
			t.Fatalf("accepted a note the log did not sign: %v", err)
		}
		if len(cp.CosignedBy) == 0 || !p.Quorum.Satisfied(raw) {
			t.Fatalf("accepted a checkpoint without the quorum: %q", raw)
		}
		if !bytes.HasPrefix(raw, cp.Marshal()) {
			t.Fatalf("checkpoint %+v is not the note's text %q", cp.Checkpoint, raw)
		}
	})
}

// corruptSig flips a bit in the i-th signature line's signature.
func corruptSig(cp []byte, i int) []byte {
	text, sigs, _ := strings.Cut(string(cp), "\n\n")
	lines := strings.Split(sigs, "\n")
	l := []byte(lines[i])
	// Swap one base64 character for another, so the line stays well formed.
	if l[len(l)-5] == 'A' {
		l[len(l)-5] = 'B'
	} else {
		l[len(l)-5] = 'A'
	}
	lines[i] = string(l)
	return []byte(text + "\n\n" + strings.Join(lines, "\n"))
}

func TestStateAdvance(t *testing.T) {
	k := newKeys(t, "localhost/cpan-tlog")
	p := k.policy(t, "none")
	dir := t.TempDir()
	st, err := OpenState(dir)
	if err != nil {
		t.Fatal(err)
	}
	cp := func(size uint64, prefix string) *Checkpoint {
		text := flog.Checkpoint{Origin: "localhost/cpan-tlog", Size: size, Hash: rootOf(size, prefix)}.Marshal()
		raw, _ := note.Sign(&note.Note{Text: string(text)}, k.logSigner)
		c, err := p.VerifyCheckpoint(raw)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	var proofs atomic.Int32
	prover := func(prefix string) ConsistencyProver {
		return func(_ context.Context, old, new uint64) ([][]byte, error) {
			proofs.Add(1)
			return consistencyProof(old, new, prefix), nil
		}
	}
	ctx := context.Background()
	if err := st.Advance(ctx, cp(5, ""), prover("")); err != nil {
		t.Fatal(err)
	}
	if err := st.Advance(ctx, cp(9, ""), prover("")); err != nil {
		t.Fatalf("consistent growth refused: %v", err)
	}
	if proofs.Load() != 1 {
		t.Errorf("%d consistency proofs fetched, want 1", proofs.Load())
	}
	if err := st.Advance(ctx, cp(9, ""), prover("")); err != nil {
		t.Errorf("same checkpoint again: %v", err)
	}
	for name, c := range map[string]struct {
		cp     *Checkpoint
		prover ConsistencyProver
		want   string
	}{
		"rollback":             {cp(7, ""), prover(""), "rollback"},
		"same size other root": {cp(9, "x"), prover("x"), "fork"},
		"inconsistent growth":  {cp(12, "x"), prover("x"), "fork"},
	} {
		err := st.Advance(ctx, c.cp, c.prover)
		var se *SecurityError
		if !errors.As(err, &se) || !strings.Contains(se.Reason, c.want) {
			t.Errorf("%s: %v, want a SecurityError about %s", name, err, c.want)
			continue
		}
		if !strings.Contains(err.Error(), "trusted until now") || se.EvidenceDir == "" {
			t.Errorf("%s: error lacks evidence: %v", name, err)
		}
		for _, f := range []string{"trusted.checkpoint", "offered.checkpoint"} {
			if b, err := os.ReadFile(filepath.Join(se.EvidenceDir, f)); err != nil || len(b) == 0 {
				t.Errorf("%s: evidence %s: %v", name, f, err)
			}
		}
	}
	// None of them moved the state.
	raw, _ := st.Trusted("localhost/cpan-tlog")
	if got, _ := parseTrusted(raw); got.Size != 9 {
		t.Errorf("trusted size %d after refused checkpoints, want 9", got.Size)
	}
	// Offline checks: older and newer are fine, a fork is not.
	if err := st.Check(cp(3, "x")); err != nil {
		t.Errorf("older checkpoint offline: %v", err)
	}
	if err := st.Check(cp(30, "x")); err != nil {
		t.Errorf("newer checkpoint offline: %v", err)
	}
	if err := st.Check(cp(9, "x")); !errors.Is(err, ErrSecurity) {
		t.Errorf("forked checkpoint offline: %v", err)
	}
}

// consistencyProof computes an RFC 6962 consistency proof for the trees of
// leaves prefix+"0", ... (RFC 6962 section 2.1.2, SUBPROOF).
func consistencyProof(m, n uint64, prefix string) [][]byte {
	var sub func(m, lo, hi uint64, b bool) [][]byte
	sub = func(m, lo, hi uint64, b bool) [][]byte {
		if m == hi-lo {
			if b {
				return nil
			}
			return [][]byte{mth(lo, hi, prefix)}
		}
		k := uint64(1)
		for k*2 < hi-lo {
			k *= 2
		}
		if m <= k {
			return append(sub(m, lo, lo+k, b), mth(lo+k, hi, prefix))
		}
		return append(sub(m-k, lo+k, hi, false), mth(lo, lo+k, prefix))
	}
	return sub(m, 0, n, true)
}

func TestFetcherRetriesAndBounds(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		switch r.URL.Path {
		case "/checkpoint":
			if n < 3 {
				http.Error(w, "try later", 503)
				return
			}
			w.Write([]byte("ok\n"))
		case "/tile/0/000":
			w.Write(make([]byte, maxTileSize+1))
		case "/tile/0/001":
			w.Write(make([]byte, maxTileSize))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	cache := t.TempDir()
	f, err := NewFetcher(srv.URL, cache)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if b, err := f.ReadCheckpoint(ctx); err != nil || string(b) != "ok\n" || calls.Load() != 3 {
		t.Errorf("checkpoint after two 503s: %q, %v, %d calls", b, err, calls.Load())
	}
	if _, err := f.ReadTile(ctx, 0, 0, 0); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Errorf("oversized tile: %v", err)
	}
	calls.Store(0)
	if _, err := f.ReadTile(ctx, 0, 2, 0); !errors.Is(err, ErrNotFound) || calls.Load() != 1 {
		t.Errorf("missing tile: %v after %d calls, want ErrNotFound without retries", err, calls.Load())
	}
	for range 2 {
		if b, err := f.ReadTile(ctx, 0, 1, 0); err != nil || len(b) != maxTileSize {
			t.Fatalf("full tile: %d bytes, %v", len(b), err)
		}
	}
	calls.Store(0)
	if _, err := f.ReadTile(ctx, 0, 1, 0); err != nil || calls.Load() != 0 {
		t.Errorf("a full tile was fetched again (%d calls): the cache does not work", calls.Load())
	}
	// Partial tiles are never cached.
	if _, err := f.ReadTile(ctx, 0, 1, 5); err != nil || calls.Load() != 1 {
		t.Errorf("partial tile falls back to the full one: %v, %d calls", err, calls.Load())
	}
}

// TestImports holds the client to DESIGN.md: nothing from the log but the
// entry codec, nothing from witness/ or monitor/, no Tessera storage driver.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case strings.HasPrefix(dep, "github.com/CPAN-Security/cpan-tlog/log") && dep != "github.com/CPAN-Security/cpan-tlog/log/entry",
			strings.HasPrefix(dep, "github.com/CPAN-Security/cpan-tlog/witness"),
			strings.HasPrefix(dep, "github.com/CPAN-Security/cpan-tlog/monitor"),
			strings.HasPrefix(dep, "github.com/transparency-dev/tessera/storage"):
			t.Errorf("client depends on %s", dep)
		}
	}
}
