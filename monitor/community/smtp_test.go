package community

import (
	"crypto/tls"
	"io"
	"mime/quotedprintable"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/CPAN-Security/cpan-tlog/internal/testsmtp"
	"github.com/CPAN-Security/cpan-tlog/monitor/notify"
)

// Through notify.SMTP to a real SMTP server (aiosmtpd, STARTTLS and
// AUTH): the confirmation and an alert arrive with the headers the engine
// sets (List-Unsubscribe with RFC 8058's One-Click, the stable
// Message-ID), and a real 550 counts as a bounce, a real 451 does not.
func TestRealSMTP(t *testing.T) {
	srv := testsmtp.Start(t, testsmtp.Reject550("gone@example.org"), testsmtp.Defer451("later@example.org"))
	smtp := &notify.SMTP{Addr: srv.Addr, From: "monitor@monitor.example", Username: srv.Username, Password: srv.Password,
		HeloName: "monitor.example", TLSConfig: &tls.Config{RootCAs: srv.RootCAs}, Timeout: 20 * time.Second}
	w := newWorld(t, func(c *Config) { c.Sender = smtp })
	w.mail = nil

	if err := w.c.Subscribe(ctx, Request{Email: "a@example.org", Rules: []Rule{{Kind: "author", Value: "ETHER"}}, Mail: true}, "s"); err != nil {
		t.Fatal(err)
	}
	got := srv.WaitFor(t, 1, 20*time.Second)
	body := decodeBody(t, got[0])
	tok, ok := tokenIn(body, "/confirm?t=")
	if !ok || got[0].Header.Get("List-Unsubscribe") != "" || !got[0].TLS || !got[0].Authenticated {
		t.Fatalf("confirmation as received: %+v\n%s", got[0].Header, body)
	}
	s, err := w.c.Confirm(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	w.route(upload(1, "authors/id/E/ET/ETHER/X-1.tar.gz", "ETHER"))
	w.deliver()
	got = srv.WaitFor(t, 2, 20*time.Second)
	alert := got[1]
	body = decodeBody(t, alert)
	if alert.Header.Get("List-Unsubscribe") != "<"+w.c.UnsubscribeURL(s)+">" || alert.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" ||
		!strings.HasSuffix(alert.Header.Get("Message-Id"), "@monitor.example>") || !strings.Contains(body, `"authors/id/E/ET/ETHER/X-1.tar.gz"`) ||
		!strings.Contains(body, w.c.ManageURL(s)) {
		t.Fatalf("alert as received: %+v\n%s", alert.Header, body)
	}

	// A 550 is a bounce; a 451 leaves the alert queued.
	for _, addr := range []string{"gone@example.org", "later@example.org"} {
		if err := w.c.Subscribe(ctx, Request{Email: addr, Rules: []Rule{{Kind: "author", Value: "HAARG"}}, Mail: true}, "s"); err == nil {
			t.Fatalf("the confirmation to %s was accepted", addr)
		}
		// Confirm it directly: the test needs a confirmed address the
		// server refuses.
		w.db.Update(func(tx *bolt.Tx) error {
			id := tx.Bucket(bEmails).Get([]byte(addr))
			sub, _ := getSubscriber(tx, string(id))
			sub.Confirmed, sub.ConfirmedAt = true, w.clock.now()
			return putSubscriber(tx, sub)
		})
	}
	w.route(upload(2, "authors/id/H/HA/HAARG/Y-1.tar.gz", "HAARG"))
	if err := w.c.Deliver(ctx); err == nil || !strings.Contains(err.Error(), "451") {
		t.Fatalf("Deliver: %v", err)
	}
	w.db.View(func(tx *bolt.Tx) error {
		for addr, bounces := range map[string]int{"gone@example.org": 1, "later@example.org": 0} {
			sub, _ := getSubscriber(tx, string(tx.Bucket(bEmails).Get([]byte(addr))))
			if sub.Bounces != bounces {
				t.Errorf("%s: %d bounces, want %d", addr, sub.Bounces, bounces)
			}
		}
		if n := tx.Bucket(bQueue).Stats().KeyN; n != 1 {
			t.Errorf("%d items queued, want the deferred one", n)
		}
		return nil
	})
}

func decodeBody(t *testing.T, r testsmtp.Received) string {
	t.Helper()
	if !strings.EqualFold(r.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		return string(r.Body)
	}
	b, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(string(r.Body))))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
