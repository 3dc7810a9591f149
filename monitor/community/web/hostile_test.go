package web

import (
	"net/url"
	"strings"
	"testing"

	"github.com/CPAN-Security/cpan-tlog/monitor/community"
)

// Anyone may ask to subscribe an address that is pending, replacing its
// rules and adding a webhook of their own; the owner's newest mail then
// links to that request. The page the link opens shows what the button
// would confirm, the stranger's webhook URL among it, before it is
// pressed.
func TestHostileConfirmPageShowsTheRequest(t *testing.T) {
	e := start(t, community.Limits{}, Options{})
	if a := e.do(t, "POST", "/subscribe", subscribeForm("alice@example.org", "author ALICE")); a.status != 200 {
		t.Fatal(a.status, a.body)
	}
	f := subscribeForm("alice@example.org", "author ALICE")
	f.Set("webhook", "https://mallory.example/collect")
	if a := e.do(t, "POST", "/subscribe", f); a.status != 200 {
		t.Fatal(a.status, a.body)
	}
	tok := e.sent.confirmToken(t, "alice@example.org")
	a := e.do(t, "GET", "/confirm?t="+url.QueryEscape(tok), nil)
	if a.status != 200 || !strings.Contains(a.body, "https://mallory.example/collect") || !strings.Contains(a.body, "ALICE") {
		t.Fatalf("the confirmation page does not show the request it confirms: %d\n%s", a.status, a.body)
	}
	if s := e.stored(t)["alice@example.org"]; s.Confirmed {
		t.Fatal("showing the page confirmed the subscription")
	}
}
