package community

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/CPAN-Security/cpan-tlog/monitor"
	"github.com/CPAN-Security/cpan-tlog/monitor/notify"
)

var ctx = context.Background()

// An address that never followed its confirmation link receives the
// confirmation and nothing else: no alert, no digest, however much is
// logged in the scope it asked for.
func TestUnconfirmedReceivesOnlyConfirmation(t *testing.T) {
	w := newWorld(t, func(c *Config) { c.DigestEmpty = true })
	r, _, _ := ParseRequestText("author ETHER\npath authors/id/E/ET/ETHER/*")
	if err := w.c.Subscribe(ctx, Request{Email: "victim@example.org", Rules: r, Mail: true, Webhook: "https://hook.example/x"}, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	w.route(upload(5, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", "ETHER"),
		monitor.Event{Finding: &monitor.Finding{ID: "f1", Kind: "uploader-mismatch", Authors: []string{"ETHER"}, Message: "m"}})
	w.deliver()
	w.clock.add(48 * time.Hour)
	if err := w.c.Digest(ctx); err != nil {
		t.Fatal(err)
	}
	ms := w.mail.to("victim@example.org")
	if len(ms) != 1 || !strings.Contains(ms[0].Subject, "confirm") {
		t.Fatalf("an unconfirmed address got %d mails: %+v", len(ms), ms)
	}
	if strings.Contains(ms[0].Text, "hook.example") {
		t.Error("the confirmation mail quotes the requester's webhook URL to the address owner")
	}
	if ms[0].ListUnsubscribe != "" {
		t.Error("a confirmation carries an unsubscribe link, but there is no subscription yet")
	}
	w.db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bQueue, bFeed, bDigest, bExpecting} {
			if n := tx.Bucket(b).Stats().KeyN; n != 0 {
				t.Errorf("%s holds %d keys for an unconfirmed address", b, n)
			}
		}
		return nil
	})
}

// A confirmation token works once, and not after ConfirmTTL; the answers
// for used, expired and unknown tokens are the same.
func TestConfirmTokenOnceAndExpiry(t *testing.T) {
	w := newWorld(t)
	rules := []Rule{{Kind: "dist", Value: "Try-Tiny"}}
	if err := w.c.Subscribe(ctx, Request{Email: "a@example.org", Rules: rules, Mail: true}, "s1"); err != nil {
		t.Fatal(err)
	}
	tok := w.confirmToken("a@example.org")
	s, err := w.c.Confirm(ctx, tok)
	if err != nil || !s.Confirmed || s.Email != "a@example.org" {
		t.Fatalf("Confirm: %+v, %v", s, err)
	}
	if _, err := w.c.Confirm(ctx, tok); !errors.Is(err, ErrBadToken) {
		t.Fatalf("a used token: %v, want ErrBadToken", err)
	}
	if _, err := w.c.Confirm(ctx, strings.Repeat("A", 43)); !errors.Is(err, ErrBadToken) {
		t.Fatalf("an unknown token: %v", err)
	}

	if err := w.c.Subscribe(ctx, Request{Email: "b@example.org", Rules: rules, Mail: true}, "s1"); err != nil {
		t.Fatal(err)
	}
	tok = w.confirmToken("b@example.org")
	w.clock.add(DefaultConfirmTTL)
	if _, err := w.c.Confirm(ctx, tok); !errors.Is(err, ErrBadToken) {
		t.Fatalf("an expired token: %v, want ErrBadToken", err)
	}
	// A new request makes a new link, and the old one stays dead.
	w.clock.add(time.Minute)
	if err := w.c.Subscribe(ctx, Request{Email: "b@example.org", Rules: rules, Mail: true}, "s1"); err != nil {
		t.Fatal(err)
	}
	tok2 := w.confirmToken("b@example.org")
	if tok2 == tok {
		t.Fatal("the same confirmation token twice")
	}
	if _, err := w.c.Confirm(ctx, tok); !errors.Is(err, ErrBadToken) {
		t.Fatalf("the old token after a new request: %v", err)
	}
	if _, err := w.c.Confirm(ctx, tok2); err != nil {
		t.Fatal(err)
	}
}

// A re-request for a pending address replaces its rules, and the first
// mail's link (which listed the first rules) no longer confirms.
func TestPendingReRequestInvalidatesOldLink(t *testing.T) {
	w := newWorld(t)
	if err := w.c.Subscribe(ctx, Request{Email: "a@example.org", Rules: []Rule{{Kind: "author", Value: "EVIL"}}, Mail: true}, "s1"); err != nil {
		t.Fatal(err)
	}
	old := w.confirmToken("a@example.org")
	if err := w.c.Subscribe(ctx, Request{Email: "a@example.org", Rules: []Rule{{Kind: "author", Value: "ETHER"}}, Mail: true}, "s2"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.c.Confirm(ctx, old); !errors.Is(err, ErrBadToken) {
		t.Fatalf("old link: %v", err)
	}
	s, err := w.c.Confirm(ctx, w.confirmToken("a@example.org"))
	if err != nil || len(s.Rules) != 1 || s.Rules[0].Value != "ETHER" {
		t.Fatalf("%+v %v", s, err)
	}
}

// A confirmed address asked for again gets a mail with its manage link,
// its rules stay, and the requester is told nothing different.
func TestSubscribeConfirmedAddress(t *testing.T) {
	w := newWorld(t)
	s := w.subscribe("a@example.org", "author ETHER")
	w.mail.reset()
	err := w.c.Subscribe(ctx, Request{Email: "a@example.org", Rules: []Rule{{Kind: "author", Value: "EVIL"}}, Mail: true}, "s9")
	if err != nil {
		t.Fatalf("the requester learns the address is subscribed: %v", err)
	}
	ms := w.mail.to("a@example.org")
	if len(ms) != 1 || !strings.Contains(ms[0].Text, w.c.ManageURL(s)) || strings.Contains(ms[0].Text, "EVIL") {
		t.Fatalf("mail: %+v", ms)
	}
	got, err := w.c.Manage(strings.TrimPrefix(w.c.ManageURL(s), "https://monitor.example/manage?t="))
	if err != nil || got.Rules[0].Value != "ETHER" {
		t.Fatalf("rules changed by a stranger's request: %+v %v", got, err)
	}
}

// A finding in a subscriber's scope is delivered once; a crash between
// the send and the queue's delete repeats exactly that one message, with
// the same Message-ID, and nothing else.
func TestFindingOnceAndCrashRepeatsOne(t *testing.T) {
	w := newWorld(t)
	w.subscribe("a@example.org", "author ETHER")
	w.subscribe("b@example.org", "author HAARG")
	f := func(id, author string) monitor.Event {
		i := uint64(7)
		return monitor.Event{Finding: &monitor.Finding{ID: id, Kind: "uploader-mismatch", Security: true, Index: &i,
			Path: "authors/id/" + author[:1] + "/" + author[:2] + "/" + author + "/X-1.tar.gz", Authors: []string{author}, Message: "uploaded by MALLORY"}}
	}
	w.mail.reset()
	w.route(f("f1", "ETHER"))
	w.deliver()
	w.deliver()
	ms := w.mail.to("a@example.org")
	if len(ms) != 1 || !strings.Contains(ms[0].Text, `"uploaded by MALLORY"`) || ms[0].MessageID == "" || ms[0].ListUnsubscribe == "" {
		t.Fatalf("want one alert: %+v", ms)
	}

	// Crash after the first send of the next round.
	w.mail.reset()
	w.route(f("f2", "ETHER"), f("f3", "HAARG"))
	w.c.testAfterSend = func() { panic("crash") }
	func() {
		defer func() { recover() }()
		w.c.Deliver(ctx)
	}()
	if len(w.mail.sent) != 1 {
		t.Fatalf("%d sent before the crash", len(w.mail.sent))
	}
	first := w.mail.sent[0]
	w.open() // the restart
	w.deliver()
	w.deliver()
	var repeats, others int
	for _, m := range w.mail.sent[1:] {
		if m.To == first.To {
			repeats++
			if m.MessageID != first.MessageID || m.Text != first.Text {
				t.Errorf("the repeat differs: %q vs %q", m.MessageID, first.MessageID)
			}
		} else {
			others++
		}
	}
	if repeats != 1 || others != 1 {
		t.Fatalf("after the crash: %d repeats of the message sent, %d others; want 1 and 1", repeats, others)
	}
}

// An index owner change reaches both the previous and the new owner, once
// each, with both index versions' log indexes as evidence.
func TestOwnerChangeReachesBothOwners(t *testing.T) {
	w := newWorld(t)
	w.subscribe("alice@example.org", "author ALICE")
	w.subscribe("bob@example.org", "author BOB\nnamespace Bob::Util")
	w.subscribe("carol@example.org", "namespace Bob::*")
	w.subscribe("dave@example.org", "author DAVE")
	w.mail.reset()
	idx, prev := uint64(900), uint64(850)
	w.route(monitor.Event{Finding: &monitor.Finding{ID: "index-owner-changed:900:Bob::Util", Kind: "index-owner-changed", Security: true,
		Index: &idx, PrevIndex: &prev, Path: "modules/02packages.details.txt.gz", Authors: []string{"ALICE", "BOB"}, Dists: []string{"Bob-Util"},
		Packages: []string{"Bob::Util"}, Message: "Bob::Util moved from BOB to ALICE"}})
	w.deliver()
	for _, a := range []string{"alice@example.org", "bob@example.org", "carol@example.org"} {
		ms := w.mail.to(a)
		if len(ms) != 1 {
			t.Fatalf("%s got %d mails", a, len(ms))
		}
		for _, want := range []string{"log index: 900", "prev index: 850", "https://log.example/entry/850", `"index-owner-changed"`} {
			if !strings.Contains(strings.Join(strings.Fields(ms[0].Text), " "), want) {
				t.Errorf("%s's mail lacks %q:\n%s", a, want, ms[0].Text)
			}
		}
	}
	if bob := w.mail.to("bob@example.org")[0]; strings.Contains(bob.Text, "[2]") || strings.Contains(bob.Subject, "alerts") {
		t.Errorf("bob got the change twice in one mail:\n%s", bob.Text)
	}
	if !strings.Contains(w.mail.to("bob@example.org")[0].Text, "author BOB; namespace Bob::Util") {
		t.Errorf("bob's mail does not say which of his rules matched:\n%s", w.mail.to("bob@example.org")[0].Text)
	}
	if n := len(w.mail.to("dave@example.org")); n != 0 {
		t.Errorf("an unconcerned subscriber got %d mails", n)
	}
}

// An upload with the declared identity goes to the digest only; one with
// another identity, or without a bundle in time, is an alert naming what
// differs.
func TestExpectations(t *testing.T) {
	w := newWorld(t, func(c *Config) { c.ExpectGrace = 10 * time.Minute })
	w.subscribe("a@example.org", "author ALICE\nexpect issuer="+ghIssuer+" repository=alice/Foo workflow=.github/workflows/release.yml dists=Foo")
	w.mail.reset()
	good := "authors/id/A/AL/ALICE/Foo-1.0.tar.gz"
	w.route(upload(10, good, "ALICE"))
	w.deliver()
	if len(w.mail.sent) != 0 {
		t.Fatalf("an upload awaiting its bundle alerted: %+v", w.mail.sent)
	}
	w.route(bundle(11, good, ghIdentity("alice/Foo", ".github/workflows/release.yml")))
	w.deliver()
	if len(w.mail.sent) != 0 {
		t.Fatalf("the expected upload alerted: %+v", w.mail.sent[0].Text)
	}

	// Another repository.
	other := "authors/id/A/AL/ALICE/Foo-1.1.tar.gz"
	w.route(upload(12, other, "ALICE"), bundle(13, other, ghIdentity("mallory/Foo", ".github/workflows/release.yml")))
	w.deliver()
	ms := w.mail.to("a@example.org")
	if len(ms) != 1 || !strings.Contains(ms[0].Subject, "another Sigstore identity") || !strings.Contains(ms[0].Text, "differs:    repository\n") ||
		!strings.Contains(ms[0].Text, "https://github.com/mallory/Foo") {
		t.Fatalf("another identity: %+v", ms)
	}

	// No bundle: nothing until the grace is over, then an alert.
	w.mail.reset()
	none := "authors/id/A/AL/ALICE/Foo-1.2.tar.gz"
	w.route(upload(14, none, "ALICE"))
	w.deliver()
	if len(w.mail.sent) != 0 {
		t.Fatal("alerted before the grace was over")
	}
	w.clock.add(10 * time.Minute)
	w.deliver()
	ms = w.mail.to("a@example.org")
	if len(ms) != 1 || !strings.Contains(ms[0].Subject, "uploaded without the declared Sigstore identity") || !strings.Contains(ms[0].Text, "repository=alice/Foo") {
		t.Fatalf("no bundle: %+v", ms)
	}

	// Not covered by the expectation (another dist): reported as before.
	w.mail.reset()
	w.route(upload(15, "authors/id/A/AL/ALICE/Bar-1.0.tar.gz", "ALICE"))
	w.deliver()
	if ms := w.mail.to("a@example.org"); len(ms) != 1 || !strings.Contains(ms[0].Subject, "ALERT: upload of \"Bar-1.0.tar.gz\"") {
		t.Fatalf("an upload without an expectation: %+v", ms)
	}

	// The digest holds the expected one only.
	w.mail.reset()
	w.clock.add(24 * time.Hour)
	if err := w.c.Digest(ctx); err != nil {
		t.Fatal(err)
	}
	ms = w.mail.to("a@example.org")
	if len(ms) != 1 || !strings.Contains(ms[0].Text, "Foo-1.0.tar.gz") || strings.Contains(ms[0].Text, "Foo-1.1") || !strings.Contains(ms[0].Subject, "1 expected") {
		t.Fatalf("digest: %+v", ms)
	}
	if err := w.c.Digest(ctx); err != nil {
		t.Fatal(err)
	}
	if len(w.mail.sent) != 1 {
		t.Fatal("a digest sent twice")
	}
}

// ExpectGrace 0 (Config: negative) judges at the end of the round that
// audited the upload.
func TestExpectGraceZero(t *testing.T) {
	w := newWorld(t, func(c *Config) { c.ExpectGrace = -1 })
	w.subscribe("a@example.org", "dist Foo\nexpect issuer="+ghIssuer+" repository=alice/Foo")
	w.mail.reset()
	w.route(upload(10, "authors/id/A/AL/ALICE/Foo-1.0.tar.gz", "ALICE"))
	w.deliver()
	if ms := w.mail.to("a@example.org"); len(ms) != 1 || !strings.Contains(ms[0].Subject, "without the declared") {
		t.Fatalf("%+v", ms)
	}
}

// MaxBounces permanent failures in a row suspend the address's mail; a
// new confirmation resumes it.
func TestBounceSuspends(t *testing.T) {
	w := newWorld(t)
	s := w.subscribe("a@example.org", "author ETHER")
	w.mail.fail = func(m notify.Mail) error {
		if m.To == "a@example.org" && strings.Contains(m.Subject, "ALERT") {
			return &notify.PermanentError{Err: errors.New("550 no such user")}
		}
		return nil
	}
	for i := range MaxBounces {
		w.route(upload(uint64(i), "authors/id/E/ET/ETHER/X-1.tar.gz", "ETHER"))
		w.deliver()
	}
	w.db.View(func(tx *bolt.Tx) error {
		got, _ := getSubscriber(tx, s.ID)
		if !got.Suspended || got.Bounces != MaxBounces {
			t.Errorf("after %d bounces: %+v", MaxBounces, got)
		}
		if n := tx.Bucket(bQueue).Stats().KeyN; n != 0 {
			t.Errorf("%d items left queued for a suspended address", n)
		}
		return nil
	})
	// Suspended: routing no longer queues mail for it.
	w.route(upload(99, "authors/id/E/ET/ETHER/X-2.tar.gz", "ETHER"))
	w.db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bQueue).Stats().KeyN; n != 0 {
			t.Errorf("routed to a suspended address: %d", n)
		}
		return nil
	})
	// Transient failures do not count.
	w.mail.fail = nil
	if err := w.c.Subscribe(ctx, Request{Email: "a@example.org", Rules: []Rule{{Kind: "author", Value: "XX"}}, Mail: true}, "s"); err != nil {
		t.Fatal(err)
	}
	got, err := w.c.Confirm(ctx, w.confirmToken("a@example.org"))
	if err != nil || got.Suspended || got.Bounces != 0 || got.Rules[0].Value != "ETHER" {
		t.Fatalf("resumed: %+v %v", got, err)
	}
}

// A transient failure keeps the items for the next round and does not
// count as a bounce.
func TestTransientFailureRetries(t *testing.T) {
	w := newWorld(t)
	w.subscribe("a@example.org", "author ETHER")
	w.mail.reset()
	w.mail.fail = func(m notify.Mail) error { return errors.New("421 try later") }
	w.route(upload(1, "authors/id/E/ET/ETHER/X-1.tar.gz", "ETHER"))
	if err := w.c.Deliver(ctx); err == nil {
		t.Fatal("a failed delivery reported no error")
	}
	w.mail.fail = nil
	w.deliver()
	if ms := w.mail.to("a@example.org"); len(ms) != 1 {
		t.Fatalf("after the retry: %d mails", len(ms))
	}
}

// Rate limits are kept in the state: a restart does not reset them, and
// a request over the limit changes nothing and sends nothing.
func TestRateLimitsHoldAcrossReopen(t *testing.T) {
	w := newWorld(t, func(c *Config) { c.Limits = Limits{PerAddress: 2, PerSource: 3} })
	req := func(addr string) Request {
		return Request{Email: addr, Rules: []Rule{{Kind: "author", Value: "ETHER"}}, Mail: true}
	}
	for range 2 {
		if err := w.c.Subscribe(ctx, req("a@example.org"), "203.0.113.1"); err != nil {
			t.Fatal(err)
		}
	}
	w.open()
	if err := w.c.Subscribe(ctx, req("a@example.org"), "203.0.113.2"); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("third mail to one address after a restart: %v", err)
	}
	if err := w.c.Subscribe(ctx, req("b@example.org"), "203.0.113.1"); err != nil {
		t.Fatal(err)
	}
	w.open()
	before := len(w.mail.sent)
	if err := w.c.Subscribe(ctx, req("c@example.org"), "203.0.113.1"); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("fourth request from one source after a restart: %v", err)
	}
	if len(w.mail.sent) != before {
		t.Error("a rate-limited request sent mail")
	}
	w.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bEmails).Get([]byte("c@example.org")) != nil {
			t.Error("a rate-limited request stored a subscription")
		}
		return nil
	})
	w.clock.add(DefaultWindow)
	if err := w.c.Subscribe(ctx, req("c@example.org"), "203.0.113.1"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

// Unsubscribe removes the subscriber, its queue, digest, feed, held
// uploads and tokens; its links then fail like any bad token.
func TestUnsubscribeRemovesEverything(t *testing.T) {
	w := newWorld(t)
	s := w.subscribe("a@example.org", "author ALICE\nexpect issuer="+ghIssuer+" repository=alice/Foo dists=Foo")
	keep := w.subscribe("b@example.org", "author ALICE")
	w.route(upload(1, "authors/id/A/AL/ALICE/Bar-1.tar.gz", "ALICE"), upload(2, "authors/id/A/AL/ALICE/Foo-1.tar.gz", "ALICE"),
		upload(3, "authors/id/A/AL/ALICE/Foo-2.tar.gz", "ALICE"), bundle(4, "authors/id/A/AL/ALICE/Foo-2.tar.gz", ghIdentity("alice/Foo", "w.yml")))
	// A pending confirmation token too (a suspended address gets one).
	w.db.Update(func(tx *bolt.Tx) error {
		got, _ := getSubscriber(tx, s.ID)
		got.Suspended = true
		return putSubscriber(tx, got)
	})
	if err := w.c.Subscribe(ctx, Request{Email: "a@example.org", Rules: []Rule{{Kind: "author", Value: "XX"}}}, "s"); err != nil {
		t.Fatal(err)
	}
	count := func() map[string]int {
		n := map[string]int{}
		w.db.View(func(tx *bolt.Tx) error {
			for _, b := range allBuckets {
				tx.Bucket(b).ForEach(func(k, v []byte) error {
					if strings.Contains(string(k), s.ID) || strings.Contains(string(k), string(idKey(s.ID))) || strings.Contains(string(v), s.ID) {
						n[string(b)]++
					}
					return nil
				})
			}
			return nil
		})
		return n
	}
	if n := count(); n["community-queue"] == 0 || n["community-feed"] == 0 || n["community-digest"] == 0 || n["community-expecting"] == 0 || n["community-tokens"] == 0 {
		t.Fatalf("the test did not fill every bucket: %v", n)
	}
	unsub := strings.TrimPrefix(w.c.UnsubscribeURL(s), "https://monitor.example/unsubscribe?t=")
	if err := w.c.Unsubscribe(ctx, unsub); err != nil {
		t.Fatal(err)
	}
	if n := count(); len(n) != 0 {
		t.Fatalf("left after unsubscribe: %v", n)
	}
	if err := w.c.Unsubscribe(ctx, unsub); !errors.Is(err, ErrBadToken) {
		t.Fatalf("unsubscribe twice: %v", err)
	}
	if _, err := w.c.Feed(strings.TrimPrefix(w.c.FeedURL(s), "https://monitor.example/feed?t=")); !errors.Is(err, ErrBadToken) {
		t.Fatalf("feed after unsubscribe: %v", err)
	}
	if _, err := w.c.Manage(strings.TrimPrefix(w.c.ManageURL(keep), "https://monitor.example/manage?t=")); err != nil {
		t.Fatalf("the other subscriber: %v", err)
	}
}

// Links are per purpose, hide the subscriber ID and address, and a
// tampered or foreign-key token is refused.
func TestLinks(t *testing.T) {
	w := newWorld(t)
	s := w.subscribe("a@example.org", "author ETHER")
	tok := func(u string) string { _, t, _ := strings.Cut(u, "?t="); return t }
	m, u, f := tok(w.c.ManageURL(s)), tok(w.c.UnsubscribeURL(s)), tok(w.c.FeedURL(s))
	for _, x := range []string{m, u, f} {
		if strings.Contains(x, s.ID) || strings.Contains(w.c.ManageURL(s), "example.org") {
			t.Fatal("a link shows the ID or the address")
		}
	}
	if _, err := w.c.Manage(m); err != nil {
		t.Fatal(err)
	}
	if _, err := w.c.Manage(u); !errors.Is(err, ErrBadToken) {
		t.Error("an unsubscribe link opens the manage page")
	}
	if _, err := w.c.Manage(f); !errors.Is(err, ErrBadToken) {
		t.Error("a feed link opens the manage page")
	}
	if _, err := w.c.Feed(m); !errors.Is(err, ErrBadToken) {
		t.Error("a manage link reads as a feed")
	}
	if err := w.c.Unsubscribe(ctx, f); !errors.Is(err, ErrBadToken) {
		t.Error("a feed link unsubscribes")
	}
	for i := range len(m) {
		for _, bit := range []byte{1, 2, 4} {
			b := []byte(m)
			b[i] ^= bit
			if _, err := w.c.Manage(string(b)); !errors.Is(err, ErrBadToken) {
				t.Fatalf("a token with byte %d changed (%q) accepted", i, b)
			}
		}
	}
	// The same link after a restart (no storage behind it).
	w.open()
	if _, err := w.c.Manage(m); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	// Another key: refused.
	if err := os.Remove(filepath.Join(w.dir, "community.key")); err != nil {
		t.Fatal(err)
	}
	w.open()
	if _, err := w.c.Manage(m); !errors.Is(err, ErrBadToken) {
		t.Error("a link made with another key accepted")
	}
	fi, err := os.Stat(filepath.Join(w.dir, "community.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("community.key: %v %v", fi.Mode(), err)
	}
}

// Update changes rules and channels, routing follows at once.
func TestUpdateReroutes(t *testing.T) {
	w := newWorld(t)
	s := w.subscribe("a@example.org", "author ETHER")
	m := strings.TrimPrefix(w.c.ManageURL(s), "https://monitor.example/manage?t=")
	if err := w.c.Update(ctx, m, Request{Rules: []Rule{{Kind: "dist", Value: "Moo"}}, Mail: true}); err != nil {
		t.Fatal(err)
	}
	if err := w.c.Update(ctx, m, Request{Rules: []Rule{{Kind: "bogus", Value: "x"}}}); err == nil {
		t.Fatal("Update took a bad rule")
	}
	w.mail.reset()
	w.route(upload(1, "authors/id/E/ET/ETHER/X-1.tar.gz", "ETHER"), upload(2, "authors/id/H/HA/HAARG/Moo-2.0.tar.gz", "HAARG"))
	w.deliver()
	ms := w.mail.to("a@example.org")
	if len(ms) != 1 || !strings.Contains(ms[0].Subject, "Moo-2.0") {
		t.Fatalf("%+v", ms)
	}
}

// Deletions in scope are alerts; a release fixing an advisory says so.
func TestDeletionAndAdvisories(t *testing.T) {
	w := newWorld(t, func(c *Config) { c.Advisories = fakeAdvisories{} })
	w.subscribe("a@example.org", "dist Foo")
	w.mail.reset()
	del := upload(3, "authors/id/A/AL/ALICE/Foo-0.9.tar.gz", "")
	del.Upload.Kind, del.Upload.Uploader = "delete", ""
	w.route(del, upload(4, "authors/id/A/AL/ALICE/Foo-1.5.tar.gz", "ALICE"))
	w.deliver()
	ms := w.mail.to("a@example.org")
	if len(ms) != 1 || !strings.Contains(ms[0].Text, "deletion of \"Foo-0.9.tar.gz\"") || !strings.Contains(ms[0].Text, "fixes:      CPANSA-Foo-2020-01 (CVE-2020-1)") {
		t.Fatalf("%+v", ms)
	}
	// Every later release is outside the advisory's range too; only the
	// first logged is named as fixing it.
	w.mail.reset()
	w.route(upload(5, "authors/id/A/AL/ALICE/Foo-1.6.tar.gz", "ALICE"))
	w.deliver()
	if ms := w.mail.to("a@example.org"); len(ms) != 1 || !strings.Contains(ms[0].Text, "Foo-1.6.tar.gz") || strings.Contains(ms[0].Text, "fixes:") {
		t.Fatalf("a later release named the fix again: %+v", ms)
	}
}

// The feed holds every item, newest first, bounded.
func TestFeed(t *testing.T) {
	w := newWorld(t, func(c *Config) { c.Limits.FeedItems = 5 })
	s := w.subscribe("a@example.org", "author ETHER")
	for i := range 8 {
		w.route(upload(uint64(i+1), "authors/id/E/ET/ETHER/X-1."+string(rune('0'+i))+".tar.gz", "ETHER"))
	}
	f, err := w.c.Feed(strings.TrimPrefix(w.c.FeedURL(s), "https://monitor.example/feed?t="))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Entries) != 5 || !strings.Contains(f.Entries[0].Title, "X-1.7") || !strings.Contains(f.Entries[4].Title, "X-1.3") {
		t.Fatalf("%d entries: %+v", len(f.Entries), f.Entries)
	}
	if f.Entries[0].Link != "https://log.example/entry/8" {
		t.Errorf("link %q", f.Entries[0].Link)
	}
}

// Each rule kind matches what it says and no more.
func TestRuleMatching(t *testing.T) {
	w := newWorld(t)
	w.subscribe("ns@example.org", "namespace Foo::Bar")
	w.subscribe("prefix@example.org", "namespace Foo::*")
	w.subscribe("glob@example.org", "path authors/id/A/AL/ALICE/Foo-*")
	w.subscribe("anyglob@example.org", "path authors/id/*/*/*/Foo-Bar-*")
	w.subscribe("dist@example.org", "dist Foo-Bar")
	w.subscribe("uploader@example.org", "author MALLORY")
	w.mail.reset()
	w.route(upload(1, "authors/id/A/AL/ALICE/Foo-Bar-1.0.tar.gz", "MALLORY"), upload(2, "authors/id/A/AL/ALICE/Foo-Barx-1.0.tar.gz", "ALICE"),
		upload(3, "authors/id/B/BO/BOB/Foobar-1.0.tar.gz", "BOB"), upload(4, "authors/id/B/BO/BOB/Foo-1.0.tar.gz", "BOB"))
	w.deliver()
	want := map[string]string{
		"ns@example.org":       "Foo-Bar-1.0",
		"prefix@example.org":   "Foo-Bar-1.0,Foo-Barx-1.0,Foo-1.0",
		"glob@example.org":     "Foo-Bar-1.0,Foo-Barx-1.0",
		"anyglob@example.org":  "Foo-Bar-1.0",
		"dist@example.org":     "Foo-Bar-1.0",
		"uploader@example.org": "Foo-Bar-1.0",
	}
	for addr, files := range want {
		ms := w.mail.to(addr)
		if len(ms) != 1 {
			t.Errorf("%s: %d mails", addr, len(ms))
			continue
		}
		n := strings.Count(ms[0].Text, "\n    path:")
		if n != len(strings.Split(files, ",")) {
			t.Errorf("%s: %d items, want %s:\n%s", addr, n, files, ms[0].Text)
		}
		for _, f := range strings.Split(files, ",") {
			if !strings.Contains(ms[0].Text, "/"+f+".tar.gz") {
				t.Errorf("%s lacks %s", addr, f)
			}
		}
	}
}

// The feed renders as Atom through notify.WriteAtom, log strings escaped.
func TestFeedAtom(t *testing.T) {
	w := newWorld(t)
	s := w.subscribe("a@example.org", "author ETHER")
	w.route(upload(1, "authors/id/E/ET/ETHER/X-<script>-1.tar.gz", "ETHER"))
	f, err := w.c.Feed(strings.TrimPrefix(w.c.FeedURL(s), "https://monitor.example/feed?t="))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := notify.WriteAtom(&b, f); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "&lt;script&gt;") || strings.Contains(b.String(), "<script>") || strings.Contains(b.String(), s.ID) {
		t.Fatalf("%s", b.String())
	}
}
