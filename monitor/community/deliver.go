package community

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/CPAN-Security/cpan-tlog/monitor/notify"
	bolt "go.etcd.io/bbolt"
)

// Deliver ends a round: it judges the uploads whose Sigstore bundle did
// not follow within ExpectGrace (an alert each), then sends, per
// subscriber and channel, one message holding its queued alerts (at most
// maxItemsPerMessage; more make more messages) and deletes exactly the
// sent items in a transaction after the send. A crash between the two
// sends that one message again, with the same Message-ID and
// Idempotency-Key. A permanent mail failure counts a bounce (MaxBounces
// in a row suspend the address's mail; a success resets the count); a
// transient failure leaves the items for the next round.
func (c *Community) Deliver(ctx context.Context) error {
	c.deliverMu.Lock()
	defer c.deliverMu.Unlock()
	c.sweep()
	if err := c.judgeOverdue(); err != nil {
		return err
	}
	var errs []error
	failed := map[string]bool{}   // subscriber and channel that failed this round: not tried again in it
	sent := map[string]int{}      // messages sent this round, by subscriber and channel
	var webhookTime time.Duration // spent posting to webhooks this round
	// Each pass sends at most maxItemsPerMessage per subscriber and
	// channel; the bound on passes keeps a queue that does not shrink (a
	// bug, a delete failing without an error) from looping forever.
	for pass := 0; pass < maxPasses; pass++ {
		batch, err := c.nextBatches()
		if err != nil {
			return err
		}
		// Mail first: a subscriber's slow webhook must not hold up
		// everyone's mail.
		slices.SortStableFunc(batch, func(a, b queued) int { return cmp.Compare(channelOrder(a.ch), channelOrder(b.ch)) })
		progress := false
		for _, b := range batch {
			if err := ctx.Err(); err != nil {
				return err
			}
			if failed[b.id+string(b.ch)] {
				continue
			}
			if sent[b.id+string(b.ch)] >= maxMessagesPerRound {
				// Summarised in one message; nothing more this round.
				failed[b.id+string(b.ch)] = true
				if err := c.deliverOverflow(ctx, b); err != nil {
					errs = append(errs, err)
				} else {
					progress = true
				}
				continue
			}
			if b.ch == chanWebhook && webhookTime >= webhookRoundBudget {
				// Webhooks that answer slowly have had their share of
				// this round; the rest wait for the next.
				failed[b.id+string(b.ch)] = true
				continue
			}
			start := time.Now()
			done, err := c.deliverOne(ctx, b)
			if b.ch == chanWebhook {
				webhookTime += time.Since(start)
			}
			if done && err == nil {
				sent[b.id+string(b.ch)]++
			}
			if err != nil {
				errs = append(errs, err)
			}
			// An error after a send (the state could not record it)
			// leaves the items queued: trying again in this round would
			// send the same message once per pass.
			if !done || err != nil {
				failed[b.id+string(b.ch)] = true
			}
			progress = progress || (done && err == nil)
		}
		if !progress {
			break // what is left failed this round
		}
	}
	c.updateQueueHealth()
	return errors.Join(errs...)
}

// webhookRoundBudget bounds the time one round spends posting to
// subscribers' webhooks: each may take its timeout (10 s), and a hundred
// hanging endpoints would otherwise delay every round by minutes.
var webhookRoundBudget = time.Minute

// channelOrder sorts mail before webhooks.
func channelOrder(ch byte) int {
	if ch == chanMail {
		return 0
	}
	return 1
}

// queued is one message's worth of a subscriber's queue on one channel.
type queued struct {
	id    string
	ch    byte
	keys  [][]byte
	items []Item
	more  bool // the queue holds more than this message
}

// nextBatches reads, for each subscriber and channel with a queue, its
// first maxItemsPerMessage items.
func (c *Community) nextBatches() ([]queued, error) {
	var out []queued
	err := c.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bQueue).Cursor()
		var q *queued
		for k, v := cur.First(); k != nil; k, v = cur.Next() {
			if len(k) != 16+1+8 {
				continue
			}
			prefix := k[:17]
			if q == nil || !bytes.Equal(prefix, append(idKey(q.id), q.ch)) {
				out = append(out, queued{id: fmt.Sprintf("%x", k[:16]), ch: k[16]})
				q = &out[len(out)-1]
			}
			if len(q.keys) == maxItemsPerMessage {
				q.more = true
				continue
			}
			var it Item
			if err := json.Unmarshal(v, &it); err != nil {
				return fmt.Errorf("community: queued item %x: %w", k, err)
			}
			q.keys = append(q.keys, bytes.Clone(k))
			q.items = append(q.items, it)
		}
		return nil
	})
	return out, err
}

// deliverOne sends one message; done says whether its items left the
// queue (sent, or dropped because the channel is gone).
func (c *Community) deliverOne(ctx context.Context, q queued) (done bool, err error) {
	var s *Subscriber
	if err := c.db.View(func(tx *bolt.Tx) (err error) {
		s, err = getSubscriber(tx, q.id)
		return err
	}); err != nil {
		return false, err
	}
	gone := s == nil || !s.Confirmed ||
		(q.ch == chanMail && (!s.Mail || s.Suspended)) ||
		(q.ch == chanWebhook && s.Webhook == "")
	if gone {
		return true, c.dropQueued(q.keys, nil)
	}
	msgID := c.messageID(append([][]byte{{q.ch}}, q.keys...)...)
	switch q.ch {
	case chanMail:
		m := c.alertMail(s, q.items, msgID)
		err = c.cfg.Sender.Send(ctx, m)
		if err != nil {
			c.metrics.failures.WithLabelValues("mail").Inc()
			if notify.IsPermanent(err) {
				return true, c.bounced(s.ID, q.keys, err)
			}
			return false, c.failed(q, fmt.Errorf("community: mail to subscriber %s: %w", s.ID[:8], err))
		}
	case chanWebhook:
		if c.cfg.Webhook == nil {
			return false, nil
		}
		body, jerr := json.Marshal(c.webhookBody(s, q.items, msgID))
		if jerr != nil {
			return false, jerr
		}
		err = c.cfg.Webhook.Post(ctx, s.Webhook, body, msgID, []byte(c.WebhookSecret(s)))
		if err != nil {
			c.metrics.failures.WithLabelValues("webhook").Inc()
			err = fmt.Errorf("community: webhook of subscriber %s: %w", s.ID[:8], err)
			if notify.IsPermanent(err) {
				// The endpoint refused them for good (a 4xx, a refused
				// address): retrying would repeat that; the feed keeps them.
				return true, errors.Join(err, c.dropQueued(q.keys, nil))
			}
			return false, c.failed(q, err)
		}
	default:
		return true, c.dropQueued(q.keys, nil)
	}
	if c.testAfterSend != nil {
		c.testAfterSend()
	}
	channel := map[byte]string{chanMail: "mail", chanWebhook: "webhook"}[q.ch]
	c.metrics.delivered.WithLabelValues(channel, "alert").Inc()
	return true, c.dropQueued(q.keys, func(tx *bolt.Tx) error {
		if q.ch != chanMail {
			return nil
		}
		return resetBounces(tx, s.ID)
	})
}

// failed leaves a batch queued for the next round, unless its oldest item
// has waited dropAfter: then the channel has been failing for days, and
// the items (kept in the feed) are dropped so the state stays bounded.
func (c *Community) failed(q queued, err error) error {
	if len(q.items) > 0 && c.now().Sub(q.items[0].Seen) > dropAfter {
		c.log.Warn("community: dropping queued alerts a channel refused for a week (they stay in the feed)", "items", len(q.keys), "err", err)
		return errors.Join(err, c.dropQueued(q.keys, nil))
	}
	return err
}

func (c *Community) dropQueued(keys [][]byte, also func(tx *bolt.Tx) error) error {
	return c.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bQueue)
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		if also != nil {
			return also(tx)
		}
		return nil
	})
}

func resetBounces(tx *bolt.Tx, id string) error {
	s, err := getSubscriber(tx, id)
	if err != nil || s == nil || s.Bounces == 0 {
		return err
	}
	s.Bounces = 0
	return storeSubscriber(tx, s)
}

// bounced counts a permanent mail failure; the items are dropped (the
// address refused them; the feed keeps them), and at MaxBounces the
// address's mail is suspended until it confirms again.
func (c *Community) bounced(id string, keys [][]byte, cause error) error {
	c.metrics.bounces.Inc()
	suspended := false
	err := c.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bQueue)
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		s, err := getSubscriber(tx, id)
		if err != nil || s == nil {
			return err
		}
		s.Bounces++
		if s.Bounces >= MaxBounces && !s.Suspended {
			s.Suspended, suspended = true, true
			if err := deletePrefix(b, append(idKey(id), chanMail)); err != nil {
				return err
			}
			return putSubscriber(tx, s)
		}
		return storeSubscriber(tx, s)
	})
	if err != nil {
		return err
	}
	if suspended {
		c.adjustCounts(stateConfirmed, stateSuspended)
		c.log.Warn("community: a subscriber's mail bounced; suspended until it confirms again", "subscriber", id[:8], "bounces", MaxBounces, "err", cause)
	}
	return nil
}

// judgeOverdue turns uploads whose bundle did not follow in time into
// alerts, in one transaction.
func (c *Community) judgeOverdue() error {
	now := c.now()
	return c.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bExpecting)
		type found struct {
			k []byte
			h held
		}
		var due []found
		var stale [][]byte // early bundles past their time
		err := b.ForEach(func(k, v []byte) error {
			if bytes.HasPrefix(k, []byte(earlyPrefix)) {
				var eb earlyBundle
				if json.Unmarshal(v, &eb) != nil || !now.Before(eb.Expires) {
					stale = append(stale, bytes.Clone(k))
				}
				return nil
			}
			var h held
			if err := json.Unmarshal(v, &h); err != nil {
				return fmt.Errorf("community: held upload %q: %w", k, err)
			}
			if !now.Before(h.Deadline) {
				due = append(due, found{bytes.Clone(k), h})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		r := router{c: c, tx: tx, now: now}
		for _, f := range due {
			if err := b.Delete(f.k); err != nil {
				return err
			}
			s, err := getSubscriber(tx, f.h.Sub)
			if err != nil {
				return err
			}
			if s == nil || !s.Confirmed {
				continue
			}
			it := f.h.Item
			it.Kind, it.Alert = ItemIdentityMissing, true
			if len(f.h.Expect) > 0 {
				it.Expected = &f.h.Expect[0]
			}
			if err := r.enqueue(&subEntry{s: s, ik: idKey(s.ID)}, it); err != nil {
				return err
			}
		}
		return nil
	})
}

// updateQueueHealth records the oldest item left queued, for Unhealthy.
func (c *Community) updateQueueHealth() {
	var oldest time.Time
	n := 0
	_ = c.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bQueue).ForEach(func(k, v []byte) error {
			n++
			var it struct {
				Seen time.Time `json:"seen"`
			}
			if json.Unmarshal(v, &it) == nil && (oldest.IsZero() || it.Seen.Before(oldest)) {
				oldest = it.Seen
			}
			return nil
		})
	})
	c.metrics.queued.Set(float64(n))
	c.healthMu.Lock()
	c.oldestQueue = oldest
	c.healthMu.Unlock()
}

// Digest sends each subscriber whose digest is due (Subscriber.Digest,
// daily by default) one mail listing the quiet items since the last
// digest (expected uploads), and deletes them with the new LastDigest in
// one transaction after the send: a crash between them sends that digest
// again, with the same Message-ID. Subscribers without mail have their
// digest items dropped when due (the feed has them).
func (c *Community) Digest(ctx context.Context) error {
	c.deliverMu.Lock()
	defer c.deliverMu.Unlock()
	now := c.now()
	type due struct {
		s     *Subscriber
		keys  [][]byte
		items []Item
		more  int
	}
	var all []*due
	err := c.db.View(func(tx *bolt.Tx) error {
		byID := map[string]*due{}
		consider := func(s *Subscriber) *due {
			if !s.Confirmed {
				return nil
			}
			period := s.Digest
			if period <= 0 {
				period = c.cfg.DigestEvery
			}
			if now.Sub(s.LastDigest) < period {
				return nil
			}
			d := &due{s: s}
			byID[s.ID] = d
			all = append(all, d)
			return d
		}
		if c.cfg.DigestEmpty {
			err := tx.Bucket(bSubscribers).ForEach(func(k, v []byte) error {
				s := new(Subscriber)
				if err := json.Unmarshal(v, s); err != nil {
					return err
				}
				consider(s)
				return nil
			})
			if err != nil {
				return err
			}
		}
		cur := tx.Bucket(bDigest).Cursor()
		var last string
		var d *due
		for k, v := cur.First(); k != nil; k, v = cur.Next() {
			if len(k) != 24 {
				continue
			}
			id := fmt.Sprintf("%x", k[:16])
			if id != last {
				last = id
				var ok bool
				if d, ok = byID[id]; !ok {
					s, err := getSubscriber(tx, id)
					if err != nil {
						return err
					}
					d = nil
					if s != nil {
						d = consider(s)
					}
				}
			}
			if d == nil {
				continue
			}
			if len(d.items) >= maxDigestItems {
				d.more++
				d.keys = append(d.keys, bytes.Clone(k))
				continue
			}
			var it Item
			if err := json.Unmarshal(v, &it); err != nil {
				return fmt.Errorf("community: digest item %x: %w", k, err)
			}
			d.keys = append(d.keys, bytes.Clone(k))
			d.items = append(d.items, it)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range all {
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.s.Mail && !d.s.Suspended {
			// Every key, not the first only: a digest sent again after a
			// crash may hold items routed since, and a reused Message-ID
			// would have the recipient's system drop it as a duplicate.
			msgID := c.messageID(append([][]byte{[]byte("digest"), []byte(d.s.ID), []byte(d.s.LastDigest.Format(time.RFC3339Nano))}, d.keys...)...)
			if err := c.cfg.Sender.Send(ctx, c.digestMail(d.s, d.items, d.more, msgID)); err != nil {
				c.metrics.failures.WithLabelValues("mail").Inc()
				if !notify.IsPermanent(err) {
					errs = append(errs, fmt.Errorf("community: digest to subscriber %s: %w", d.s.ID[:8], err))
					continue
				}
				if err := c.bounced(d.s.ID, nil, err); err != nil {
					errs = append(errs, err)
				}
			} else {
				c.metrics.delivered.WithLabelValues("mail", "digest").Inc()
				if c.testAfterSend != nil {
					c.testAfterSend()
				}
			}
		}
		err := c.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bDigest)
			for _, k := range d.keys {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			s, err := getSubscriber(tx, d.s.ID)
			if err != nil || s == nil {
				return err
			}
			s.LastDigest = now
			return storeSubscriber(tx, s)
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deliverOverflow sends subscriber q.id one message on q's channel saying
// how many alerts in their scope are left queued this round, with their
// feed's link, and takes them off the queue (the feed has them): see
// maxMessagesPerRound. Like every message, it is sent before its items
// leave the queue, so a crash between repeats it once.
func (c *Community) deliverOverflow(ctx context.Context, q queued) error {
	var s *Subscriber
	var keys [][]byte
	prefix := append(idKey(q.id), q.ch)
	err := c.db.View(func(tx *bolt.Tx) (err error) {
		if s, err = getSubscriber(tx, q.id); err != nil || s == nil {
			return err
		}
		cur := tx.Bucket(bQueue).Cursor()
		for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		return nil
	})
	if err != nil || s == nil || len(keys) == 0 {
		return err
	}
	msgID := c.messageID(append([][]byte{[]byte("overflow"), {q.ch}}, keys[0], keys[len(keys)-1])...)
	switch q.ch {
	case chanMail:
		if !s.Mail || s.Suspended {
			return c.dropQueued(keys, nil)
		}
		err = c.cfg.Sender.Send(ctx, c.overflowMail(s, len(keys), msgID))
	case chanWebhook:
		if c.cfg.Webhook == nil || s.Webhook == "" {
			return c.dropQueued(keys, nil)
		}
		body, jerr := json.Marshal(webhookMessage{ID: msgID, Kind: "overflow", More: len(keys), Feed: c.FeedURL(s)})
		if jerr != nil {
			return jerr
		}
		err = c.cfg.Webhook.Post(ctx, s.Webhook, body, msgID, []byte(c.WebhookSecret(s)))
	}
	if err != nil {
		channel := map[byte]string{chanMail: "mail", chanWebhook: "webhook"}[q.ch]
		c.metrics.failures.WithLabelValues(channel).Inc()
		// Left queued: the next round tries again.
		return fmt.Errorf("community: summary to subscriber %s: %w", s.ID[:8], err)
	}
	channel := map[byte]string{chanMail: "mail", chanWebhook: "webhook"}[q.ch]
	c.metrics.delivered.WithLabelValues(channel, "overflow").Inc()
	return c.dropQueued(keys, nil)
}
