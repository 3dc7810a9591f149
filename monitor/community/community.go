package community

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/CPAN-Security/cpan-tlog/client/audit"
)

// Advisories names the advisories a release fixes; *audit.DB has this
// method (client/audit). An interface keeps the engine testable without
// the CPANSA data.
type Advisories interface {
	Fixes(dist, version string) []audit.Advisory
}

// Limits bound what strangers can make the community monitor do.
type Limits struct {
	// PerAddress is how many mails Subscribe sends to one address per
	// AddressWindow (default 3 per 24h).
	PerAddress int
	// PerSource is how many Subscribe requests one source (an IP address)
	// may make per Window (default 20 per hour).
	PerSource int
	// Window is the source window (default 1h).
	Window time.Duration
	// AddressWindow is the address window (default 24h).
	AddressWindow time.Duration
	// MaxSubscribers bounds the subscriptions kept, pending or not
	// (default 100,000).
	MaxSubscribers int
	// MaxRules bounds the rules and expectations of one subscriber
	// (default 100).
	MaxRules int
	// FeedItems is how many items each subscriber's feed keeps (default 200).
	FeedItems int
}

// Config says how the community monitor reaches people.
type Config struct {
	// BaseURL is the public URL the pages are served under, for links in
	// mails and feeds (https://monitor.example/).
	BaseURL string
	// LogURL is where an entry of the log can be looked up by index, for
	// links in messages: "%d" in it is replaced by the index; without
	// "%d" the index is appended as ?index=N. Empty: no entry links.
	LogURL string
	// StateDir holds community.key (0600), the HMAC key of the links.
	StateDir string
	From     string
	// ConfirmTTL is how long a confirmation link works (default 48h).
	ConfirmTTL time.Duration
	// ExpectGrace is how long after an upload was audited its Sigstore
	// bundle may follow (default 1h); negative means 0: judged at the end
	// of the round that audited it.
	ExpectGrace time.Duration
	// Advisories, when set, names the advisories a release fixes.
	Advisories Advisories
	Limits     Limits
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Community is the engine: subscriptions, routing, queues and delivery.
type Community struct {
	db  *bolt.DB
	cfg Config
}

// ErrRateLimited: the address or the source asked too often; nothing
// was changed or sent.
var ErrRateLimited = errors.New("too many requests: try again later")

// ErrBadToken is the one answer for a token that is unknown, used or
// expired, so a page cannot be used to tell them apart.
var ErrBadToken = errors.New("this link is not valid (it may have expired or been used already)")

// InputError is bad input from a subscriber; its message is safe to show
// them (it quotes only what they wrote).
type InputError struct {
	Line int // 1-based line of the rules text, 0 when not about a line
	Msg  string
}

func (e *InputError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// Request is what a subscribe or manage form says.
type Request struct {
	Email   string
	Rules   []Rule
	Expect  []Expectation
	Mail    bool
	Webhook string
}

// Open opens the community monitor in the monitor's bbolt file, creating
// its buckets.
func Open(db *bolt.DB, cfg Config) (*Community, error) {
	return &Community{db: db, cfg: cfg}, nil
}

var errTODO = errors.New("community: not implemented yet")

// ParseRequestText parses the form's rules text, one rule per line.
func ParseRequestText(rules string) ([]Rule, []Expectation, error) { return nil, nil, errTODO }

// Subscribe stores a pending subscription and mails its confirmation link.
func (c *Community) Subscribe(ctx context.Context, req Request, source string) error { return errTODO }

// Confirm confirms the subscription a confirmation token was mailed for.
func (c *Community) Confirm(ctx context.Context, token string) (*Subscriber, error) {
	return nil, ErrBadToken
}

// Manage returns the subscriber a manage token is for.
func (c *Community) Manage(token string) (*Subscriber, error) { return nil, ErrBadToken }

// Update replaces a subscriber's rules, expectations and channels.
func (c *Community) Update(ctx context.Context, token string, req Request) error { return ErrBadToken }

// Unsubscribe deletes a subscriber with its queue, feed and tokens.
func (c *Community) Unsubscribe(ctx context.Context, token string) error { return ErrBadToken }

// Deliver sends what the queues hold.
func (c *Community) Deliver(ctx context.Context) error { return errTODO }

// Digest sends the digests that are due.
func (c *Community) Digest(ctx context.Context) error { return errTODO }

// ManageURL is the subscriber's manage page.
func (c *Community) ManageURL(s *Subscriber) string { return "" }

// UnsubscribeURL is the subscriber's unsubscribe page (and RFC 8058 target).
func (c *Community) UnsubscribeURL(s *Subscriber) string { return "" }

// FeedURL is the subscriber's Atom feed.
func (c *Community) FeedURL(s *Subscriber) string { return "" }

// Unhealthy says why the community monitor needs its operator ("" when
// it does not).
func (c *Community) Unhealthy() string { return "" }
