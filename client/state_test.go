package client

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	flog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// verified makes a checkpoint of size leaves prefix+"0", ... signed by k's
// log key, verified against a policy naming that key.
func (k *keys) verified(t *testing.T, size uint64, prefix string) *Checkpoint {
	t.Helper()
	text := flog.Checkpoint{Origin: k.logSigner.Name(), Size: size, Hash: rootOf(size, prefix)}.Marshal()
	raw, err := note.Sign(&note.Note{Text: string(text)}, k.logSigner)
	if err != nil {
		t.Fatal(err)
	}
	c, err := k.policy(t, "none").VerifyCheckpoint(raw)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func proverOf(prefix string) ConsistencyProver {
	return func(_ context.Context, old, new uint64) ([][]byte, error) {
		return consistencyProof(old, new, prefix), nil
	}
}

// wantAnotherLog checks err is the "another log with the same origin"
// report: exit 2 (could not check), never a security error, saying which
// key signed the state kept, where it is and what to do.
func wantAnotherLog(t *testing.T, what string, err error, trustedKey, path string) {
	t.Helper()
	var ae *AnotherLogError
	switch {
	case !errors.As(err, &ae):
		t.Fatalf("%s: %v, want an AnotherLogError", what, err)
	case errors.Is(err, ErrSecurity) || ExitCode(err) != ExitUsage || !Unchecked(err):
		t.Errorf("%s: exit %d (security %v, unchecked %v), want 2, could not check", what, ExitCode(err), errors.Is(err, ErrSecurity), Unchecked(err))
	case !strings.Contains(err.Error(), "another log with the same origin") || !strings.Contains(err.Error(), "signed by "+trustedKey) ||
		ae.Path != path || !strings.Contains(err.Error(), "mv "+path+" "+path+".old") || strings.Contains(err.Error(), "rollback:"):
		t.Errorf("%s: %v\nwant it to name %s and %s, and say what to do", what, err, trustedKey, path)
	}
}

func keyID(k *keys) string { return fmt.Sprintf("%s+%08x", k.logSigner.Name(), k.logSigner.KeyHash()) }

// TestStatePerLogKey: the trusted state is kept per log key. A new log
// with the same origin (a new local log with the default one) is "another
// log with the same origin" with what to do, exit 2, and not a rollback
// of the old log's tree; once the old state is moved aside, the new log
// is trusted and protected like the first; the old log's state is never
// touched by the new one's checkpoints.
func TestStatePerLogKey(t *testing.T) {
	a, b := newKeys(t, "localhost/cpan-tlog"), newKeys(t, "localhost/cpan-tlog")
	dir := t.TempDir()
	st, err := OpenState(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.Advance(ctx, a.verified(t, 9, ""), proverOf("")); err != nil {
		t.Fatal(err)
	}
	aDir := filepath.Join(dir, "localhost%2Fcpan-tlog", fmt.Sprintf("key-%08x", a.logSigner.KeyHash()))
	aState, err := os.ReadFile(filepath.Join(aDir, "checkpoint"))
	if err != nil {
		t.Fatalf("state of key A is not kept under its key: %v", err)
	}
	// A smaller tree of another key: no rollback, another log.
	wantAnotherLog(t, "Advance with key B", st.Advance(ctx, b.verified(t, 5, "b"), proverOf("b")), keyID(a), aDir)
	wantAnotherLog(t, "Check with key B", st.Check(b.verified(t, 9, "b")), keyID(a), aDir)
	if got, _ := os.ReadFile(filepath.Join(aDir, "checkpoint")); string(got) != string(aState) {
		t.Error("key B's checkpoint changed key A's state")
	}
	if ev, _ := filepath.Glob(filepath.Join(dir, "*", "evidence")); len(ev) != 0 {
		t.Errorf("evidence saved for another log: %v", ev)
	}
	// What the message says to do.
	if err := os.Rename(aDir, aDir+".old"); err != nil {
		t.Fatal(err)
	}
	if err := st.Advance(ctx, b.verified(t, 5, "b"), proverOf("b")); err != nil {
		t.Fatalf("key B after the old state was moved aside: %v", err)
	}
	// Key B's state protects as key A's did.
	var se *SecurityError
	if err := st.Advance(ctx, b.verified(t, 4, "b"), proverOf("b")); !errors.As(err, &se) || !strings.Contains(se.Reason, "rollback") {
		t.Errorf("a rollback of key B's log: %v, want a SecurityError", err)
	}
	if raw, err := st.TrustedFor("localhost/cpan-tlog", b.logVKey); err != nil || raw == nil {
		t.Errorf("TrustedFor key B: %q %v", raw, err)
	}
	if raw, _ := st.Trusted("localhost/cpan-tlog"); raw == nil || !strings.Contains(string(raw), "\n5\n") {
		t.Errorf("Trusted: %q, want key B's checkpoint of size 5", raw)
	}
}

// TestStateOldLayout: a state kept by origin only (before keys) is read:
// signed by the policy's key, it is that key's state (a rollback from it
// is still a security error) and moves under the key; signed by another
// key, it is another log's, and stays where it is.
func TestStateOldLayout(t *testing.T) {
	a, b := newKeys(t, "localhost/cpan-tlog"), newKeys(t, "localhost/cpan-tlog")
	ctx := context.Background()
	legacyState := func(t *testing.T) (*State, string, string) {
		dir := t.TempDir()
		st, err := OpenState(dir)
		if err != nil {
			t.Fatal(err)
		}
		legacy := filepath.Join(dir, "localhost%2Fcpan-tlog", "checkpoint")
		os.MkdirAll(filepath.Dir(legacy), 0o700)
		if err := os.WriteFile(legacy, a.verified(t, 9, "").Raw, 0o600); err != nil {
			t.Fatal(err)
		}
		return st, dir, legacy
	}

	st, dir, legacy := legacyState(t)
	var se *SecurityError
	if err := st.Check(a.verified(t, 9, "x")); !errors.As(err, &se) {
		t.Errorf("offline fork against the old layout's state: %v, want a SecurityError", err)
	}
	if _, err := os.Stat(legacy); err != nil {
		t.Errorf("Check moved the old state (%v); only Advance, under the lock, does", err)
	}
	if err := st.Advance(ctx, a.verified(t, 7, ""), proverOf("")); !errors.As(err, &se) || !strings.Contains(se.Reason, "rollback") {
		t.Errorf("rollback from the old layout's state: %v, want a SecurityError", err)
	}
	if err := st.Advance(ctx, a.verified(t, 12, ""), proverOf("")); err != nil {
		t.Fatalf("consistent growth from the old layout's state: %v", err)
	}
	if _, err := os.Stat(legacy); !os.IsNotExist(err) {
		t.Errorf("the old layout's checkpoint is still there (%v)", err)
	}
	keyed, _ := os.ReadFile(filepath.Join(dir, "localhost%2Fcpan-tlog", fmt.Sprintf("key-%08x", a.logSigner.KeyHash()), "checkpoint"))
	if !strings.Contains(string(keyed), "\n12\n") {
		t.Errorf("state under the key: %q, want size 12", keyed)
	}

	st, _, legacy = legacyState(t)
	wantAnotherLog(t, "old layout, another key", st.Advance(ctx, b.verified(t, 5, "b"), proverOf("b")), keyID(a), legacy)
	if _, err := os.Stat(legacy); err != nil {
		t.Errorf("another log's old state was moved or removed (%v)", err)
	}
}

// TestStateKeyIDCollision: a state kept under the policy key's ID that
// this key did not sign (another key with the same name and key ID) is
// another log's too, not a rollback.
func TestStateKeyIDCollision(t *testing.T) {
	a, b := newKeys(t, "localhost/cpan-tlog"), newKeys(t, "localhost/cpan-tlog")
	dir := t.TempDir()
	st, _ := OpenState(dir)
	mine := filepath.Join(dir, "localhost%2Fcpan-tlog", fmt.Sprintf("key-%08x", b.logSigner.KeyHash()))
	os.MkdirAll(mine, 0o700)
	os.WriteFile(filepath.Join(mine, "checkpoint"), a.verified(t, 9, "").Raw, 0o600)
	wantAnotherLog(t, "same key ID, another key", st.Advance(context.Background(), b.verified(t, 5, "b"), proverOf("b")), keyID(a), filepath.Join(mine, "checkpoint"))
}
