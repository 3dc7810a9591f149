package log

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// Attack (operator mistake): the old log of a key rotation is served
// --frozen, then started once without it (the flag lost from
// /etc/default on an upgrade, a `serve --data` or an `import` by hand).
// The frozen state lived only in the flag: the writer opened the retired
// log, took adds and signed new checkpoints with the retired key. A
// --frozen start now leaves log.frozen in the data directory, and a
// writer refuses a directory holding it.
func TestFrozenLogReopenedAsWriter(t *testing.T) {
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := startServer(t, dir)
	s.stop()
	f, err := Open(context.Background(), Config{DataDir: dir, Frozen: true, Successor: "https://new.example", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	f.Shutdown(context.Background())
	l, err := Open(context.Background(), Config{DataDir: dir, Logger: quiet})
	if err == nil {
		l.Shutdown(context.Background())
		t.Fatal("a writer opened a log that was served --frozen")
	}
	if !errors.Is(err, ErrFrozen) {
		t.Fatalf("the refusal does not say the log is frozen: %v", err)
	}
	// A read-only front end of it, and --frozen again, still open.
	for _, cfg := range []Config{{DataDir: dir, ReadOnly: true, Logger: quiet}, {DataDir: dir, Frozen: true, Logger: quiet}} {
		l, err := Open(context.Background(), cfg)
		if err != nil {
			t.Fatalf("%+v: %v", cfg, err)
		}
		l.Shutdown(context.Background())
	}
	// Unfreezing on purpose is removing the file.
	if err := os.Remove(filepath.Join(dir, FrozenFile)); err != nil {
		t.Fatal(err)
	}
	l, err = Open(context.Background(), Config{DataDir: dir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	l.Shutdown(context.Background())
}
