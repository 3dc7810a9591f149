// Package client verifies CPAN files against cpan-tlog without trusting the
// log, the mirror or the network: it checks checkpoints against a trust
// policy (the log's signature and a witness quorum), proves inclusion and
// consistency from the log's tiles, compares the logged entry with the file,
// and remembers the newest checkpoint it trusted per log so that a rollback
// or a fork is caught and reported with both checkpoints as evidence.
//
// It imports nothing from the log's server side but the entry codec, so a
// cpanm user's tool stays small.
package client

import (
	"errors"
	"fmt"
)

// Exit codes of the cpantlog command, one per class of failure.
const (
	ExitOK          = 0 // verified
	ExitNotVerified = 1 // not in the log, hash mismatch, quorum not met, ...
	ExitUsage       = 2 // usage or I/O error
	ExitSecurity    = 3 // signed evidence: a fork, a rollback, conflicting signed views
)

// ErrNotVerified is wrapped by every error that means "this file is not
// proven to be the logged one" without proving misbehaviour.
var ErrNotVerified = errors.New("not verified")

// ErrSecurity is wrapped by every error that is evidence of misbehaviour by
// the log, signed by a trusted key: two signed views that are inconsistent
// (a fork), a signed rollback, a cosigned checkpoint contradicting a
// trusted one. Bytes that fail to verify (a signature that does not, a
// malformed note) are never such evidence: anyone can make them, so they
// are ErrNotVerified.
var ErrSecurity = errors.New("SECURITY ERROR")

func notVerified(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrNotVerified}, args...)...)
}

// BadSignatureError is a checkpoint carrying a signature line under a key
// the policy trusts that does not verify (or a note that cannot be read
// with it). It is a refusal (it wraps ErrNotVerified), never a security
// error: anyone who can change a proof's bytes on the way makes one.
// Callers that keep apart what a log serves (the monitor) can tell it
// from other refusals with errors.As.
type BadSignatureError struct {
	Reason  string
	Offered []byte // the checkpoint
}

func (e *BadSignatureError) Error() string { return fmt.Sprintf("%v: %s", ErrNotVerified, e.Reason) }
func (e *BadSignatureError) Unwrap() error { return ErrNotVerified }

// SecurityError is misbehaviour with its evidence: the checkpoint trusted
// before and the one offered now.
type SecurityError struct {
	Reason  string
	Trusted []byte // the checkpoint trusted until now, if any
	Offered []byte // the checkpoint that conflicts with it
	// EvidenceDir is where both were saved, if they were.
	EvidenceDir string
}

func (e *SecurityError) Error() string {
	s := fmt.Sprintf("%v: %s", ErrSecurity, e.Reason)
	if e.Trusted != nil {
		s += "\n--- checkpoint trusted until now ---\n" + string(e.Trusted)
	}
	if e.Offered != nil {
		s += "--- checkpoint offered now ---\n" + string(e.Offered)
	}
	if e.EvidenceDir != "" {
		s += "evidence saved in " + e.EvidenceDir + "; report it to the log's operators and the CPAN security team"
	}
	return s
}

func (e *SecurityError) Unwrap() error { return ErrSecurity }

// UnreachableError means the log could not be asked: nothing was proven
// either way, and it is not the mirror's fault. Callers answer it with a
// "could not reach the log" rather than a refusal that accuses the mirror;
// when the log was reached but refused the request (an HTTP 4xx other than
// 404: a request it calls bad, a rate limit), it says so instead.
type UnreachableError struct{ Err error }

func (e *UnreachableError) Error() string {
	var se *HTTPStatusError
	if errors.As(e.Err, &se) && se.Code >= 400 && se.Code < 500 {
		return "the log refused the request: " + e.Err.Error()
	}
	return "could not reach the log: " + e.Err.Error()
}
func (e *UnreachableError) Unwrap() error { return e.Err }

// CouldNotCheckError means a check could not be completed (a witness's
// view that does not open, say): nothing was proven either way, so it is
// neither a pass nor a refusal. It maps to exit 2, like UnreachableError.
type CouldNotCheckError struct{ Reason string }

func (e *CouldNotCheckError) Error() string { return "could not check: " + e.Reason }

// Unchecked reports whether err means "could not check" (the log or a
// witness could not be asked, or answered nothing that verifies) rather
// than a verdict on the file.
func Unchecked(err error) bool {
	var ue *UnreachableError
	var ce *CouldNotCheckError
	return errors.As(err, &ue) || errors.As(err, &ce)
}

// ExitCode maps an error from this package to the cpantlog exit code.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrSecurity):
		return ExitSecurity
	case errors.Is(err, ErrNotVerified):
		return ExitNotVerified
	default:
		return ExitUsage
	}
}

// NotVerified returns an error wrapping ErrNotVerified, for checks built
// on this package elsewhere (the proxy's CHECKSUMS check).
func NotVerified(format string, args ...any) error { return notVerified(format, args...) }
