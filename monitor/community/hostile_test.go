package community

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/CPAN-Security/cpan-tlog/monitor"
)

// A hostile uploader with a stolen PAUSE account signs with a workflow of
// the same name in a repository of their own: an expectation that names
// a workflow path but no repository would take that for the author's.
// The parser refuses such a declaration, and the judge never lets one
// (stored before the parser refused it) make an upload quiet.
func TestHostileWorkflowWithoutRepository(t *testing.T) {
	_, _, err := ParseRequestText("author ALICE\nexpect issuer=" + ghIssuer + " workflow=.github/workflows/release.yml")
	var ie *InputError
	if !errors.As(err, &ie) || ie.Line != 2 {
		t.Errorf("a relative workflow without repository= was accepted: %v", err)
	}
	// A full workflow URL pins the repository, and stays accepted.
	if _, _, err := ParseRequestText("author ALICE\nexpect issuer=" + ghIssuer + " workflow=https://github.com/alice/Foo/.github/workflows/release.yml"); err != nil {
		t.Errorf("a workflow URL: %v", err)
	}
	e := Expectation{Issuer: ghIssuer, Workflow: ".github/workflows/release.yml"}
	mallory := ghIdentity("mallory/evil", ".github/workflows/release.yml")
	rec := &Identity{Issuer: mallory.Issuer, SAN: mallory.SAN, SourceRepo: mallory.SourceRepo, BuildConfig: mallory.BuildConfig}
	if d := differs(e, rec); len(d) == 0 {
		t.Error("a bundle from another repository's workflow of the same name matched a declaration naming no repository")
	}
}

// The page must not tell whether an address is subscribed, also when
// the monitor is full: a request for a subscribed address and one for a
// new address get the same answer.
func TestHostileFullMonitorIsNoOracle(t *testing.T) {
	w := newWorld(t, func(c *Config) { c.Limits.MaxSubscribers = 1 })
	w.subscribe("alice@example.org", "author ALICE")
	req := func(a string) Request {
		return Request{Email: a, Rules: []Rule{{Kind: "author", Value: "ETHER"}}, Mail: true}
	}
	errKnown := w.c.Subscribe(ctx, req("alice@example.org"), "203.0.113.9")
	errNew := w.c.Subscribe(ctx, req("nobody@example.org"), "203.0.113.9")
	if (errKnown == nil) != (errNew == nil) {
		t.Fatalf("a full monitor answers a subscribed address %v and a new one %v: the page tells them apart", errKnown, errNew)
	}
}

// Variants of one mailbox (upper case, +tags, dots, as most providers
// deliver them to one person) share the per-address limit: a stranger
// cannot multiply the confirmation mails to a victim by spelling the
// address differently, from as many sources as they like.
func TestHostileAddressVariantsShareTheLimit(t *testing.T) {
	w := newWorld(t, func(c *Config) { c.Limits = Limits{PerAddress: 2, PerSource: 100} })
	variants := []string{"victim@example.org", "Victim@example.org", "victim+1@example.org", "vic.tim@example.org", "v.i.c.t.i.m+x@EXAMPLE.org"}
	ok := 0
	for i, a := range variants {
		err := w.c.Subscribe(ctx, Request{Email: a, Rules: []Rule{{Kind: "author", Value: "ETHER"}}, Mail: true}, "203.0.113."+string(rune('1'+i)))
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrRateLimited):
			t.Fatalf("%s: %v", a, err)
		}
	}
	if ok != 2 || len(w.mail.sent) != 2 {
		t.Fatalf("%d requests for one mailbox got through (%d mails), want 2", ok, len(w.mail.sent))
	}
}

// A subscriber who wrote "dist Try-Tiny" hears of an upload whose name
// differs only in case (CPAN::DistnameInfo keeps the case of the file
// name, and anyone can upload a file of any name).
func TestHostileDistCaseDoesNotHide(t *testing.T) {
	w := newWorld(t)
	w.subscribe("alice@example.org", "dist Try-Tiny\nnamespace Moose::*")
	w.route(upload(10, "authors/id/M/MA/MALLORY/try-tiny-9.99.tar.gz", "MALLORY"),
		upload(11, "authors/id/M/MA/MALLORY/MOOSE-Evil-1.0.tar.gz", "MALLORY"))
	w.deliver()
	ms := w.mail.to("alice@example.org")
	if len(ms) != 2 {
		t.Fatalf("%d mails, want the confirmation and an alert", len(ms))
	}
	for _, p := range []string{"try-tiny-9.99.tar.gz", "MOOSE-Evil-1.0.tar.gz"} {
		if !strings.Contains(ms[1].Text, p) {
			t.Errorf("the alert does not name %s:\n%s", p, ms[1].Text)
		}
	}
}

// When the state cannot be written after a message was sent (a full
// disk, a read-only remount), Deliver must not send the same message
// again and again in one round: at most once more, in the next round.
func TestHostileUnwritableStateDoesNotRepeat(t *testing.T) {
	w := newWorld(t)
	w.subscribe("alice@example.org", "author ALICE")
	w.route(upload(10, "authors/id/A/AL/ALICE/Foo-1.0.tar.gz", "ALICE"))
	w.mail.reset()
	once := false
	w.c.testAfterSend = func() {
		if once {
			return
		}
		once = true
		w.db.Close()
		ro, err := bolt.Open(filepath.Join(w.dir, "state.db"), 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		w.db, w.c.db = ro, ro
	}
	err := w.c.Deliver(ctx)
	if err == nil {
		t.Error("Deliver said nothing of the state it could not write")
	}
	if n := len(w.mail.to("alice@example.org")); n != 1 {
		t.Fatalf("the alert was sent %d times in one round, want 1", n)
	}
}

// An index diff naming a package in another case than the rule reaches
// the namespace's subscriber (PAUSE's permissions are case-insensitive).
func TestHostilePackageCaseDoesNotHide(t *testing.T) {
	w := newWorld(t)
	w.subscribe("bob@example.org", "namespace Try::Tiny")
	idx := uint64(7)
	w.route(monitor.Event{Finding: &monitor.Finding{Kind: "index-owner-changed", ID: "x1", Index: &idx, Packages: []string{"try::tiny"}, Message: "moved"}})
	w.deliver()
	if n := len(w.mail.to("bob@example.org")); n != 2 {
		t.Fatalf("%d mails, want the confirmation and an alert", n)
	}
}

// Anyone can have a confirmation mail sent to any address: the mail must
// not carry text the requester chose (a path glob or an issuer URL can
// read "https://pause.example.evil/reset-your-password"). The rules are
// shown on the page the link opens instead.
func TestHostileConfirmMailHoldsNoStrangerText(t *testing.T) {
	w := newWorld(t)
	rules, expect, err := ParseRequestText("path authors/id/*PAUSE-account-locked-verify-at-https://evil.example/login\n" +
		"expect issuer=https://evil.example/reset-your-password repository=a/b")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.c.Subscribe(ctx, Request{Email: "victim@example.org", Rules: rules, Expect: expect, Mail: true}, "203.0.113.7"); err != nil {
		t.Fatal(err)
	}
	ms := w.mail.to("victim@example.org")
	if len(ms) != 1 {
		t.Fatalf("%d mails", len(ms))
	}
	if strings.Contains(ms[0].Text, "evil.example") || strings.Contains(ms[0].Subject, "evil.example") {
		t.Errorf("the confirmation mail to the victim carries the requester's text:\n%s", ms[0].Text)
	}
}

// A digest sent again after a crash holds what was routed since as well:
// it must not carry the first one's Message-ID, or the recipient's mail
// system (which drops a Message-ID it has) loses the new items.
func TestHostileDigestResentWithMoreItemsHasNewID(t *testing.T) {
	w := digestCrashed(t)
	p2 := "authors/id/A/AL/ALICE/Foo-1.1.tar.gz"
	w.route(upload(3, p2, "ALICE"), bundle(4, p2, ghIdentity("alice/Foo", "w.yml")))
	if err := w.c.Digest(ctx); err != nil {
		t.Fatal(err)
	}
	ms := w.mail.to("a@example.org")
	if len(ms) != 2 || !strings.Contains(ms[1].Text, "Foo-1.1.tar.gz") {
		t.Fatalf("%d mails: %+v", len(ms), ms)
	}
	if ms[0].MessageID == ms[1].MessageID {
		t.Errorf("two digests of different items share the Message-ID %s", ms[0].MessageID)
	}
}

// A bundle entry whose recorded identity is the declared one but whose
// recorded artifact digest is not the held file's (a log recording a
// genuine bundle of another release for this file) does not make the
// file quiet.
func TestHostileBundleOfOtherBytesIsAnAlert(t *testing.T) {
	w := newWorld(t)
	w.subscribe("a@example.org", "author ALICE\nexpect issuer="+ghIssuer+" repository=alice/Foo")
	p := "authors/id/A/AL/ALICE/Foo-1.1.tar.gz"
	id := ghIdentity("alice/Foo", ".github/workflows/release.yml")
	id.ArtifactSHA256 = strings.Repeat("cd", 32) // the upload helper logs ab...ab
	w.route(upload(1, p, "ALICE"), bundle(2, p, id))
	w.deliver()
	ms := w.mail.to("a@example.org")
	if len(ms) != 2 || !strings.Contains(ms[1].Subject, "ALERT") || !strings.Contains(ms[1].Text, "artifact") {
		t.Fatalf("want an alert naming the artifact; %d mails: %+v", len(ms), ms)
	}
}
