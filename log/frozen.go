package log

import (
	"errors"
	"fmt"
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
