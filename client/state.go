package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/CPAN-Security/cpan-tlog/internal/atomicfile"
)

// State remembers, per log origin, the newest checkpoint this user has
// trusted. A newer checkpoint replaces it only once proven consistent with
// it; an older one, or one of the same size with another root, is a
// SecurityError. This is what keeps a log from showing a user one history
// today and another tomorrow.
//
// Layout: DIR/<origin, path-escaped>/checkpoint, written atomically, with a
// lock file so that concurrent cpantlog runs take turns, and evidence/
// holding every conflicting pair ever seen.
type State struct {
	dir string
}

// DefaultStateDir is $XDG_STATE_HOME/cpantlog, or ~/.local/state/cpantlog.
func DefaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "cpantlog")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "cpantlog-state")
	}
	return filepath.Join(home, ".local", "state", "cpantlog")
}

// OpenState opens (creating) the state directory.
func OpenState(dir string) (*State, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	return &State{dir: dir}, nil
}

func (s *State) logDir(origin string) string { return filepath.Join(s.dir, url.PathEscape(origin)) }

// Trusted returns the checkpoint trusted for origin, or nil.
func (s *State) Trusted(origin string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(s.logDir(origin), "checkpoint"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// ConsistencyProver returns the proof that the tree of size old is a prefix
// of the tree of size new.
type ConsistencyProver func(ctx context.Context, old, new uint64) ([][]byte, error)

// Advance makes offered the trusted checkpoint of its log if it is the first
// one seen or provably extends the trusted one. It returns a SecurityError,
// with both checkpoints saved as evidence, on a rollback or a fork.
func (s *State) Advance(ctx context.Context, offered *Checkpoint, prove ConsistencyProver) error {
	unlock, err := s.lock(offered.Origin)
	if err != nil {
		return err
	}
	defer unlock()
	raw, err := s.Trusted(offered.Origin)
	if err != nil {
		return err
	}
	if raw == nil {
		return s.save(offered)
	}
	old, err := parseTrusted(raw)
	if err != nil {
		return fmt.Errorf("trusted state for %s is damaged (%v); delete %s only if you know why", offered.Origin, err, s.logDir(offered.Origin))
	}
	switch {
	case offered.Size < old.Size:
		return s.conflict(offered, raw, fmt.Sprintf("rollback: the log now shows a tree of size %d, but a checkpoint of size %d was trusted before", offered.Size, old.Size))
	case offered.Size == old.Size:
		if !bytes.Equal(offered.Hash, old.Hash) {
			return s.conflict(offered, raw, fmt.Sprintf("fork: two checkpoints of size %d with different roots", old.Size))
		}
		return nil
	}
	if old.Size > 0 {
		p, err := prove(ctx, old.Size, offered.Size)
		if err != nil {
			return fmt.Errorf("fetch consistency proof %d → %d: %w", old.Size, offered.Size, err)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old.Size, offered.Size, p, old.Hash, offered.Hash); err != nil {
			return s.conflict(offered, raw, fmt.Sprintf("fork: the checkpoint of size %d is not consistent with the trusted one of size %d (%v)", offered.Size, old.Size, err))
		}
	}
	return s.save(offered)
}

// Check compares a checkpoint that is not claimed to be the latest (one in
// a saved tlog-proof, say) with the trusted state: only a different root
// for the trusted size is a fork. Nothing is written unless a fork is found.
func (s *State) Check(offered *Checkpoint) error {
	raw, err := s.Trusted(offered.Origin)
	if err != nil || raw == nil {
		return err
	}
	old, err := parseTrusted(raw)
	if err != nil {
		return fmt.Errorf("trusted state for %s is damaged: %v", offered.Origin, err)
	}
	if offered.Size == old.Size && !bytes.Equal(offered.Hash, old.Hash) {
		return s.conflict(offered, raw, fmt.Sprintf("fork: two checkpoints of size %d with different roots", old.Size))
	}
	return nil
}

func parseTrusted(raw []byte) (*flog.Checkpoint, error) {
	text, _, ok := bytes.Cut(raw, []byte("\n\n"))
	if !ok {
		return nil, errors.New("not a signed note")
	}
	var c flog.Checkpoint
	if _, err := c.Unmarshal(append(text, '\n')); err != nil {
		return nil, err
	}
	return &c, nil
}

func (s *State) conflict(offered *Checkpoint, trusted []byte, reason string) error {
	e := &SecurityError{Reason: reason, Trusted: trusted, Offered: offered.Raw}
	dir := filepath.Join(s.logDir(offered.Origin), "evidence", time.Now().UTC().Format("20060102T150405.000000000Z"))
	if err := os.MkdirAll(dir, 0o700); err == nil {
		os.WriteFile(filepath.Join(dir, "trusted.checkpoint"), trusted, 0o600)
		os.WriteFile(filepath.Join(dir, "offered.checkpoint"), offered.Raw, 0o600)
		os.WriteFile(filepath.Join(dir, "reason.txt"), []byte(reason+"\n"), 0o600)
		e.EvidenceDir = dir
	}
	return e
}

// save writes the trusted checkpoint atomically and durably.
func (s *State) save(c *Checkpoint) error {
	dir := s.logDir(c.Origin)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, "checkpoint"), c.Raw, 0o600)
}

func (s *State) lock(origin string) (func(), error) {
	dir := s.logDir(origin)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}
