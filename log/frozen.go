package log

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/CPAN-Security/cpan-tlog/internal/atomicfile"
)

// A frozen log is the old log of a key rotation (deploy/README.md, "Key
// rotation"): a new key is a new log, under a new origin, and the old one
// stays readable for ever, so that every proof it gave still verifies and
// monitors can still audit it, but takes no more entries and signs no more
// checkpoints. It is served as a read-only front end of itself
// (Config.Frozen): its tree, lookup index, index file versions and proofs
// as they were, adds refused with the successor's address.

// ErrFrozen is returned by adds to a frozen log.
var ErrFrozen = errors.New("this log is frozen")

// readOnlyErr is why this log takes no adds.
func (l *Log) readOnlyErr() error {
	if !l.cfg.Frozen {
		return ErrReadOnly
	}
	to := "to the log that succeeds it"
	if l.cfg.Successor != "" {
		to = "to its successor, " + l.cfg.Successor
	}
	return fmt.Errorf("%w: its key was retired (a new key is a new log), so it takes no more entries and signs no more checkpoints; what it logged stays readable and its proofs verify. Send adds %s", ErrFrozen, to)
}

// FrozenFile, in the data directory, says the log was served --frozen: a
// writer (serve without --frozen, import) refuses the directory, so that
// the flag lost once (from /etc/default on an upgrade, a serve or an
// import by hand) does not grow the retired log under its old key.
// Removing it unfreezes the log, on purpose.
const FrozenFile = "log.frozen"

// markFrozen writes FrozenFile on a --frozen start, once. A data
// directory it cannot write (a read-only mount) is served all the same.
func markFrozen(cfg Config) {
	p := filepath.Join(cfg.DataDir, FrozenFile)
	if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
		return
	}
	msg := fmt.Sprintf("served --frozen since %s; successor %s\nA writer refuses this directory: remove this file to take adds again under the retired key.\n",
		time.Now().UTC().Format(time.RFC3339), cmpOr(cfg.Successor, "(not given)"))
	if err := atomicfile.WriteNew(p, []byte(msg), 0o644); err != nil {
		logger := cfg.Logger
		if logger == nil {
			logger = slog.Default()
		}
		logger.Warn("could not mark the data directory frozen: a writer started on it by mistake would take adds", "file", p, "err", err)
	}
}

func cmpOr(s, or string) string {
	if s == "" {
		return or
	}
	return s
}

// checkNotFrozen refuses a writer on a data directory served --frozen.
func checkNotFrozen(dir string) error {
	p := filepath.Join(dir, FrozenFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return fmt.Errorf("%w: %s says the log was %s; it takes no more entries: serve it with --frozen (or --read-only), and send adds to its successor. If it must take adds again under its retired key, remove %s; nothing was changed",
		ErrFrozen, p, strings.TrimSpace(first), p)
}
