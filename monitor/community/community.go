package community

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/CPAN-Security/cpan-tlog/client/audit"
	"github.com/CPAN-Security/cpan-tlog/monitor/notify"
)

// Defaults of Config and Limits.
const (
	DefaultConfirmTTL     = 48 * time.Hour
	DefaultExpectGrace    = time.Hour
	DefaultPerAddress     = 3
	DefaultAddressWindow  = 24 * time.Hour
	DefaultPerSource      = 20
	DefaultWindow         = time.Hour
	DefaultMaxSubscribers = 100_000
	DefaultMaxRules       = 100
	// DefaultFeedItems: an item is about 500 bytes, so a full feed
	// costs some 25 KB of state per subscriber.
	DefaultFeedItems   = 50
	DefaultMaxQueueAge = 6 * time.Hour
	// maxItemsPerMessage bounds one message; a subscriber with more
	// queued gets several.
	maxItemsPerMessage = 100
	// maxPasses bounds Deliver's passes over the queue.
	maxPasses = 1000
	// maxMessagesPerRound bounds the alert messages one subscriber's
	// channel gets in a round. Anyone can upload files named into
	// someone's namespace, so a flood of uploads in a scope must not
	// become a flood of mail: what is queued beyond these is summarised in
	// one more message (a count and the feed's link) and leaves the queue;
	// the feed keeps every item.
	maxMessagesPerRound = 3
	// maxDigestItems bounds one digest; older items beyond it are
	// counted, not listed (the feed keeps them).
	maxDigestItems = 500
	// dropAfter: queued items a channel could not take for this long are
	// dropped (they stay in the feed), so a dead webhook cannot grow the
	// state without bound.
	dropAfter = 7 * 24 * time.Hour
)

// Advisories names the advisories a release fixes; *audit.DB has this
// method (client/audit). An interface keeps the engine testable without
// the CPANSA data.
type Advisories interface {
	Fixes(dist, version string) []audit.Advisory
}

// *audit.DB is what cmd/cpantlog-monitor gives Config.Advisories.
var _ Advisories = (*audit.DB)(nil)

// Limits bound what strangers can make the community monitor do. Zero
// fields take the defaults.
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
	// FeedItems is how many items each subscriber's feed keeps (default 50).
	FeedItems int
}

// Config says how the community monitor reaches people.
type Config struct {
	// BaseURL is the public URL the pages are served under, for links in
	// mails and feeds (https://monitor.example or with a path prefix).
	BaseURL string
	// LogURL is where an entry of the log can be looked up by index, for
	// links in messages: "%d" in it is replaced by the index; without
	// "%d" the index is appended. Empty: no entry links.
	LogURL string
	// StateDir holds community.key (0600), the HMAC key of the links.
	StateDir string
	// Sender sends mail; Subscribe fails without it.
	Sender notify.Sender
	// Webhook posts to subscribers' webhooks; nil: webhooks are not
	// delivered (the queue keeps them).
	Webhook *notify.Webhook
	From    string
	// ConfirmTTL is how long a confirmation link works (default 48h).
	ConfirmTTL time.Duration
	// ExpectGrace is how long after an upload was audited its Sigstore
	// bundle may follow (default 1h); negative means 0: judged at the end
	// of the round that audited it (the next Deliver).
	ExpectGrace time.Duration
	// MaxQueueAge: a queued message older than this makes Unhealthy say
	// so (default 6h).
	MaxQueueAge time.Duration
	// DigestEvery is how often a subscriber gets a digest when they chose
	// no period (Subscriber.Digest); default daily.
	DigestEvery time.Duration
	// DigestEmpty sends a due digest even when nothing was logged in a
	// subscriber's scope: a sign the monitor is awake.
	DigestEmpty bool
	// Advisories, when set, names the advisories a release fixes.
	Advisories Advisories
	Limits     Limits
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Community is the engine: subscriptions, routing, queues and delivery.
// Its methods are safe for concurrent use.
type Community struct {
	db      *bolt.DB
	cfg     Config
	lim     Limits
	keys    linkKeys
	log     *slog.Logger
	metrics *metrics

	// idx is the routing index, rebuilt when the subscriptions'
	// generation (stored in bMeta, so it is read in the routing
	// transaction itself) differs from the one it was built at.
	idxMu sync.Mutex
	idx   *index

	// deliverMu serialises Deliver and Digest: each sends, then deletes
	// what it sent, and two at once would send the same items twice.
	deliverMu sync.Mutex

	healthMu    sync.Mutex
	oldestQueue time.Time // the oldest item left queued after the last Deliver

	sweepMu   sync.Mutex
	lastSweep time.Time

	// testAfterSend, when set, runs after a message was sent and before
	// its queue keys are deleted: tests make it panic to stand for a
	// crash there.
	testAfterSend func()
}

// ErrRateLimited: the address or the source asked too often; nothing
// was changed or sent.
var ErrRateLimited = errors.New("too many requests: try again later")

// ErrBadToken is the one answer for a token that is unknown, used or
// expired, so a page cannot be used to tell them apart.
var ErrBadToken = errors.New("this link is not valid (it may have expired or been used already)")

// InputError is bad input from a subscriber; its message is safe to show
// them (it quotes only what they wrote, clipped).
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
// its buckets, and its link key in cfg.StateDir/community.key (created
// 0600 when missing).
func Open(db *bolt.DB, cfg Config) (*Community, error) {
	if db == nil {
		return nil, errors.New("community: no database")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("community: no state directory for the link key")
	}
	if cfg.BaseURL == "" {
		return nil, errors.New("community: no base URL for the links in messages")
	}
	if cfg.ConfirmTTL <= 0 {
		cfg.ConfirmTTL = DefaultConfirmTTL
	}
	if cfg.ExpectGrace == 0 {
		cfg.ExpectGrace = DefaultExpectGrace
	} else if cfg.ExpectGrace < 0 {
		cfg.ExpectGrace = 0
	}
	if cfg.DigestEvery <= 0 {
		cfg.DigestEvery = 24 * time.Hour
	}
	if cfg.MaxQueueAge <= 0 {
		cfg.MaxQueueAge = DefaultMaxQueueAge
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	lim := cfg.Limits
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&lim.PerAddress, DefaultPerAddress)
	def(&lim.PerSource, DefaultPerSource)
	def(&lim.MaxSubscribers, DefaultMaxSubscribers)
	def(&lim.MaxRules, DefaultMaxRules)
	def(&lim.FeedItems, DefaultFeedItems)
	if lim.Window <= 0 {
		lim.Window = DefaultWindow
	}
	if lim.AddressWindow <= 0 {
		lim.AddressWindow = DefaultAddressWindow
	}
	key, err := loadKey(filepath.Join(cfg.StateDir, "community.key"))
	if err != nil {
		return nil, err
	}
	c := &Community{db: db, cfg: cfg, lim: lim, keys: deriveKeys(key), log: cfg.Logger}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("community: %w", err)
	}
	c.metrics, err = newMetrics(c, cfg.Registerer)
	if err != nil {
		return nil, err
	}
	if err := c.countSubscribers(); err != nil {
		return nil, err
	}
	return c, nil
}

// loadKey reads the 32-byte link key, creating it (0600, written to a
// temporary file and renamed, so a crash leaves no half key) when missing.
func loadKey(name string) ([]byte, error) {
	b, err := os.ReadFile(name)
	if err == nil {
		if len(b) != 32 {
			return nil, fmt.Errorf("community: %s holds %d bytes, not a 32-byte key", name, len(b))
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("community: %w", err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, key, 0o600); err != nil {
		return nil, fmt.Errorf("community: %w", err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil { // WriteFile keeps an existing file's mode
		return nil, fmt.Errorf("community: %w", err)
	}
	if err := os.Rename(tmp, name); err != nil {
		return nil, fmt.Errorf("community: %w", err)
	}
	return key, nil
}

func (c *Community) now() time.Time { return c.cfg.Now().UTC() }

// newID is 128 random bits, hex.
func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// idKey is the 16 bytes of a subscriber ID, the prefix of its keys in the
// queue, digest and feed buckets.
func idKey(id string) []byte {
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != 16 {
		// IDs are only ever made by newID; a stored one that is not is
		// corrupt state, and must not alias another subscriber's keys.
		panic("community: malformed subscriber ID " + id)
	}
	return b
}

func getSubscriber(tx *bolt.Tx, id string) (*Subscriber, error) {
	v := tx.Bucket(bSubscribers).Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	var s Subscriber
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, fmt.Errorf("community: subscriber %s: %w", id, err)
	}
	return &s, nil
}

// putSubscriber stores s and bumps the subscriptions' generation, so the
// next Route rebuilds its index.
func putSubscriber(tx *bolt.Tx, s *Subscriber) error {
	if err := storeSubscriber(tx, s); err != nil {
		return err
	}
	return bumpGeneration(tx)
}

// storeSubscriber stores s without a new generation: for changes routing
// does not see (a pending subscription, its tokens, a digest time, a
// bounce count below suspension).
func storeSubscriber(tx *bolt.Tx, s *Subscriber) error {
	v, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return tx.Bucket(bSubscribers).Put([]byte(s.ID), v)
}

func bumpGeneration(tx *bolt.Tx) error {
	_, err := tx.Bucket(bMeta).NextSequence()
	return err
}

func generation(tx *bolt.Tx) uint64 { return tx.Bucket(bMeta).Sequence() }
