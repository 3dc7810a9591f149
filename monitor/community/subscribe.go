package community

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/CPAN-Security/cpan-tlog/monitor/notify"
	bolt "go.etcd.io/bbolt"
)

// tokenRecord is a confirmation token's record, stored under the sha256
// of the token in bTokens; bTokens also holds an index key per token,
// "i" + subscriber ID + hash, so a subscriber's tokens can be deleted.
type tokenRecord struct {
	ID      string    `json:"id"`
	Expires time.Time `json:"expires"`
}

// rateWindow is one fixed window of a rate limit, in bRate.
type rateWindow struct {
	Start time.Time `json:"start"`
	Count int       `json:"count"`
}

// take counts one more against the limit under key, or says the limit is
// reached (and counts nothing).
func take(tx *bolt.Tx, key string, limit int, window time.Duration, now time.Time) (bool, error) {
	b := tx.Bucket(bRate)
	var w rateWindow
	if v := b.Get([]byte(key)); v != nil {
		if err := json.Unmarshal(v, &w); err != nil {
			return false, fmt.Errorf("community: rate %q: %w", key, err)
		}
	}
	if now.Sub(w.Start) >= window || now.Before(w.Start) {
		w = rateWindow{Start: now}
	}
	if w.Count >= limit {
		return false, nil
	}
	w.Count++
	v, _ := json.Marshal(w)
	return true, b.Put([]byte(key), v)
}

// mailJob is a mail decided inside a transaction and sent after it
// committed.
type mailJob struct {
	mail notify.Mail
	kind string
}

// Subscribe asks for a subscription. It validates req (an *InputError
// for bad input), rate-limits per address and per source (ErrRateLimited,
// and nothing changes), and then, without telling the requester which
// case it was:
//   - for a new address, stores the subscription unconfirmed and mails
//     the confirmation link to it;
//   - for a pending one, replaces its rules with req's and mails a new
//     link (earlier links stop working: a link confirms the rules its
//     page shows);
//   - for a confirmed one, mails that address its manage link and
//     changes nothing;
//   - for a suspended one (its mail bounced), mails a link that resumes
//     its mail, its rules unchanged.
func (c *Community) Subscribe(ctx context.Context, req Request, source string) error {
	email, err := NormalizeEmail(req.Email)
	if err != nil {
		return err
	}
	rules, expect, err := checkRequest(req, c.lim.MaxRules)
	if err != nil {
		return err
	}
	if c.cfg.Sender == nil {
		return errors.New("community: no mail sender configured")
	}
	c.sweep()
	now := c.now()
	if len(source) > 64 {
		source = source[:64] // an IP address; anything longer is the caller's bug, not a new key per request
	}
	var job mailJob
	var delta [2]string
	err = c.db.Update(func(tx *bolt.Tx) error {
		ok, err := take(tx, "s\x00"+source, c.lim.PerSource, c.lim.Window, now)
		if err != nil || !ok {
			return errors.Join(err, errRated)
		}
		ok, err = take(tx, "a\x00"+mailboxKey(email), c.lim.PerAddress, c.lim.AddressWindow, now)
		if err != nil || !ok {
			return errors.Join(err, errRated)
		}
		// Full refuses every request, not only new addresses: otherwise
		// the answer would tell a subscribed address from another.
		if tx.Bucket(bSubscribers).Stats().KeyN >= c.lim.MaxSubscribers {
			return errFull
		}
		emailKey := []byte(strings.ToLower(email))
		var s *Subscriber
		if id := tx.Bucket(bEmails).Get(emailKey); id != nil {
			if s, err = getSubscriber(tx, string(id)); err != nil {
				return err
			}
		}
		switch {
		case s != nil && s.Confirmed && !s.Suspended:
			job = c.alreadyMail(s)
			return nil
		case s == nil:
			s = &Subscriber{ID: newID(), Email: email, Created: now}
			if err := tx.Bucket(bEmails).Put(emailKey, []byte(s.ID)); err != nil {
				return err
			}
			delta = [2]string{"", statePending}
			fallthrough
		case !s.Confirmed:
			s.Rules, s.Expect, s.Mail, s.Webhook = rules, expect, req.Mail, req.Webhook
			s.Created = now // the pending subscription lives ConfirmTTL from its last request
		}
		if err := deleteTokens(tx, s.ID); err != nil {
			return err
		}
		tok, h := newConfirmToken()
		rec, _ := json.Marshal(tokenRecord{ID: s.ID, Expires: now.Add(c.cfg.ConfirmTTL)})
		tb := tx.Bucket(bTokens)
		if err := tb.Put(h, rec); err != nil {
			return err
		}
		if err := tb.Put(tokenIndexKey(s.ID, h), nil); err != nil {
			return err
		}
		job = c.confirmMail(s, tok)
		return storeSubscriber(tx, s) // pending or suspended: not routed either way
	})
	if errors.Is(err, errRated) {
		c.metrics.rateLimited.Inc()
		return ErrRateLimited
	}
	if errors.Is(err, errFull) {
		return &InputError{Msg: "this monitor has as many subscriptions as it can keep; ask its operator"}
	}
	if err != nil {
		return err
	}
	c.adjustCounts(delta[0], delta[1])
	return c.sendNow(ctx, job)
}

// mailboxKey is the mailbox an address most likely reaches, for the
// per-address limit only: case, a +tag and dots in the local part are
// ignored (most providers deliver such variants to one person), so a
// stranger cannot multiply the mails to a victim by respelling the
// address. Distinct people it merges only share a limit.
func mailboxKey(email string) string {
	local, domain, _ := strings.Cut(strings.ToLower(email), "@")
	local, _, _ = strings.Cut(local, "+")
	return strings.ReplaceAll(local, ".", "") + "@" + domain
}

var (
	errRated = errors.New("rate limited")
	errFull  = errors.New("full")
)

func tokenIndexKey(id string, hash []byte) []byte {
	return append([]byte("i"+id), hash...)
}

// deleteTokens deletes every confirmation token of a subscriber.
func deleteTokens(tx *bolt.Tx, id string) error {
	b := tx.Bucket(bTokens)
	prefix := []byte("i" + id)
	var dead [][]byte
	cur := b.Cursor()
	for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
		dead = append(dead, bytes.Clone(k))
	}
	for _, k := range dead {
		if err := b.Delete(k[len(prefix):]); err != nil {
			return err
		}
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// sendNow sends a mail decided by a committed transaction.
func (c *Community) sendNow(ctx context.Context, job mailJob) error {
	if err := c.cfg.Sender.Send(ctx, job.mail); err != nil {
		c.metrics.failures.WithLabelValues("mail").Inc()
		return fmt.Errorf("community: sending the %s mail: %w", job.kind, err)
	}
	c.metrics.delivered.WithLabelValues("mail", job.kind).Inc()
	return nil
}

// Confirm confirms the subscription a confirmation token was mailed for
// (and resumes a suspended one's mail). The token works once, until
// ConfirmTTL after it was made; ErrBadToken otherwise.
func (c *Community) Confirm(ctx context.Context, token string) (*Subscriber, error) {
	if len(token) != 43 {
		return nil, ErrBadToken
	}
	h := hashToken(token)
	now := c.now()
	var out *Subscriber
	var from string
	err := c.db.Update(func(tx *bolt.Tx) error {
		v := tx.Bucket(bTokens).Get(h)
		if v == nil {
			return ErrBadToken
		}
		var rec tokenRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return err
		}
		if !now.Before(rec.Expires) {
			return ErrBadToken // swept with the pending subscription
		}
		s, err := getSubscriber(tx, rec.ID)
		if err != nil {
			return err
		}
		if s == nil {
			return ErrBadToken
		}
		if err := deleteTokens(tx, s.ID); err != nil {
			return err
		}
		from = stateOf(s)
		s.Confirmed, s.Suspended, s.Bounces = true, false, 0
		if s.ConfirmedAt.IsZero() {
			s.ConfirmedAt = now
			s.LastDigest = now
		}
		out = s
		return putSubscriber(tx, s)
	})
	if err != nil {
		return nil, err
	}
	c.adjustCounts(from, stateConfirmed)
	return out, nil
}

// Pending returns the subscription a confirmation token would confirm,
// without confirming it (ErrBadToken as Confirm would answer): the
// confirmation page shows what the button confirms, the webhook URL
// among it, which the mail does not quote.
func (c *Community) Pending(token string) (*Subscriber, error) {
	if len(token) != 43 {
		return nil, ErrBadToken
	}
	now := c.now()
	var out *Subscriber
	err := c.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bTokens).Get(hashToken(token))
		if v == nil {
			return ErrBadToken
		}
		var rec tokenRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return err
		}
		if !now.Before(rec.Expires) {
			return ErrBadToken
		}
		s, err := getSubscriber(tx, rec.ID)
		if err != nil {
			return err
		}
		if s == nil {
			return ErrBadToken
		}
		out = s
		return nil
	})
	return out, err
}

// subscriberByLink returns the subscriber a link token of one of the
// purposes names, or ErrBadToken.
func (c *Community) subscriberByLink(tx *bolt.Tx, token string, purposes ...string) (*Subscriber, error) {
	for _, p := range purposes {
		id := c.keys.openLink(p, token)
		if id == "" {
			continue
		}
		s, err := getSubscriber(tx, id)
		if err != nil {
			return nil, err
		}
		if s == nil || !s.Confirmed {
			return nil, ErrBadToken
		}
		return s, nil
	}
	return nil, ErrBadToken
}

// Manage returns the subscriber a manage token is for (ErrBadToken when
// it is not a manage token of a confirmed subscription).
func (c *Community) Manage(token string) (*Subscriber, error) {
	var s *Subscriber
	err := c.db.View(func(tx *bolt.Tx) (err error) {
		s, err = c.subscriberByLink(tx, token, purposeManage)
		return err
	})
	return s, err
}

// Update replaces a subscriber's rules, expectations and channels (the
// address is not changed here: req.Email is ignored).
func (c *Community) Update(ctx context.Context, token string, req Request) error {
	rules, expect, err := checkRequest(req, c.lim.MaxRules)
	if err != nil {
		return err
	}
	return c.db.Update(func(tx *bolt.Tx) error {
		s, err := c.subscriberByLink(tx, token, purposeManage)
		if err != nil {
			return err
		}
		s.Rules, s.Expect, s.Mail, s.Webhook = rules, expect, req.Mail, req.Webhook
		return putSubscriber(tx, s)
	})
}

// Unsubscribe deletes the subscriber an unsubscribe or manage token is
// for, with its queue, digest, feed, pending expectations and tokens.
func (c *Community) Unsubscribe(ctx context.Context, token string) error {
	var from string
	err := c.db.Update(func(tx *bolt.Tx) error {
		s, err := c.subscriberByLink(tx, token, purposeUnsubscribe, purposeManage)
		if err != nil {
			return err
		}
		from = stateOf(s)
		return deleteSubscriber(tx, s)
	})
	if err != nil {
		return err
	}
	c.adjustCounts(from, "")
	return nil
}

func deleteSubscriber(tx *bolt.Tx, s *Subscriber) error {
	if err := tx.Bucket(bSubscribers).Delete([]byte(s.ID)); err != nil {
		return err
	}
	eb := tx.Bucket(bEmails)
	if id := eb.Get([]byte(strings.ToLower(s.Email))); string(id) == s.ID {
		if err := eb.Delete([]byte(strings.ToLower(s.Email))); err != nil {
			return err
		}
	}
	if err := deleteTokens(tx, s.ID); err != nil {
		return err
	}
	ik := idKey(s.ID)
	for _, b := range [][]byte{bQueue, bDigest, bFeed} {
		if err := deletePrefix(tx.Bucket(b), ik); err != nil {
			return err
		}
	}
	if err := deleteExpecting(tx, ik); err != nil {
		return err
	}
	return bumpGeneration(tx)
}

func deletePrefix(b *bolt.Bucket, prefix []byte) error {
	var dead [][]byte
	cur := b.Cursor()
	for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
		dead = append(dead, bytes.Clone(k))
	}
	for _, k := range dead {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// deleteExpecting deletes a subscriber's held uploads (keyed path, 0,
// ID: a scan, but the bucket holds only uploads awaiting their bundle).
func deleteExpecting(tx *bolt.Tx, ik []byte) error {
	b := tx.Bucket(bExpecting)
	var dead [][]byte
	cur := b.Cursor()
	for k, _ := cur.First(); k != nil; k, _ = cur.Next() {
		if bytes.HasSuffix(k, ik) {
			dead = append(dead, bytes.Clone(k))
		}
	}
	for _, k := range dead {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// sweep deletes, at most once an hour, pending subscriptions whose
// confirmation expired and rate windows that ended, so strangers'
// requests do not fill the state.
func (c *Community) sweep() {
	now := c.now()
	c.sweepMu.Lock()
	if now.Sub(c.lastSweep) < time.Hour && !now.Before(c.lastSweep) {
		c.sweepMu.Unlock()
		return
	}
	c.lastSweep = now
	c.sweepMu.Unlock()
	removed := 0
	err := c.db.Update(func(tx *bolt.Tx) error {
		var dead []*Subscriber
		err := tx.Bucket(bSubscribers).ForEach(func(k, v []byte) error {
			var s Subscriber
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			if !s.Confirmed && now.Sub(s.Created) > c.cfg.ConfirmTTL {
				dead = append(dead, &s)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, s := range dead {
			if err := deleteSubscriber(tx, s); err != nil {
				return err
			}
		}
		removed = len(dead)
		rb := tx.Bucket(bRate)
		var old [][]byte
		long := max(c.lim.Window, c.lim.AddressWindow)
		err = rb.ForEach(func(k, v []byte) error {
			var w rateWindow
			if json.Unmarshal(v, &w) != nil || now.Sub(w.Start) > long {
				old = append(old, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range old {
			if err := rb.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		c.log.Error("community: sweeping expired subscriptions", "err", err)
		return
	}
	for range removed {
		c.adjustCounts(statePending, "")
	}
}

// Subscriber states, the label of the subscribers gauge.
const (
	statePending   = "pending"
	stateConfirmed = "confirmed"
	stateSuspended = "suspended"
)

func stateOf(s *Subscriber) string {
	switch {
	case !s.Confirmed:
		return statePending
	case s.Suspended:
		return stateSuspended
	}
	return stateConfirmed
}

func (c *Community) countSubscribers() error {
	counts := map[string]float64{}
	err := c.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bSubscribers).ForEach(func(k, v []byte) error {
			var s Subscriber
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("community: subscriber %s: %w", k, err)
			}
			counts[stateOf(&s)]++
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, st := range []string{statePending, stateConfirmed, stateSuspended} {
		c.metrics.subscribers.WithLabelValues(st).Set(counts[st])
	}
	return nil
}

func (c *Community) adjustCounts(from, to string) {
	if from == to {
		return
	}
	if from != "" {
		c.metrics.subscribers.WithLabelValues(from).Dec()
	}
	if to != "" {
		c.metrics.subscribers.WithLabelValues(to).Inc()
	}
}

func seqKey(prefix []byte, seq uint64) []byte {
	k := make([]byte, len(prefix)+8)
	copy(k, prefix)
	binary.BigEndian.PutUint64(k[len(prefix):], seq)
	return k
}
