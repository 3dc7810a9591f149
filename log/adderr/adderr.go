// Package adderr holds the errors an add to the log can end with, so that
// the log that returns them (package log) and the HTTP API that answers
// them (package log/api) share one value of each without importing each
// other. errors.Is and errors.As match them however they are wrapped;
// package log keeps aliases of each (log.ConflictError, log.ErrOverloaded,
// ...) for its callers.
//
// What each means to a client, and what POST /add answers it:
//
//   - *ConflictError: PAUSE's rules forbid the entry at its path (a
//     different file is logged there, or there is nothing to delete):
//     409, with the entry already logged. Retrying does not help.
//   - ErrFutureTime: the entry's time is later than the log's clock plus
//     MaxClockSkew: 400.
//   - ErrIndexBytesMissing: an index file version whose bytes the log does
//     not hold: 422; PUT them to /index-files/<sha256>, then retry.
//   - ErrOverloaded, ErrShutdown, ErrPathBusy: the log cannot take the
//     entry now (too many adds in flight or Tessera pushed back; it is
//     shutting down; another add holds the path): 503 with Retry-After: 1.
//     The entry was not logged, or a retry of it finds it logged (a
//     duplicate, 200). GET /lookup and /proof answer ErrPathBusy (an entry
//     at the path is being indexed) 503 with Retry-After: 1 too.
package adderr

import (
	"errors"
	"fmt"
	"time"

	"github.com/CPAN-Security/cpan-tlog/log/decide"
	"github.com/CPAN-Security/cpan-tlog/log/index"
)

// ConflictError is returned when the path already has a different entry
// that PAUSE's rules do not let this one follow.
type ConflictError struct {
	Reason   string
	Existing index.Record
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s (logged at index %d)", e.Reason, e.Existing.Index)
}

// ErrOverloaded means Tessera pushed back, or too many adds are in
// flight; the client should retry later.
var ErrOverloaded = errors.New("log is overloaded, retry later")

// ErrShutdown means the log is shutting down and takes no more adds.
var ErrShutdown = errors.New("log is shutting down")

// MaxClockSkew is how far past the log's clock an entry's time may be: a
// time is what PAUSE says, and a future one would keep an index version
// "fresh" for ever.
const MaxClockSkew = 5 * time.Minute

// ErrFutureTime wraps the refusal of an entry whose time is later than the
// log's clock plus MaxClockSkew.
var ErrFutureTime = errors.New("time is in the future")

// ErrIndexBytesMissing refuses an index version whose bytes the log does
// not hold: PUT them to /index-files/<sha256> first.
var ErrIndexBytesMissing = errors.New("the bytes of this index file version are not stored")

// ErrPathBusy means another add holds the path and did not finish in
// time; retry. It is package decide's value (its implementations return
// it), named here with the other errors of an add.
var ErrPathBusy = decide.ErrPathBusy
