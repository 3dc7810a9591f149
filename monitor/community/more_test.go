package community

import (
	"fmt"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/CPAN-Security/cpan-tlog/monitor"
)

// A crash between a digest's send and its record sends that digest
// again, with the same Message-ID, once.
func TestDigestCrashRepeatsOne(t *testing.T) {
	w := digestCrashed(t)
	for range 2 {
		if err := w.c.Digest(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ms := w.mail.to("a@example.org")
	if len(ms) != 2 || ms[0].MessageID != ms[1].MessageID || !strings.Contains(ms[1].Text, "Foo-1.0.tar.gz") {
		t.Fatalf("want the digest twice with one Message-ID: %d mails %+v", len(ms), ms)
	}
}

// Many alerts make several bounded messages, none lost or repeated.
func TestManyAlertsSplit(t *testing.T) {
	w := newWorld(t)
	w.subscribe("a@example.org", "author ETHER")
	w.mail.reset()
	for i := range 2*maxItemsPerMessage + 50 {
		w.route(upload(uint64(i), fmt.Sprintf("authors/id/E/ET/ETHER/X-%d.tar.gz", i), "ETHER"))
	}
	w.deliver()
	ms := w.mail.to("a@example.org")
	if len(ms) != 3 {
		t.Fatalf("%d messages", len(ms))
	}
	total := 0
	seen := map[string]bool{}
	for _, m := range ms {
		n := strings.Count(m.Text, "\n    path:")
		if n > maxItemsPerMessage {
			t.Errorf("a message with %d items", n)
		}
		total += n
		if seen[m.MessageID] {
			t.Error("two messages with one Message-ID")
		}
		seen[m.MessageID] = true
	}
	if total != 2*maxItemsPerMessage+50 {
		t.Fatalf("%d items delivered", total)
	}
}

// Pending subscriptions whose confirmation expired are swept, so
// strangers' requests cannot fill the state.
func TestSweepExpiredPending(t *testing.T) {
	w := newWorld(t, func(c *Config) { c.Limits.MaxSubscribers = 2 })
	req := func(a string) Request {
		return Request{Email: a, Rules: []Rule{{Kind: "author", Value: "ETHER"}}, Mail: true}
	}
	for _, a := range []string{"a@example.org", "b@example.org"} {
		if err := w.c.Subscribe(ctx, req(a), "s"); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.c.Subscribe(ctx, req("c@example.org"), "s"); err == nil || !strings.Contains(err.Error(), "as many subscriptions") {
		t.Fatalf("over MaxSubscribers: %v", err)
	}
	w.clock.add(DefaultConfirmTTL + 2*time.Hour)
	if err := w.c.Subscribe(ctx, req("c@example.org"), "s"); err != nil {
		t.Fatalf("after the sweep: %v", err)
	}
	w.db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bSubscribers).Stats().KeyN; n != 1 {
			t.Errorf("%d subscribers kept, want 1", n)
		}
		if tx.Bucket(bEmails).Get([]byte("a@example.org")) != nil {
			t.Error("the expired address is still indexed")
		}
		return nil
	})
	if got := w.metric("cpantlog_community_subscribers", "state", "pending"); got != 1 {
		t.Errorf("pending gauge %v", got)
	}
}

// A bundle logged before the file it signs settles the file when it is
// logged: the declared identity is quiet, another is an alert at once;
// a bundle older than earlyBundleTTL is forgotten.
func TestBundleBeforeFile(t *testing.T) {
	w := newWorld(t, func(c *Config) { c.ExpectGrace = time.Minute })
	w.subscribe("a@example.org", "author ALICE\nexpect issuer="+ghIssuer+" repository=alice/Foo")
	w.mail.reset()
	good, bad, old := "authors/id/A/AL/ALICE/Foo-1.0.tar.gz", "authors/id/A/AL/ALICE/Foo-1.1.tar.gz", "authors/id/A/AL/ALICE/Foo-1.2.tar.gz"
	w.route(bundle(1, good, ghIdentity("alice/Foo", "w.yml")), bundle(2, bad, ghIdentity("mallory/Foo", "w.yml")), bundle(3, old, ghIdentity("alice/Foo", "w.yml")))
	w.deliver()
	w.route(upload(4, good, "ALICE"))
	w.route(upload(5, bad, "ALICE"))
	w.deliver()
	ms := w.mail.to("a@example.org")
	if len(ms) != 1 || !strings.Contains(ms[0].Subject, `"Foo-1.1.tar.gz" carries another Sigstore identity`) {
		t.Fatalf("%+v", ms)
	}
	w.mail.reset()
	w.clock.add(earlyBundleTTL)
	w.deliver()
	w.route(upload(6, old, "ALICE"))
	w.clock.add(time.Minute)
	w.deliver()
	if ms := w.mail.to("a@example.org"); len(ms) != 1 || !strings.Contains(ms[0].Subject, "without the declared") {
		t.Fatalf("after the bundle's time: %+v", ms)
	}
	w.db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bExpecting).Stats().KeyN; n != 0 {
			t.Errorf("%d keys left in %s", n, bExpecting)
		}
		return nil
	})
	if err := w.c.Digest(ctx); err != nil {
		t.Fatal(err)
	}
	if ms := w.mail.to("a@example.org"); len(ms) != 2 || !strings.Contains(ms[1].Text, "Foo-1.0.tar.gz") {
		t.Fatalf("digest: %+v", ms)
	}
}

// With DigestEmpty a due digest goes out with nothing in it (the monitor
// is awake); without, only digests with items do; none before it is due.
func TestDigestEmpty(t *testing.T) {
	for _, empty := range []bool{false, true} {
		w := newWorld(t, func(c *Config) { c.DigestEmpty = empty })
		w.subscribe("a@example.org", "author ETHER")
		w.mail.reset()
		w.clock.add(23 * time.Hour)
		if err := w.c.Digest(ctx); err != nil {
			t.Fatal(err)
		}
		if len(w.mail.sent) != 0 {
			t.Fatalf("a digest before it was due")
		}
		w.clock.add(time.Hour)
		if err := w.c.Digest(ctx); err != nil {
			t.Fatal(err)
		}
		ms := w.mail.to("a@example.org")
		if empty && (len(ms) != 1 || !strings.Contains(ms[0].Text, "Nothing new")) || !empty && len(ms) != 0 {
			t.Fatalf("DigestEmpty %v: %+v", empty, ms)
		}
	}
}

// TestHostileUploadFloodIsNotAMailFlood: anyone can upload thousands of
// files named into a subscriber's namespace; the subscriber gets
// maxMessagesPerRound mails and one more saying how many alerts were
// left out (its feed has them), and the queue is empty after the round.
func TestHostileUploadFloodIsNotAMailFlood(t *testing.T) {
	w := newWorld(t)
	s := w.subscribe("alice@example.org", "namespace Moose::*")
	w.mail.reset()
	const n = 5000
	var evs []monitor.Event
	for i := range n {
		evs = append(evs, upload(uint64(i+1), fmt.Sprintf("authors/id/M/MA/MALLORY/Moose-X%d-1.0.tar.gz", i), "MALLORY"))
	}
	w.route(evs...)
	w.deliver()
	ms := w.mail.to("alice@example.org")
	if len(ms) != maxMessagesPerRound+1 {
		t.Fatalf("%d mails in one round, want %d and a summary", len(ms), maxMessagesPerRound)
	}
	left := n - maxMessagesPerRound*maxItemsPerMessage
	last := ms[len(ms)-1]
	if !strings.Contains(last.Subject, fmt.Sprintf("%d more alerts", left)) || !strings.Contains(last.Text, w.c.FeedURL(s)) || last.ListUnsubscribe == "" {
		t.Errorf("the summary: %+v", last)
	}
	if q := w.queued(); q != 0 {
		t.Errorf("%d items left queued after the round", q)
	}
	// The next round sends nothing more.
	w.mail.reset()
	w.deliver()
	if ms := w.mail.to("alice@example.org"); len(ms) != 0 {
		t.Errorf("the next round sent %d mails", len(ms))
	}
}
