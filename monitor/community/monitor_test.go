package community

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/monitor"
)

// With the real monitor auditing a real log on loopback, the community
// is its Router: an upload into a subscriber's directory reaches them
// once, also across a restart of the monitor, and nobody else.
func TestWithRealMonitor(t *testing.T) {
	l := testlog.Start(t, tlog.Config{DataDir: t.TempDir()})
	state := t.TempDir()
	policy, err := client.ParsePolicy([]byte(fmt.Sprintf("log %s %s\nquorum none\n", l.VerifierKey(), l.URL)))
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	mail := &recorder{}
	start := func() (*monitor.Monitor, *Community) {
		m, err := monitor.New(monitor.Config{Policy: policy, StateDir: state, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		c, err := Open(m.DB(), Config{BaseURL: "https://m.example", StateDir: state, Sender: mail, Registerer: prometheus.NewRegistry(), Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		m.SetRouter(c)
		return m, c
	}
	m, c := start()
	for _, who := range []string{"ALICE", "BOB"} {
		if err := c.Subscribe(context.Background(), Request{Email: strings.ToLower(who) + "@example.org", Rules: []Rule{{Kind: "author", Value: who}}, Mail: true}, "s"); err != nil {
			t.Fatal(err)
		}
		var tok string
		for _, msg := range mail.to(strings.ToLower(who) + "@example.org") {
			tok, _ = tokenIn(msg.Text, "/confirm?t=")
		}
		if _, err := c.Confirm(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	mail.reset()
	l.Add(t, "authors/id/A/AL/ALICE/Foo-1.0.tar.gz", []byte("foo"), "2026-12-01T10:00:00Z", true)
	if err := m.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Deliver(context.Background()); err != nil {
		t.Fatal(err)
	}
	ms := mail.to("alice@example.org")
	if len(ms) != 1 || !strings.Contains(ms[0].Text, `"authors/id/A/AL/ALICE/Foo-1.0.tar.gz"`) || !strings.Contains(ms[0].Text, "log index:  0\n") ||
		!strings.Contains(ms[0].Text, "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae") {
		t.Fatalf("alice: %+v", ms)
	}
	if n := len(mail.to("bob@example.org")); n != 0 {
		t.Fatalf("bob got %d mails", n)
	}
	m.Close()

	m, c = start()
	defer m.Close()
	l.Add(t, "authors/id/B/BO/BOB/Bar-1.0.tar.gz", []byte("bar"), "2026-12-01T10:01:00Z", true)
	if err := m.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Deliver(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, b := len(mail.to("alice@example.org")), len(mail.to("bob@example.org")); n != 1 || b != 1 {
		t.Fatalf("after the restart: alice %d mails (want 1: nothing routed twice), bob %d (want 1)", n, b)
	}
}
