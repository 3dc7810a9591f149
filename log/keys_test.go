package log

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// badOrigins break C2SP signed-note's rule for key names (non-empty, no
// Unicode spaces, no '+'), or put a control character in a checkpoint.
var badOrigins = map[string]string{
	"empty":         "",
	"plus":          "a+b/log",
	"space":         "a b/log",
	"tab":           "a\tb/log",
	"no-break":      "a\u00a0b/log",
	"newline":       "a\nb/log",
	"control":       "a\x01b/log",
	"invalid UTF-8": "a\xffb/log",
}

// TestKeygenRefusesBadOrigin: Keygen, and a first start with --origin,
// refuse an origin that is not a valid key name, and write nothing, not
// even the data directory (note.GenerateKey makes a key for any name,
// which serve then could not load).
func TestKeygenRefusesBadOrigin(t *testing.T) {
	for name, origin := range badOrigins {
		dir := filepath.Join(t.TempDir(), "data")
		if _, err := Keygen(dir, origin); err == nil || !strings.Contains(err.Error(), "signed-note") {
			t.Errorf("%s: Keygen(%q): %v, want a refusal citing signed-note", name, origin, err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s: Keygen wrote %s (%v)", name, dir, err)
		}
		if origin == "" {
			continue // Open's default origin
		}
		if _, err := Open(context.Background(), Config{DataDir: dir, Origin: origin}); err == nil || !strings.Contains(err.Error(), "signed-note") {
			t.Errorf("%s: Open with Origin %q: %v, want a refusal citing signed-note", name, origin, err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s: Open wrote %s (%v)", name, dir, err)
		}
	}
	dir := t.TempDir()
	if vkey, err := Keygen(dir, "cpan-tlog.example.org/log"); err != nil || !strings.HasPrefix(vkey, "cpan-tlog.example.org/log+") {
		t.Errorf("a good origin: %q %v", vkey, err)
	}
}

// TestOpenRefusesAnotherLogsKey: a data directory holding another log's
// key pair (or no key at all) beside a published tree must not start: it
// would sign that tree with its own key. Open says which key signed the
// tree and what to do, on POSIX and S3 (the check reads the storage
// through the same reader), and changes nothing.
func TestOpenRefusesAnotherLogsKey(t *testing.T) { forStorages(t, testOpenRefusesAnotherLogsKey) }

func testOpenRefusesAnotherLogsKey(t *testing.T, storage string) {
	st := onStorage(t, storage)
	dir := t.TempDir()
	s := startServer(t, dir, st)
	for _, x := range samples(t)[:2] {
		s.mustAdd(x.request())
	}
	s.checkpoint(2)
	old := s.verifier()
	s.stop()
	cfg := Config{DataDir: dir, Logger: quietLogger()}
	st(&cfg)
	published := readCheckpoint(t, cfg)

	// Another log's key pair, same origin, in the data directory.
	other := t.TempDir()
	if _, err := Keygen(other, DefaultOrigin); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{KeyFile, VKeyFile} {
		b, _ := os.ReadFile(filepath.Join(other, f))
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Open(context.Background(), cfg)
	signer := fmt.Sprintf("%s+%08x", old.Name(), old.KeyHash())
	if err == nil || !strings.Contains(err.Error(), "signed by "+signer) || !strings.Contains(err.Error(), "another log's key") || !strings.Contains(err.Error(), "restore") {
		t.Fatalf("Open with another log's key: %v, want a refusal naming %s and what to do", err, signer)
	}
	if after := readCheckpoint(t, cfg); !bytes.Equal(after, published) {
		t.Errorf("the published checkpoint changed:\n%s\nwas\n%s", after, published)
	}

	// No key at all: refused before a new one is made.
	os.Remove(filepath.Join(dir, KeyFile))
	os.Remove(filepath.Join(dir, VKeyFile))
	if _, err := Open(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "has no "+KeyFile) || !strings.Contains(err.Error(), signer) {
		t.Fatalf("Open with no key beside a published tree: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, KeyFile)); !os.IsNotExist(err) {
		t.Errorf("a new key was written beside another log's tree (%v)", err)
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// readCheckpoint reads the published checkpoint from cfg's storage.
func readCheckpoint(t *testing.T, cfg Config) []byte {
	t.Helper()
	raw, _, err := publishedCheckpoint(context.Background(), cfg)
	if err != nil || raw == nil {
		t.Fatalf("read the published checkpoint: %v", err)
	}
	return raw
}
