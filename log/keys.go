package log

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Names of the files in a data directory.
const (
	KeyFile   = "log.key"      // the note signing key, 0600
	VKeyFile  = "log.vkey"     // the note verifier key, one line
	TokenFile = "ingest.token" // the bearer token for POST /add, 0600
	TreeDir   = "tree"         // Tessera's POSIX tree
	IndexFile = "index.db"     // the lookup index
)

// DefaultOrigin is the checkpoint origin of a log started without --origin.
const DefaultOrigin = "localhost/cpan-tlog"

// Keygen creates dir/log.key and dir/log.vkey for origin. It refuses to
// overwrite an existing key: losing a log's key ends the log.
func Keygen(dir, origin string) (vkey string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(dir, KeyFile)); err == nil {
		return "", fmt.Errorf("%s already exists; a log keeps its key for life (move it away first if you really mean to start a new log)", filepath.Join(dir, KeyFile))
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return "", fmt.Errorf("generate key for origin %q: %w", origin, err)
	}
	if err := writeNew(filepath.Join(dir, KeyFile), skey+"\n", 0o600); err != nil {
		return "", err
	}
	if err := writeNew(filepath.Join(dir, VKeyFile), vkey+"\n", 0o644); err != nil {
		return "", err
	}
	return vkey, nil
}

// loadOrCreateKey returns the log's signer and verifier key, creating them
// on first start. origin, when not empty, must match an existing key's name.
func loadOrCreateKey(dir, origin string) (note.Signer, string, error) {
	b, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if errors.Is(err, fs.ErrNotExist) {
		if origin == "" {
			origin = DefaultOrigin
		}
		if _, err := Keygen(dir, origin); err != nil {
			return nil, "", err
		}
		b, err = os.ReadFile(filepath.Join(dir, KeyFile))
	}
	if err != nil {
		return nil, "", err
	}
	s, err := note.NewSigner(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", filepath.Join(dir, KeyFile), err)
	}
	if origin != "" && s.Name() != origin {
		return nil, "", fmt.Errorf("--origin %q does not match the key in %s, whose origin is %q", origin, filepath.Join(dir, KeyFile), s.Name())
	}
	v, err := os.ReadFile(filepath.Join(dir, VKeyFile))
	if err != nil {
		return nil, "", fmt.Errorf("%w (it is written with %s; restore it from a backup)", err, KeyFile)
	}
	vkey := strings.TrimSpace(string(v))
	if verifier, err := note.NewVerifier(vkey); err != nil || verifier.KeyHash() != s.KeyHash() || verifier.Name() != s.Name() {
		return nil, "", fmt.Errorf("%s does not hold the verifier key of %s", filepath.Join(dir, VKeyFile), filepath.Join(dir, KeyFile))
	}
	return s, vkey, nil
}

// loadOrCreateToken returns the ingest bearer token, creating it on first start.
func loadOrCreateToken(dir string) (string, error) {
	p := filepath.Join(dir, TokenFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		r := make([]byte, 32)
		if _, err := rand.Read(r); err != nil {
			return "", err
		}
		if err := writeNew(p, hex.EncodeToString(r)+"\n", 0o600); err != nil {
			return "", err
		}
		b, err = os.ReadFile(p)
	}
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 {
		return "", fmt.Errorf("%s holds a token of %d characters; use at least 16 (or delete it to have one generated)", p, len(tok))
	}
	return tok, nil
}

// writeNew writes a file that must not exist yet, durably: a crash leaves
// either no file or the whole file.
func writeNew(p, content string, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-"+filepath.Base(p))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// Link fails if p exists, so two racing first starts cannot both win.
	if err := os.Link(tmp.Name(), p); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(p))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
