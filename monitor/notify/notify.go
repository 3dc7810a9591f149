// Package notify delivers the community monitor's notices over three
// channels: mail (SMTP with STARTTLS before any password), webhooks (a
// signed JSON POST that cannot be aimed at the monitor's own network) and
// Atom feeds. It knows nothing about subscribers or findings: callers hand
// it a finished Mail, body or Feed.
//
// What it promises: a Mail is refused before any connection if a header
// value or address could inject a header; credentials never travel
// unencrypted; a webhook never reaches a loopback, private, link-local,
// unspecified or multicast address unless told to, whatever DNS answers;
// an Atom feed is well-formed XML whatever its text holds. IsPermanent
// tells a bounce (do not retry) from a failure worth retrying.
package notify

import (
	"context"
	"errors"
)

// Sender sends one mail.
type Sender interface {
	Send(ctx context.Context, m Mail) error
}

// PermanentError is a failure that retrying will not cure: a 5xx answer
// to MAIL, RCPT or DATA (a bounce), or a webhook endpoint answering 4xx
// (other than 408 and 429) or standing on a refused address.
type PermanentError struct {
	Err error
}

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// IsPermanent reports whether err (or an error it wraps) is permanent.
// Network, TLS, authentication and 4xx SMTP failures are not: they may
// pass.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}
