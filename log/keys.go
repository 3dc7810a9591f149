package log

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/internal/atomicfile"
)

// Names of the files in a data directory.
const (
	KeyFile   = "log.key"      // the note signing key, 0600
	VKeyFile  = "log.vkey"     // the note verifier key, one line
	TokenFile = "ingest.token" // the bearer tokens for POST /add, 0600 (tokens.go)
	TreeDir   = "tree"         // Tessera's POSIX tree
	IndexFile = "index.db"     // the lookup index
)

// DefaultOrigin is the checkpoint origin of a log started without --origin.
const DefaultOrigin = "localhost/cpan-tlog"

// Keygen creates dir/log.key and dir/log.vkey for origin. It refuses to
// overwrite an existing key: losing a log's key ends the log. It refuses
// an origin that is not a valid signed-note key name before it writes
// anything (the directory included).
func Keygen(dir, origin string) (vkey string, err error) {
	if err := CheckOrigin(origin); err != nil {
		return "", err
	}
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
	if err := atomicfile.WriteNew(filepath.Join(dir, KeyFile), []byte(skey+"\n"), 0o600); err != nil {
		return "", err
	}
	if err := atomicfile.WriteNew(filepath.Join(dir, VKeyFile), []byte(vkey+"\n"), 0o644); err != nil {
		return "", err
	}
	return vkey, nil
}

// CheckOrigin says why origin cannot name a log, or nil: it is the
// checkpoints' first line and the name of the log's note key, so C2SP
// signed-note's rules for key names apply (client.CheckKeyName).
func CheckOrigin(origin string) error {
	if err := client.CheckKeyName(origin); err != nil {
		return fmt.Errorf("origin: %w", err)
	}
	return nil
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

// publishedCheckpoint reads the latest checkpoint the log's storage holds,
// on POSIX or S3 alike (nil when none was published yet), and says where
// the tree is, for messages.
func publishedCheckpoint(ctx context.Context, cfg Config) ([]byte, string, error) {
	where := filepath.Join(cfg.DataDir, TreeDir)
	if cfg.Storage == StorageS3 {
		where = fmt.Sprintf("S3 bucket %s", cfg.S3.Bucket)
		if cfg.S3.Endpoint != "" {
			where += " on " + cfg.S3.Endpoint
		}
	}
	r, err := newStaticReader(ctx, cfg, nil)
	if err != nil {
		return nil, where, err
	}
	raw, err := r.ReadCheckpoint(ctx)
	switch {
	case notFound(err):
		return nil, where, nil
	case err != nil:
		return nil, where, fmt.Errorf("read the latest checkpoint in %s, to check it is this log's: %w", where, err)
	}
	return raw, where, nil
}

// checkIdentity refuses to serve a tree whose latest checkpoint does not
// verify with the log's key vkey: the data directory holds another log's
// key pair (or the storage another log's tree).
func checkIdentity(published []byte, where, vkey string, cfg Config) error {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return err
	}
	if _, err := note.Open(published, note.VerifierList(v)); err == nil {
		return nil
	}
	return fmt.Errorf("the latest checkpoint in %s is signed by %s, not by this log's key %s+%08x (%s): the data directory holds another log's key. A log keeps one key for life: restore the %s and %s of the log that signed it, or start a new log in another --data directory%s; nothing was changed",
		where, checkpointSigners(published), v.Name(), v.KeyHash(), filepath.Join(cfg.DataDir, KeyFile), KeyFile, VKeyFile, newLogElsewhere(cfg))
}

// newLogElsewhere is what else a new log needs on cfg's storage.
func newLogElsewhere(cfg Config) string {
	if cfg.Storage == StorageS3 {
		return " with a new S3 bucket and database"
	}
	return ""
}

// checkpointSigners names the keys (name+key ID) whose signature lines a
// checkpoint carries, for messages; none of them is verified.
func checkpointSigners(cp []byte) string {
	_, err := note.Open(cp, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) || len(unverified.Note.UnverifiedSigs) == 0 {
		return "no key this log can name (it is not a signed note)"
	}
	var by []string
	for _, s := range unverified.Note.UnverifiedSigs {
		by = append(by, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
	}
	return strings.Join(by, ", ")
}
