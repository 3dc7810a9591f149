package community

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/CPAN-Security/cpan-tlog/monitor/notify"
	bolt "go.etcd.io/bbolt"
)

// maxQuoted bounds one value the log recorded when it is quoted in a
// message; maxQuotedMessage a finding's message.
const (
	maxQuoted        = 300
	maxQuotedMessage = 1024
	maxSubject       = 200
)

// clip shortens s to at most n bytes on a rune boundary, saying so.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const more = "...(clipped)"
	cut := n - len(more)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + more
}

// q quotes what the log recorded as data: clipped, in double quotes, with
// control and invisible characters escaped, so it cannot pose as the
// message's own words or hide anything.
func q(s string) string { return strconv.QuoteToASCII(clip(s, maxQuoted)) }

func (c *Community) entryURL(idx uint64) string {
	if c.cfg.LogURL == "" {
		return ""
	}
	if strings.Contains(c.cfg.LogURL, "%d") {
		return strings.Replace(c.cfg.LogURL, "%d", strconv.FormatUint(idx, 10), 1)
	}
	return c.cfg.LogURL + strconv.FormatUint(idx, 10)
}

// Title is an item's one-line summary.
func (it Item) Title() string {
	file := q(path.Base(it.Path))
	switch it.Kind {
	case ItemUpload:
		return fmt.Sprintf("upload of %s by %s", file, q(it.Uploader))
	case ItemDelete:
		return fmt.Sprintf("deletion of %s", file)
	case ItemExpected:
		return fmt.Sprintf("upload of %s by %s with the declared Sigstore identity", file, q(it.Uploader))
	case ItemIdentityDiffers:
		return fmt.Sprintf("%s carries another Sigstore identity than you declared", file)
	case ItemIdentityMissing:
		return fmt.Sprintf("%s uploaded without the declared Sigstore identity", file)
	case ItemFinding:
		if it.Path != "" {
			return fmt.Sprintf("%s: %s", q(it.FindingKind), file)
		}
		return fmt.Sprintf("%s at log index %d", q(it.FindingKind), it.Index)
	}
	return q(it.Kind)
}

// String is the expectation as the fields of an expect line.
func (e Expectation) String() string {
	s := "issuer=" + e.Issuer
	if e.Repository != "" {
		s += " repository=" + e.Repository
	}
	if e.Workflow != "" {
		s += " workflow=" + e.Workflow
	}
	if len(e.Dists) > 0 {
		s += " dists=" + strings.Join(e.Dists, ",")
	}
	return s
}

// text is an item as lines for a mail or a feed entry.
func (c *Community) itemText(it Item) string {
	var b strings.Builder
	level := "ALERT"
	if !it.Alert {
		level = "expected"
	}
	fmt.Fprintf(&b, "%s: %s\n", level, it.Title())
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "    %-11s %s\n", k+":", v)
		}
	}
	if it.Kind == ItemFinding {
		sev := "finding"
		if it.Security {
			sev = "SECURITY finding"
		}
		line(sev, q(it.FindingKind))
		line("message", strconv.QuoteToASCII(clip(it.Message, maxQuotedMessage)))
	}
	line("path", qIf(it.Path))
	if it.Index != 0 || it.Kind != ItemFinding {
		v := strconv.FormatUint(it.Index, 10)
		if u := c.entryURL(it.Index); u != "" {
			v += "  " + u
		}
		line("log index", v)
	}
	if it.PrevIndex != nil {
		v := strconv.FormatUint(*it.PrevIndex, 10) + " (the previous version, for comparison)"
		if u := c.entryURL(*it.PrevIndex); u != "" {
			v += "  " + u
		}
		line("prev index", v)
	}
	if !it.Time.IsZero() {
		line("logged at", it.Time.UTC().Format(time.RFC3339))
	}
	line("uploader", qIf(it.Uploader))
	if it.Author != "" && it.Author != it.Uploader {
		line("author", q(it.Author))
	}
	if it.Dist != "" {
		v := q(it.Dist)
		if it.Version != "" {
			v += " version " + q(it.Version)
		}
		line("dist", v)
	}
	if it.Size != 0 {
		line("size", strconv.FormatUint(it.Size, 10)+" bytes")
	}
	line("sha256", qIf(it.SHA256))
	if len(it.Fixes) > 0 {
		line("fixes", strings.Join(it.Fixes, "; "))
	}
	if it.Expected != nil {
		line("declared", it.Expected.String())
	}
	if it.Bundle != "" {
		line("bundle", q(it.Bundle))
	}
	if it.Recorded != nil {
		r := it.Recorded
		line("recorded", "issuer="+q(r.Issuer)+" repository="+q(r.SourceRepo)+" workflow="+q(r.BuildConfig))
	} else if it.Kind == ItemIdentityDiffers {
		line("recorded", "no verified identity")
	}
	if len(it.Differs) > 0 {
		line("differs", strings.Join(it.Differs, ", "))
	}
	if it.Kind == ItemIdentityMissing {
		line("why alert", "no Sigstore bundle for it was logged in time")
	}
	line("your rules", strings.Join(it.Why, "; "))
	return b.String()
}

func qIf(s string) string {
	if s == "" {
		return ""
	}
	return q(s)
}

func (c *Community) footer(s *Subscriber) string {
	return "\n-- \nYou get this because you subscribed " + s.Email + " to the cpan-tlog community monitor at " + c.cfg.BaseURL + ".\n" +
		"Values in double quotes are quoted as the log recorded them.\n" +
		"Manage your rules: " + c.ManageURL(s) + "\n" +
		"Unsubscribe:       " + c.UnsubscribeURL(s) + "\n" +
		"Your Atom feed:    " + c.FeedURL(s) + "\n"
}

func (c *Community) alertMail(s *Subscriber, items []Item, msgID string) notify.Mail {
	var subj string
	if len(items) == 1 {
		subj = "[cpan-tlog] ALERT: " + items[0].Title()
	} else {
		subj = fmt.Sprintf("[cpan-tlog] %d alerts: %s and %d more", len(items), items[0].Title(), len(items)-1)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "The cpan-tlog community monitor saw %d thing(s) in your scope that you did not declare as expected.\n\n", len(items))
	for i, it := range items {
		fmt.Fprintf(&b, "[%d] %s\n", i+1, c.itemText(it))
	}
	b.WriteString(c.footer(s))
	return notify.Mail{To: s.Email, Subject: clip(subj, maxSubject), Text: b.String(), ListUnsubscribe: c.UnsubscribeURL(s), MessageID: msgID}
}

func (c *Community) digestMail(s *Subscriber, items []Item, more int, msgID string) notify.Mail {
	var b strings.Builder
	since := s.LastDigest
	if since.IsZero() {
		since = s.ConfirmedAt
	}
	fmt.Fprintf(&b, "Your cpan-tlog digest: what the log recorded in your scope as expected since %s.\n", since.UTC().Format(time.RFC3339))
	b.WriteString("(Alerts were sent as they happened; every item is also in your feed.)\n\n")
	if len(items) == 0 {
		b.WriteString("Nothing new. The monitor is running and auditing the log.\n")
	}
	for i, it := range items {
		fmt.Fprintf(&b, "[%d] %s\n", i+1, c.itemText(it))
	}
	if more > 0 {
		fmt.Fprintf(&b, "... and %d more (see your feed).\n", more)
	}
	b.WriteString(c.footer(s))
	subj := fmt.Sprintf("[cpan-tlog] digest: %d expected upload(s)", len(items)+more)
	return notify.Mail{To: s.Email, Subject: subj, Text: b.String(), ListUnsubscribe: c.UnsubscribeURL(s), MessageID: msgID}
}

func (c *Community) rulesText(s *Subscriber) string {
	var b strings.Builder
	for _, r := range s.Rules {
		fmt.Fprintf(&b, "    %s %s\n", r.Kind, r.Value)
	}
	for _, e := range s.Expect {
		fmt.Fprintf(&b, "    expect %s\n", e)
	}
	var ch []string
	if s.Mail {
		ch = append(ch, "mail to this address")
	}
	if s.Webhook != "" {
		ch = append(ch, "a webhook (its URL is shown on the confirmation page: confirm only if it is yours)")
	}
	ch = append(ch, "an Atom feed")
	fmt.Fprintf(&b, "  delivered by: %s\n", strings.Join(ch, ", "))
	return b.String()
}

func (c *Community) confirmMail(s *Subscriber, token string) mailJob {
	var b strings.Builder
	if s.Confirmed { // suspended: the rules are the ones its owner confirmed
		b.WriteString("Mail to this address from the cpan-tlog community monitor at " + c.cfg.BaseURL + " was suspended because it bounced.\n" +
			"Someone (you, we hope) asked to resume it. Your subscription's rules:\n\n")
		b.WriteString(c.rulesText(s))
	} else {
		// Not the rules: anyone can make this request for any address,
		// and a path glob or an issuer URL is text of their choosing.
		// The page the link opens shows them before the button.
		fmt.Fprintf(&b, "Someone (you, we hope) asked the cpan-tlog community monitor at %s\n"+
			"to tell this address what the CPAN transparency log records for %d rule(s).\n"+
			"The link below shows them, and the channels asked for, before you confirm.\n", c.cfg.BaseURL, len(s.Rules)+len(s.Expect))
	}
	fmt.Fprintf(&b, "\nTo confirm, open this link and press the button (it works once, for %s):\n\n    %s\n\n", c.cfg.ConfirmTTL, c.confirmURL(token))
	b.WriteString("If you did not ask for this, ignore this mail: nothing more will be sent to this address unless the link is followed.\n")
	return mailJob{kind: "confirmation", mail: notify.Mail{To: s.Email, Subject: "[cpan-tlog] confirm your subscription", Text: b.String(),
		MessageID: c.messageID([]byte("confirm"), hashToken(token))}}
}

func (c *Community) alreadyMail(s *Subscriber) mailJob {
	var b strings.Builder
	b.WriteString("Someone (you, we hope) asked to subscribe this address to the cpan-tlog community monitor at " + c.cfg.BaseURL + ".\n" +
		"It is subscribed already, and nothing was changed. Your rules:\n\n")
	b.WriteString(c.rulesText(s))
	b.WriteString(c.footer(s))
	return mailJob{kind: "notice", mail: notify.Mail{To: s.Email, Subject: "[cpan-tlog] you are subscribed already", Text: b.String(),
		ListUnsubscribe: c.UnsubscribeURL(s), MessageID: c.messageID([]byte("already"), []byte(s.ID), []byte(c.now().Format(time.RFC3339Nano)))}}
}

// webhookMessage is the JSON a webhook receives.
type webhookMessage struct {
	ID    string `json:"id"`   // also the Idempotency-Key
	Kind  string `json:"kind"` // alert, or overflow: More alerts not sent (see Feed)
	Items []Item `json:"items"`
	More  int    `json:"more,omitempty"`
	Feed  string `json:"feed,omitempty"`
}

// overflowMail says how many alerts were left out of a round's mails.
func (c *Community) overflowMail(s *Subscriber, n int, msgID string) notify.Mail {
	var b strings.Builder
	fmt.Fprintf(&b, "The cpan-tlog community monitor saw more in your scope this round than it mails in one: %d more alert(s) are not listed by mail.\n", n)
	b.WriteString("A flood of uploads into your namespace or directory is itself worth a look.\n")
	fmt.Fprintf(&b, "Every one is in your feed: %s\n", c.FeedURL(s))
	b.WriteString(c.footer(s))
	return notify.Mail{To: s.Email, Subject: fmt.Sprintf("[cpan-tlog] %d more alerts in your scope (see your feed)", n), Text: b.String(), ListUnsubscribe: c.UnsubscribeURL(s), MessageID: msgID}
}

func (c *Community) webhookBody(s *Subscriber, items []Item, msgID string) webhookMessage {
	return webhookMessage{ID: msgID, Kind: "alert", Items: items}
}

// Feed returns the subscriber's Atom feed (a feed token), newest first.
func (c *Community) Feed(token string) (notify.Feed, error) {
	var f notify.Feed
	err := c.db.View(func(tx *bolt.Tx) error {
		s, err := c.subscriberByLink(tx, token, purposeFeed)
		if err != nil {
			return err
		}
		ik := idKey(s.ID)
		f = notify.Feed{ID: "urn:cpan-tlog:feed:" + hex.EncodeToString(hashToken(token)[:16]), Title: "cpan-tlog: what the log recorded in your scope",
			Self: c.FeedURL(s), Updated: s.ConfirmedAt}
		cur := tx.Bucket(bFeed).Cursor()
		k, _ := cur.Seek(seqKey(ik, ^uint64(0)))
		if k == nil {
			k, _ = cur.Last()
		} else {
			k, _ = cur.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, ik); k, _ = cur.Prev() {
			var it Item
			if err := json.Unmarshal(tx.Bucket(bFeed).Get(k), &it); err != nil {
				return fmt.Errorf("community: feed item %x: %w", k, err)
			}
			level := "ALERT: "
			if !it.Alert {
				level = "expected: "
			}
			e := notify.FeedEntry{ID: "urn:cpan-tlog:item:" + hex.EncodeToString(hashToken(token + string(k[16:]))[:16]),
				Title: clip(level+it.Title(), maxSubject), Text: c.itemText(it), Link: c.entryURL(it.Index), Updated: it.Seen}
			if it.Seen.After(f.Updated) {
				f.Updated = it.Seen
			}
			f.Entries = append(f.Entries, e)
		}
		return nil
	})
	return f, err
}
