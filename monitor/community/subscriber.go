// Package community runs one monitor for many subscribers: CPAN authors
// and users who each say what they care about (a PAUSE id, distributions,
// namespaces, a path glob) and how they want to hear of it (email, a
// webhook, an Atom feed of their own), and hear of every upload, deletion,
// index change and finding that touches it, loudly when it is not what
// they declared.
//
// What it promises:
//
//   - Nothing reaches an address but its confirmation mail until its owner
//     follows the link in it (double opt-in). A confirmation token is 256
//     random bits, stored only as its sha256, works once and expires after
//     Config.ConfirmTTL; a new request for a pending address voids the
//     earlier links (a link confirms the rules its page shows; the mail
//     quotes nothing the requester wrote). A request
//     for an address already subscribed changes nothing and mails that
//     address its manage link; the requester is answered alike in every
//     case.
//   - Manage, unsubscribe and feed links are derived from community.key
//     (0600 in Config.StateDir) and the subscriber's ID, which they hide:
//     they need no storage, keep working from old mails, are refused for
//     another purpose (an unsubscribe link cannot manage, a feed link can
//     do neither) and die with the subscription. Unsubscribe deletes the
//     subscriber with its queue, digest, feed, held uploads and tokens.
//   - Rate limits per address and per source live in the state, so a
//     restart does not reset them; a request over a limit changes nothing.
//   - Routing runs inside the transaction of package monitor that records
//     a batch's audit (Route, monitor.Router): what is routed commits with
//     the audit's position, once. Each thing reaches each subscriber it
//     touches once, with the rules that matched. An index change reaches
//     the previous and the new owner, with both versions' log indexes.
//   - Expectations make the expected quiet: an upload of a distribution a
//     subscriber declared a Sigstore identity for waits for its bundle;
//     the declared identity puts it in the digest and feed only; another
//     identity, or no bundle within Config.ExpectGrace, is an alert naming
//     what differs. A bundle logged before its file is kept a day and
//     settles the file when it comes: arrival order does not matter.
//     Everything else in scope is an alert, as without this package.
//   - Delivery sends, per subscriber and channel, one message holding the
//     queued alerts and then deletes exactly those in a transaction: a
//     crash between the two repeats that one message, with the same
//     Message-ID (and webhook Idempotency-Key). Permanent mail failures
//     count towards suspending the address's mail (MaxBounces). A round
//     sends each subscriber's channel at most three alert messages and
//     then one counting the rest (kept in the feed): a flood of uploads
//     is not a flood of mail. Mail goes out before webhooks, which get a
//     bounded share of the round.
//   - Nothing in a message but what the subscriber wrote (their own rules)
//     and what the log recorded, quoted as data and clipped.
//
// Routing costs per match, not per subscriber: rules are indexed by PAUSE
// id, distribution, package, namespace prefix and the author directory of
// a path glob (see BenchmarkRoute for the figures).
package community

import "time"

// Subscriber is one person's subscription. It is stored as JSON in
// bucket bSubscribers under ID.
type Subscriber struct {
	ID    string `json:"id"`    // 128 random bits, hex; never shown in a URL
	Email string `json:"email"` // as given, lower-cased domain; the confirmation went here
	// Confirmed is set only when the owner of Email followed the
	// confirmation link; until then nothing but that mail is sent.
	Confirmed   bool      `json:"confirmed"`
	Created     time.Time `json:"created"`
	ConfirmedAt time.Time `json:"confirmed_at,omitzero"`
	Rules       []Rule    `json:"rules"`
	// Expect declares how the subscriber's releases are made: uploads
	// matching an expectation are quiet (digest only), others in its scope
	// are alerts naming what differs.
	Expect []Expectation `json:"expect,omitempty"`
	// Channels: mail goes to Email when Mail is set; Webhook, when not
	// empty, receives each message as JSON; the Atom feed is always kept.
	Mail    bool   `json:"mail"`
	Webhook string `json:"webhook,omitempty"`
	// Digest is how often the digest is sent (0: daily).
	Digest time.Duration `json:"digest,omitempty"`
	// LastDigest is when the last digest was sent.
	LastDigest time.Time `json:"last_digest,omitzero"`
	// Bounces counts permanent delivery failures in a row; at MaxBounces
	// mail stops (Suspended) until the subscriber confirms again.
	Bounces   int  `json:"bounces,omitempty"`
	Suspended bool `json:"suspended,omitempty"`
}

// MaxBounces permanent failures in a row suspend a subscriber's mail.
const MaxBounces = 3

// Rule is one thing a subscriber watches.
type Rule struct {
	// Kind is "author" (a PAUSE id: uploads into its directory or by it,
	// index changes moving its packages to or from it), "dist" (a
	// distribution's uploads, deletions and index changes), "namespace"
	// (a package name, or a prefix ending in "::*", in 02packages: index
	// changes of those packages, and uploads of the distribution named
	// after the package, Foo::Bar -> Foo-Bar) or "path" (a glob in Go's
	// path.Match syntax over logged paths).
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// Expectation is how an author declares their releases are made: uploads
// of Dists (all in the subscriber's scope when empty) carry a Sigstore
// bundle whose recorded identity has this Issuer and, where given, this
// source Repository and Workflow (build config). An empty field is not
// compared, but Issuer and one of Repository/Workflow are required.
type Expectation struct {
	Dists      []string `json:"dists,omitempty"`
	Issuer     string   `json:"issuer"`
	Repository string   `json:"repository,omitempty"`
	Workflow   string   `json:"workflow,omitempty"`
}

// Bucket names in the monitor's bbolt file. Everything this package keeps
// is under these; package monitor creates none of them.
var (
	bSubscribers = []byte("community-subscribers") // ID -> Subscriber JSON
	bEmails      = []byte("community-emails")      // address -> ID
	// bTokens maps sha256(token) to a token record (purpose, subscriber
	// ID, expiry): a token is stored only hashed, so a copy of the state
	// gives nobody a way to confirm or manage a subscription.
	bTokens = []byte("community-tokens")
	// bQueue holds messages routed but not yet sent, per subscriber:
	// key ID|seq (big-endian), value the message JSON.
	bQueue = []byte("community-queue")
	// bFeed holds each subscriber's Atom feed items (ID|seq), the newest
	// FeedItems kept.
	bFeed = []byte("community-feed")
	// bDigest holds items waiting for each subscriber's next digest.
	bDigest = []byte("community-digest")
	// bExpecting holds uploads waiting for their Sigstore bundle to be
	// judged against a subscriber's expectation.
	bExpecting = []byte("community-expecting")
	// bRate holds rate-limit windows per address and per source.
	bRate = []byte("community-rate")
	// bMeta's sequence is the subscriptions' generation: every change to
	// a subscriber bumps it, and the routing index is rebuilt when it
	// differs from the one the index was built at.
	bMeta = []byte("community-meta")
)

// bFixed records, per distribution and advisory (dist NUL ID), the
// version of the first release routed as fixing it.
var bFixed = []byte("community-fixed")

var allBuckets = [][]byte{bSubscribers, bEmails, bTokens, bQueue, bFeed, bDigest, bExpecting, bRate, bMeta, bFixed}
