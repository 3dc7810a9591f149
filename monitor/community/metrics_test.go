package community

import (
	"errors"
	"testing"

	"github.com/CPAN-Security/cpan-tlog/monitor/notify"
)

// The metrics count subscribers by state, deliveries by channel and kind,
// failures and bounces, as they happen and as recounted after a restart.
func TestMetrics(t *testing.T) {
	w := newWorld(t)
	w.subscribe("a@example.org", "author ETHER")
	if err := w.c.Subscribe(ctx, Request{Email: "p@example.org", Rules: []Rule{{Kind: "author", Value: "ETHER"}}, Mail: true}, "s"); err != nil {
		t.Fatal(err)
	}
	w.route(upload(1, "authors/id/E/ET/ETHER/X-1.tar.gz", "ETHER"))
	w.deliver()
	check := func(want float64, name string, labels ...string) {
		t.Helper()
		if got := w.metric(name, labels...); got != want {
			t.Errorf("%s%v = %v, want %v", name, labels, got, want)
		}
	}
	const subs, delivered = "cpantlog_community_subscribers", "cpantlog_community_messages_delivered_total"
	check(1, subs, "state", "confirmed")
	check(1, subs, "state", "pending")
	check(2, delivered, "channel", "mail", "kind", "confirmation")
	check(1, delivered, "channel", "mail", "kind", "alert")
	check(0, "cpantlog_community_queue_items")

	w.mail.fail = func(notify.Mail) error { return &notify.PermanentError{Err: errors.New("550")} }
	for i := range MaxBounces {
		w.route(upload(uint64(10+i), "authors/id/E/ET/ETHER/X-2.tar.gz", "ETHER"))
		w.c.Deliver(ctx)
	}
	check(MaxBounces, "cpantlog_community_bounces_total")
	check(MaxBounces, "cpantlog_community_delivery_failures_total", "channel", "mail")
	check(1, subs, "state", "suspended")
	check(0, subs, "state", "confirmed")

	// A restart recounts from the state.
	w.open()
	check(1, subs, "state", "suspended")
	check(1, subs, "state", "pending")
	check(0, subs, "state", "confirmed")
}

// Pending shows what a confirmation token would confirm without using it.
func TestPending(t *testing.T) {
	w := newWorld(t)
	if err := w.c.Subscribe(ctx, Request{Email: "a@example.org", Rules: []Rule{{Kind: "author", Value: "ETHER"}}, Webhook: "https://hook.example/x"}, "s"); err != nil {
		t.Fatal(err)
	}
	tok := w.confirmToken("a@example.org")
	s, err := w.c.Pending(tok)
	if err != nil || s.Webhook != "https://hook.example/x" || s.Confirmed {
		t.Fatalf("%+v %v", s, err)
	}
	if _, err := w.c.Confirm(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := w.c.Pending(tok); !errors.Is(err, ErrBadToken) {
		t.Fatalf("a used token: %v", err)
	}
}
