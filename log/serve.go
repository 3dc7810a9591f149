package log

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	flog "github.com/transparency-dev/formats/log"
	tclient "github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/internal/httpserver"
	"github.com/CPAN-Security/cpan-tlog/log/api"
	"github.com/CPAN-Security/cpan-tlog/log/index"
)

// Serve runs the log's HTTP API on ln until ctx ends, then shuts down
// gracefully, within the configured ShutdownTimeout: it says what it waits
// for, stops accepting connections, answers the waits for a checkpoint
// (POST /add?wait=1) at once, lets the adds in flight finish, waits until
// every acknowledged entry is in a published checkpoint (or the witnesses
// make clear none can come), and closes the log.
func Serve(ctx context.Context, l *Log, ln net.Listener) error {
	// POST /add?wait=1 waits for a checkpoint, up to api.MaxProofWait.
	srv := httpserver.New(l.Handler(), api.WriteTimeout)
	bound := l.cfg.ShutdownTimeout
	served, watched := make(chan struct{}), make(chan struct{})
	var drainStart time.Time
	go func() {
		defer close(watched)
		select {
		case <-served:
		case <-ctx.Done():
			drainStart = time.Now()
			l.beginDrain()
			l.cfg.Logger.Info(fmt.Sprintf("shutting down: %s (up to %s); a second interrupt stops at once: acknowledged entries are stored either way and published after the next start", l.drainStatus(context.Background()), bound))
		}
	}()
	herr := httpserver.Run(ctx, srv, httpserver.Limit(ln, l.cfg.MaxConns), bound)
	close(served)
	<-watched
	deadline := time.Now().Add(bound)
	if ctx.Err() != nil && !drainStart.IsZero() {
		deadline = drainStart.Add(bound)
	}
	sctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := l.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down log: %w", err)
	}
	return herr
}

// Reindex rebuilds the lookup index of the log in dataDir from its tree, up
// to the latest published checkpoint, and swaps it in. The server must not
// be running. progress, when not nil, receives a line now and then.
func Reindex(ctx context.Context, dataDir string, progress io.Writer) (uint64, error) {
	if progress == nil {
		progress = io.Discard
	}
	live := filepath.Join(dataDir, IndexFile)
	// Opening the live index first fails if a server holds it.
	if ix, err := index.Open(live); err != nil {
		if errors.Is(err, index.ErrLocked) {
			return 0, err
		}
	} else {
		ix.Close()
	}
	vkey, err := os.ReadFile(filepath.Join(dataDir, VKeyFile))
	if err != nil {
		return 0, fmt.Errorf("%w (is %s a cpan-tlog data directory?)", err, dataDir)
	}
	v, err := note.NewVerifier(string(bytes.TrimSpace(vkey)))
	if err != nil {
		return 0, err
	}
	ff := tclient.FileFetcher{Root: filepath.Join(dataDir, TreeDir)}
	cpRaw, err := ff.ReadCheckpoint(ctx)
	if err != nil {
		return 0, fmt.Errorf("read checkpoint: %w", err)
	}
	cp, _, _, err := flog.ParseCheckpoint(cpRaw, v.Name(), v)
	if err != nil {
		return 0, fmt.Errorf("checkpoint does not verify with %s: %w", VKeyFile, err)
	}
	tmp := live + ".rebuild"
	os.Remove(tmp)
	ix, err := index.Open(tmp)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	last := start
	err = syncIndex(ctx, ix, ff.ReadEntryBundle, cp.Size, nil, func(size uint64, bad int) {
		if bad > 0 {
			fmt.Fprintf(progress, "warning: %d entries below %d are not valid v1 entries\n", bad, size)
		}
		if time.Since(last) > time.Second || size == cp.Size {
			last = time.Now()
			rate := float64(size) / time.Since(start).Seconds()
			fmt.Fprintf(progress, "indexed %d/%d entries (%.0f/s)\n", size, cp.Size, rate)
		}
	})
	if cerr := ix.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return 0, err
	}
	if err := os.Rename(tmp, live); err != nil {
		return 0, err
	}
	return cp.Size, nil
}
