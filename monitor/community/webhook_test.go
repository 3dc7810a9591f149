package community

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/monitor/notify"
)

// A webhook subscriber's alerts are POSTed, signed with its secret, to a
// real HTTP server; a 503 leaves them queued and the retry carries the
// same Idempotency-Key; a mail subscriber's mail is not repeated by it.
func TestWebhookDelivery(t *testing.T) {
	type got struct {
		key, sig string
		body     []byte
	}
	var mu sync.Mutex
	var posts []got
	fail := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		posts = append(posts, got{r.Header.Get("Idempotency-Key"), r.Header.Get(notify.SignatureHeader), b})
		if fail {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	w := newWorld(t, func(c *Config) { c.Webhook = &notify.Webhook{AllowPrivate: true} })
	r, _, _ := ParseRequestText("author ETHER")
	if err := w.c.Subscribe(ctx, Request{Email: "a@example.org", Rules: r, Mail: true, Webhook: srv.URL + "/hook"}, "s"); err != nil {
		t.Fatal(err)
	}
	s, err := w.c.Confirm(ctx, w.confirmToken("a@example.org"))
	if err != nil {
		t.Fatal(err)
	}
	w.mail.reset()
	w.route(upload(3, "authors/id/E/ET/ETHER/X-1.tar.gz", "ETHER"))
	if err := w.c.Deliver(ctx); err == nil || !strings.Contains(err.Error(), "webhook") {
		t.Fatalf("a failing webhook: %v", err)
	}
	if len(w.mail.sent) != 1 {
		t.Fatalf("mail: %d", len(w.mail.sent))
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	w.deliver()
	w.deliver()
	if len(w.mail.sent) != 1 {
		t.Fatalf("the webhook's retry repeated the mail: %d", len(w.mail.sent))
	}
	if len(posts) != 2 || posts[0].key != posts[1].key || posts[0].key == "" {
		t.Fatalf("posts: %+v", posts)
	}
	m := hmac.New(sha256.New, []byte(w.c.WebhookSecret(s)))
	m.Write(posts[1].body)
	if posts[1].sig != "sha256="+hex.EncodeToString(m.Sum(nil)) {
		t.Errorf("signature %q", posts[1].sig)
	}
	var msg webhookMessage
	if err := json.Unmarshal(posts[1].body, &msg); err != nil || len(msg.Items) != 1 || msg.Items[0].Path != "authors/id/E/ET/ETHER/X-1.tar.gz" || msg.ID != posts[1].key {
		t.Fatalf("body %s: %v", posts[1].body, err)
	}
	if strings.Contains(string(posts[1].body), s.ID) || strings.Contains(string(posts[1].body), "a@example.org") {
		t.Error("the webhook body reveals the subscriber's ID or address")
	}
}

// Unhealthy says so when an alert waits in the queue longer than
// MaxQueueAge, and stops once it is delivered.
func TestUnhealthyQueue(t *testing.T) {
	w := newWorld(t, func(c *Config) { c.MaxQueueAge = time.Hour })
	w.subscribe("a@example.org", "author ETHER")
	w.mail.fail = func(notify.Mail) error { return io.ErrUnexpectedEOF }
	w.route(upload(3, "authors/id/E/ET/ETHER/X-1.tar.gz", "ETHER"))
	w.c.Deliver(ctx)
	if why := w.c.Unhealthy(); why != "" {
		t.Fatalf("unhealthy at once: %s", why)
	}
	w.clock.add(2 * time.Hour)
	w.c.Deliver(ctx)
	if why := w.c.Unhealthy(); !strings.Contains(why, "delivery queue") {
		t.Fatalf("Unhealthy %q", why)
	}
	w.mail.fail = nil
	w.deliver()
	if why := w.c.Unhealthy(); why != "" {
		t.Fatalf("still unhealthy: %s", why)
	}
}

// TestHostileSlowWebhooksDoNotHoldUpMail: subscribers' webhooks that
// answer slowly get a bounded share of a round (webhookRoundBudget), and
// every subscriber's mail goes out first; the webhooks left over are
// posted in the next rounds, each once.
func TestHostileSlowWebhooksDoNotHoldUpMail(t *testing.T) {
	defer func(b time.Duration) { webhookRoundBudget = b }(webhookRoundBudget)
	webhookRoundBudget = 300 * time.Millisecond
	var mu sync.Mutex
	posts := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(500 * time.Millisecond)
		mu.Lock()
		posts++
		mu.Unlock()
	}))
	defer srv.Close()
	w := newWorld(t, func(c *Config) { c.Webhook = &notify.Webhook{AllowPrivate: true} })
	r, _, _ := ParseRequestText("author ETHER")
	addrs := []string{"a@example.org", "b@example.org", "c@example.org"}
	for _, a := range addrs {
		if err := w.c.Subscribe(ctx, Request{Email: a, Rules: r, Mail: true, Webhook: srv.URL + "/hook"}, a); err != nil {
			t.Fatal(err)
		}
		if _, err := w.c.Confirm(ctx, w.confirmToken(a)); err != nil {
			t.Fatal(err)
		}
	}
	w.mail.reset()
	w.route(upload(3, "authors/id/E/ET/ETHER/X-1.tar.gz", "ETHER"))
	w.deliver()
	for _, a := range addrs {
		if n := len(w.mail.to(a)); n != 1 {
			t.Errorf("%s got %d mails in the round", a, n)
		}
	}
	mu.Lock()
	first := posts
	mu.Unlock()
	if first != 1 {
		t.Errorf("%d webhook posts in a round whose budget one post exhausts", first)
	}
	w.deliver()
	w.deliver()
	w.deliver()
	mu.Lock()
	defer mu.Unlock()
	if posts != len(addrs) {
		t.Errorf("%d webhook posts after four rounds, want one each (%d)", posts, len(addrs))
	}
}
