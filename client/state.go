package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/internal/atomicfile"
)

// State remembers, per log key (the origin and the key the policy names
// for the log), the newest checkpoint this user has trusted. A newer
// checkpoint replaces it only once proven consistent with it; an older
// one, or one of the same size with another root, is a SecurityError.
// This is what keeps a log from showing a user one history today and
// another tomorrow.
//
// Another key for a trusted origin is another log (a new local log with
// the default origin, a log whose operator replaced its key): its
// checkpoints are never compared with the old log's, which would make a
// "rollback" of two unrelated trees. Until the user says the old state
// may go (by moving it aside), it is reported as AnotherLogError, exit 2,
// never as a security error.
//
// Layout: DIR/<OriginDirName(origin)>/key-<key ID, 8 hex digits>/checkpoint,
// written atomically; DIR/<origin>/evidence/ holds every conflicting pair
// ever seen, and DIR/<origin>/lock makes concurrent cpantlog runs take
// turns. The layout before keys, DIR/<origin>/checkpoint, is still
// read: such a checkpoint moves under its key the first time a checkpoint
// of that key is checked, if that key signed it; if it did not, it is
// another log's.
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

// logDir holds everything kept for an origin (the lock, the witness view
// cache, one directory per log key).
func (s *State) logDir(origin string) string { return filepath.Join(s.dir, OriginDirName(origin)) }

// maxOriginDirName bounds the directory name of an origin: file systems
// allow 255 bytes in a name.
const maxOriginDirName = 200

// OriginDirName is the name of an origin's directory in the state
// directory, the same in every cpan-tlog client, Go and Perl
// (CPAN::TLog::Verify::origin_dir_name; testdata/vectors-statepath.txt
// holds both to it). An origin is a signed-note key name: any UTF-8
// without spaces or '+', '/' included, so it is escaped to one path
// element that names nothing else: url.PathEscape (bytes other than
// A-Z a-z 0-9 - _ . ~ $ & + : = @ become %XX: '/', '\\', '%' and NUL
// included), "." and ".." spelled %2E, and a name longer than 200 bytes
// replaced by "%sha256-" and the origin's SHA-256 in hex. A '%' followed
// by anything but two hex digits never comes out of url.PathEscape, so
// the long form names no other origin.
func OriginDirName(origin string) string {
	name := url.PathEscape(origin)
	switch {
	case name == "": // no origin is empty; never the state directory itself
		name = "%"
	case name == "." || name == "..":
		name = strings.Repeat("%2E", len(name))
	case len(name) > maxOriginDirName:
		sum := sha256.Sum256([]byte(origin))
		name = "%sha256-" + hex.EncodeToString(sum[:])
	}
	return name
}

// keyDir holds the state of one log key of origin.
func (s *State) keyDir(origin string, v note.Verifier) string {
	return filepath.Join(s.logDir(origin), fmt.Sprintf("key-%08x", v.KeyHash()))
}

// dirOf is where c's state goes: its key's directory, or the origin's
// for a checkpoint that does not say which key signed it.
func (s *State) dirOf(c *Checkpoint) string {
	if v, err := note.NewVerifier(c.LogVKey); err == nil {
		return s.keyDir(c.Origin, v)
	}
	return s.logDir(c.Origin)
}

// Trusted returns the checkpoint trusted for origin under the key trusted
// last, or nil. TrustedFor reads one log key's.
func (s *State) Trusted(origin string) ([]byte, error) {
	keyed, _ := filepath.Glob(filepath.Join(s.logDir(origin), "key-????????", "checkpoint"))
	var newest string
	var at time.Time
	for _, f := range keyed {
		if fi, err := os.Stat(f); err == nil && (newest == "" || fi.ModTime().After(at)) {
			newest, at = f, fi.ModTime()
		}
	}
	if newest == "" {
		newest = filepath.Join(s.logDir(origin), "checkpoint") // before keys
	}
	b, err := os.ReadFile(newest)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// TrustedFor returns the checkpoint trusted for the log key vkey of
// origin, or nil; a checkpoint kept by origin only (before keys) counts
// when vkey signed it. A state of origin under another key is an
// AnotherLogError.
func (s *State) TrustedFor(origin, vkey string) ([]byte, error) {
	return s.trustedFor(origin, vkey, false)
}

// trustedFor is TrustedFor; with migrate (the origin's lock held), a
// checkpoint kept by origin only that vkey signed moves under its key.
func (s *State) trustedFor(origin, vkey string, migrate bool) ([]byte, error) {
	if vkey == "" {
		return s.Trusted(origin)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("log key %q: %w", vkey, err)
	}
	mine := filepath.Join(s.keyDir(origin, v), "checkpoint")
	b, err := os.ReadFile(mine)
	switch {
	case err == nil:
		if !signedBy(b, v) {
			// Another key with the same name and key ID.
			return nil, anotherLog(origin, vkey, b, mine)
		}
		return b, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	legacy := filepath.Join(s.logDir(origin), "checkpoint")
	b, err = os.ReadFile(legacy)
	switch {
	case err == nil:
		if !signedBy(b, v) {
			return nil, anotherLog(origin, vkey, b, legacy)
		}
		if migrate {
			if err := os.MkdirAll(filepath.Dir(mine), 0o700); err != nil {
				return nil, err
			}
			if err := atomicfile.Write(mine, b, 0o600); err != nil {
				return nil, err
			}
			os.Remove(legacy) // kept under the key now; read no more
		}
		return b, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	others, _ := filepath.Glob(filepath.Join(s.logDir(origin), "key-????????", "checkpoint"))
	for _, f := range others {
		if b, err := os.ReadFile(f); err == nil {
			return nil, anotherLog(origin, vkey, b, filepath.Dir(f))
		}
	}
	return nil, nil
}

// signedBy reports whether v's signature on the note raw verifies.
func signedBy(raw []byte, v note.Verifier) bool {
	_, err := note.Open(raw, note.VerifierList(v))
	return err == nil
}

// AnotherLogError is a trusted state kept for the same origin as the
// policy's log but under another key: another log, or the same log with a
// new key. Its checkpoints are not compared with the new key's, so this is
// no evidence of anything (exit 2, "could not check"), and it is not a
// rollback: the user decides whether the old state may go.
type AnotherLogError struct {
	Origin string
	// Key is the policy's log key; TrustedKeys name (name+key ID) the
	// keys whose signature lines the state kept carries.
	Key         string
	TrustedKeys []string
	// Path is the state kept for the other key: move it aside to trust
	// the policy's key from now on.
	Path string
}

func (e *AnotherLogError) Error() string {
	return fmt.Sprintf("another log with the same origin: the checkpoints of %s trusted on this machine until now were signed by %s (kept in %s), but the policy names the key %s. "+
		"This is not a rollback, and nothing was compared or verified. If you replaced the log on purpose (a new local log, or a key change its operator announced), move the old state aside and run again: mv %s %s.old. "+
		"If not, check the policy's log line against the key the log's operator publishes",
		e.Origin, listOrNone(e.TrustedKeys), e.Path, e.Key, e.Path, e.Path)
}

// Unwrap makes it a "could not check" (Unchecked, exit 2).
func (e *AnotherLogError) Unwrap() error {
	return &CouldNotCheckError{Reason: "another log with the same origin " + e.Origin}
}

func anotherLog(origin, vkey string, trusted []byte, path string) error {
	var by []string
	_, err := note.Open(trusted, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if errors.As(err, &unverified) {
		for _, s := range unverified.Note.UnverifiedSigs {
			if s.Name == origin {
				by = append(by, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
			}
		}
	}
	name, rest, _ := strings.Cut(vkey, "+")
	id, _, _ := strings.Cut(rest, "+")
	return &AnotherLogError{Origin: origin, Key: name + "+" + id, TrustedKeys: by, Path: path}
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
	raw, err := s.trustedFor(offered.Origin, offered.LogVKey, true)
	if err != nil {
		return err
	}
	if raw == nil {
		return s.save(offered)
	}
	old, err := parseTrusted(raw)
	if err != nil {
		return fmt.Errorf("trusted state for %s is damaged (%v); delete %s only if you know why", offered.Origin, err, s.dirOf(offered))
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
	raw, err := s.trustedFor(offered.Origin, offered.LogVKey, false)
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
	dir := s.dirOf(c)
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
