package log

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Attack: the token file replaced by a FIFO (mkfifo, or a careless
// `cat > ingest.token` from a pipe). Opening a FIFO for reading blocks
// until a writer comes, and reload held the store's lock meanwhile: the
// watcher hung, every later SIGHUP queued behind it, and a good file put
// back in place was not read until a signal happened to interrupt the
// open. A start with the FIFO in place hung for ever.
func TestTokenFileFIFODoesNotHangReload(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, TokenFile)
	if err := os.WriteFile(file, []byte("pause "+tokA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := openTokens(file, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(file, 0o600); err != nil {
		t.Skip("mkfifo:", err)
	}
	within := func(what string, f func() error) error {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- f() }()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			// Unblock the open so that the test can end.
			if w, err := os.OpenFile(file, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
			t.Fatalf("%s hangs on a FIFO in place of the token file", what)
			return nil
		}
	}
	if err := within("reload", func() error { return s.reload("SIGHUP") }); err == nil {
		t.Fatal("a FIFO was read as a token file")
	}
	if name, ok := s.cur.Load().match("Bearer " + tokA); !ok || name != "pause" {
		t.Fatal("the tokens in use were dropped for a FIFO")
	}
	if err := within("start", func() error { _, err := openTokens(file, logger); return err }); err == nil {
		t.Fatal("a start read a FIFO as its token file")
	}
}

// Attack: an operator writes a line the wrong way round, 'TOKEN NAME',
// or a token of base64 characters where the name goes. The error, which
// reload logs at ERROR, quoted the first field as the token's name or as
// a bad name: the secret went into the logs.
func TestTokenFileErrorsDoNotShowASwappedToken(t *testing.T) {
	const b64 = "q2x+Fk3/9Zp0aLr8Yw1VbN4c=="
	for _, in := range []string{
		tokA + " pause\n",       // swapped: the token is a valid name, "pause" too short
		b64 + " pause\n",        // swapped, and the token is no valid name
		b64 + " " + tokA + "\n", // a stray token before the token
		"pause " + tokB + "\n" + tokA + " backfill\n",
	} {
		_, err := ParseTokenFile([]byte(in))
		if err == nil {
			t.Fatalf("%q accepted", in)
		}
		for _, secret := range []string{tokA, tokB, b64} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows a token: %v", err)
			}
		}
	}
}
