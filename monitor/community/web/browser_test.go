package web

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/CPAN-Security/cpan-tlog/internal/testbrowser"
	"github.com/CPAN-Security/cpan-tlog/monitor/community"
)

var mailedConfirmURL = regexp.MustCompile(`https?://[^\s<>"]+/confirm\?t=[^\s<>"]+`)

// TestBrowserSubscribeConfirmUnsubscribe drives the real pages in
// headless Chromium as a subscriber would: fill in the subscribe form,
// open the link the confirmation mail carries, press Confirm, open the
// subscription's page, change a rule, open the unsubscribe link and press
// its button; the store is checked after each step. Screenshots of every
// page go to $CPANTLOG_ARTIFACTS when it is set.
func TestBrowserSubscribeConfirmUnsubscribe(t *testing.T) {
	e := start(t, community.Limits{}, Options{})
	b := testbrowser.Start(t, testbrowser.Options{Width: 1280, Height: 900})
	const addr = "grace@example.org"

	b.Navigate(e.srv.URL + "/subscribe")
	// The style sheet is applied: the CSP lets the handler's own CSS in.
	var bg string
	b.Execute(&bg, "return getComputedStyle(document.querySelector('header')).backgroundColor")
	if bg != "rgb(19, 60, 85)" {
		t.Errorf("the header's background is %q: the style sheet was not applied", bg)
	}
	b.SaveScreenshot("community-subscribe")
	quietConsole(t, b, "subscribe")

	// A mistake first: the form comes back with the message and the text.
	b.Find("#email").Type(addr)
	b.Find("#rules").Clear()
	b.Find("#rules").Type("author GRACE\nauthr GRACE")
	b.Find("#subscribe").Click()
	if msg := b.WaitFor("#error").Text(); !strings.Contains(msg, "line 2") {
		t.Errorf("the error shown is %q", msg)
	}
	b.SaveScreenshot("community-subscribe-error")
	quietConsole(t, b, "subscribe error")
	if v := b.Find("#rules").Property("value"); v != "author GRACE\nauthr GRACE" {
		t.Errorf("the re-shown form holds %q", v)
	}
	if len(e.stored(t)) != 0 || len(e.sent.all()) != 0 {
		t.Fatal("a refused form stored or sent something")
	}

	b.Find("#rules").Clear()
	b.Find("#rules").Type("author GRACE\ndist Grace-Tools\nexpect issuer=https://token.actions.githubusercontent.com repository=grace/tools")
	b.Find("#subscribe").Click()
	if txt := b.WaitFor("#sent").Text(); !strings.Contains(txt, "If the address "+addr+" can be subscribed, a confirmation mail is on its way") {
		t.Errorf("after subscribing the page says %q", txt)
	}
	b.SaveScreenshot("community-sent")
	quietConsole(t, b, "sent")
	s, ok := e.stored(t)[addr]
	if !ok || s.Confirmed || len(s.Rules) != 2 || len(s.Expect) != 1 || !s.Mail {
		t.Fatalf("after subscribing the store holds %+v (present %v)", s, ok)
	}

	// The link as the mail carries it.
	var link string
	for _, m := range e.sent.to(addr) {
		if l := mailedConfirmURL.FindString(m.Text); l != "" {
			link = l
		}
	}
	if link == "" {
		t.Fatalf("no confirmation link in the mails to %s: %+v", addr, e.sent.all())
	}
	b.Navigate(link)
	b.WaitFor("#confirm")
	b.SaveScreenshot("community-confirm")
	quietConsole(t, b, "confirm")
	if e.stored(t)[addr].Confirmed {
		t.Fatal("opening the confirmation link confirmed without the button")
	}
	b.Find("#confirm").Click()
	b.WaitFor("#confirmed")
	b.SaveScreenshot("community-confirmed")
	quietConsole(t, b, "confirmed")
	page := b.Source()
	for _, want := range []string{"Grace-Tools", "GRACE", "grace/tools", addr} {
		if !strings.Contains(page, want) {
			t.Errorf("the confirmed page does not show %q", want)
		}
	}
	manageLink, _ := b.Find("#manage").Property("href").(string)
	mtok := tokenOf(t, manageLink)
	if got, err := e.c.Manage(mtok); err != nil || !got.Confirmed {
		t.Fatalf("after Confirm, Manage: %+v, %v", got, err)
	}

	// The subscription's page: change the rules.
	b.Find("#manage").Click()
	b.WaitFor("#save")
	b.SaveScreenshot("community-manage")
	quietConsole(t, b, "manage")
	b.Find("#rules").Clear()
	b.Find("#rules").Type("dist Grace-Tools")
	b.Find("#save").Click()
	b.WaitFor("#saved")
	b.SaveScreenshot("community-manage-saved")
	quietConsole(t, b, "saved")
	if got, err := e.c.Manage(mtok); err != nil || len(got.Rules) != 1 || got.Rules[0].Value != "Grace-Tools" || len(got.Expect) != 0 {
		t.Fatalf("after saving, Manage: %+v, %v", got, err)
	}

	// The unsubscribe link, as a mail's List-Unsubscribe carries it.
	cur, err := e.c.Manage(mtok)
	if err != nil {
		t.Fatal(err)
	}
	b.Navigate(e.c.UnsubscribeURL(cur))
	b.WaitFor("#unsubscribe")
	b.SaveScreenshot("community-unsubscribe")
	quietConsole(t, b, "unsubscribe")
	if _, err := e.c.Manage(mtok); err != nil {
		t.Fatalf("opening the unsubscribe link unsubscribed: %v", err)
	}
	b.Find("#unsubscribe").Click()
	b.WaitFor("#unsubscribed")
	b.SaveScreenshot("community-unsubscribed")
	quietConsole(t, b, "unsubscribed")
	if _, err := e.c.Manage(mtok); !errors.Is(err, community.ErrBadToken) {
		t.Errorf("after unsubscribing, Manage: %v", err)
	}
	if _, ok := e.stored(t)[addr]; ok {
		t.Error("after unsubscribing the subscriber is still stored")
	}

	// The used confirmation link now opens the 404 page (the page shows
	// what a link would confirm, so it looks the token up at once).
	b.Navigate(link)
	if h := b.WaitFor("h1").Text(); h != "This link is unknown, used or expired" {
		t.Errorf("a used confirmation link ends on %q", h)
	}
	b.SaveScreenshot("community-badtoken")
	quietConsole(t, b, "bad token")
}

// quietConsole asserts the pages seen since the last call logged nothing
// to the console: no Content-Security-Policy violation (a style, a form
// target or a resource the policy refuses), no failed load besides an
// error page's own status.
func quietConsole(t *testing.T, b *testbrowser.Browser, step string) {
	t.Helper()
	for _, m := range b.Console() {
		// The page's own status, where it is an error page.
		if (step == "bad token" && strings.Contains(m.Message, "status of 404")) ||
			(step == "subscribe error" && strings.Contains(m.Message, "status of 400")) {
			continue
		}
		t.Errorf("%s: console %s: %s", step, m.Level, m.Message)
	}
}

// TestBrowserPagesFitAPhone: every page fits a 390 px phone without
// scrolling sideways (measured in the browser), with a screenshot of each.
func TestBrowserPagesFitAPhone(t *testing.T) {
	e := start(t, community.Limits{}, Options{})
	s := e.subscribeAndConfirm(t, "heidi@example.org", "author HEIDI\nnamespace Heidi::Very::Long::Namespace::Name::*\n"+
		"expect issuer=https://token.actions.githubusercontent.com repository=heidi/a-rather-long-repository-name workflow=.github/workflows/release-to-cpan.yml dists=Heidi-Tools,Heidi-More-Tools")
	b := testbrowser.Start(t, testbrowser.Options{Width: 390, Height: 844})
	pages := map[string]string{
		"subscribe":   e.srv.URL + "/subscribe",
		"confirm":     e.srv.URL + "/confirm?t=sometoken",
		"manage":      e.c.ManageURL(s),
		"unsubscribe": e.c.UnsubscribeURL(s),
		"badtoken":    e.srv.URL + "/manage?t=nope",
	}
	for name, u := range pages {
		b.Navigate(u)
		var w struct{ Scroll, Inner int }
		b.Execute(&w, "return {Scroll: document.documentElement.scrollWidth, Inner: window.innerWidth}")
		if w.Inner > 400 || w.Scroll > w.Inner {
			t.Errorf("the %s page at a 390 px window: %d px wide in a %d px viewport", name, w.Scroll, w.Inner)
		}
		b.SaveScreenshot("community-" + name + "-390")
	}
}
