package notify

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// Feed is an Atom feed (RFC 4287) of one subscriber's notices.
type Feed struct {
	ID      string // a permanent IRI (a tag: or urn: or the feed's URL)
	Title   string
	Self    string // the feed's own absolute URL (rel="self")
	Updated time.Time
	Entries []FeedEntry
}

// FeedEntry is one notice.
type FeedEntry struct {
	ID      string // a permanent IRI, unique in the feed
	Title   string
	Text    string // plain text: shown as text, never as HTML
	Link    string // absolute URL of more detail; optional
	Updated time.Time
}

type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	ID      string      `xml:"id"`
	Title   atomText    `xml:"title"`
	Updated string      `xml:"updated"`
	Author  atomPerson  `xml:"author"`
	Links   []atomLink  `xml:"link"`
	Entries []atomEntry `xml:"entry"`
}

type atomEntry struct {
	ID      string     `xml:"id"`
	Title   atomText   `xml:"title"`
	Updated string     `xml:"updated"`
	Links   []atomLink `xml:"link"`
	Content atomText   `xml:"content"`
}

type atomText struct {
	Type string `xml:"type,attr"`
	Body string `xml:",chardata"`
}

type atomPerson struct {
	Name string `xml:"name"`
}

type atomLink struct {
	Rel  string `xml:"rel,attr"`
	Type string `xml:"type,attr,omitempty"`
	Href string `xml:"href,attr"`
}

// WriteAtom writes f as an Atom feed. Every text is escaped and stripped
// of what XML 1.0 cannot carry (control characters, invalid UTF-8), and
// given as type="text", so no text becomes markup in a reader. Links must
// be absolute http(s) URLs; an entry without Updated takes the feed's, a
// feed without Updated takes its newest entry's (or now, when empty).
func WriteAtom(w io.Writer, f Feed) error {
	if strings.TrimSpace(f.ID) == "" {
		return fmt.Errorf("notify: feed has no ID")
	}
	if err := checkFeedURL("Self", f.Self); err != nil {
		return err
	}
	updated := f.Updated
	if updated.IsZero() {
		for _, e := range f.Entries {
			if e.Updated.After(updated) {
				updated = e.Updated
			}
		}
		if updated.IsZero() {
			updated = time.Now()
		}
	}
	out := atomFeed{
		ID:      xmlText(f.ID),
		Title:   atomText{"text", xmlText(f.Title)},
		Updated: atomTime(updated),
		Author:  atomPerson{"cpan-tlog"},
		Links:   []atomLink{{Rel: "self", Type: "application/atom+xml", Href: f.Self}},
	}
	for i, e := range f.Entries {
		if strings.TrimSpace(e.ID) == "" {
			return fmt.Errorf("notify: feed entry %d has no ID", i)
		}
		ae := atomEntry{
			ID:      xmlText(e.ID),
			Title:   atomText{"text", xmlText(e.Title)},
			Updated: atomTime(updated),
			Content: atomText{"text", xmlText(e.Text)},
		}
		if !e.Updated.IsZero() {
			ae.Updated = atomTime(e.Updated)
		}
		if e.Link != "" {
			if err := checkFeedURL(fmt.Sprintf("entry %d Link", i), e.Link); err != nil {
				return err
			}
			ae.Links = []atomLink{{Rel: "alternate", Href: e.Link}}
		}
		out.Entries = append(out.Entries, ae)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func atomTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func checkFeedURL(what, s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("notify: feed %s: %v", what, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("notify: feed %s %q is not an absolute http(s) URL", what, s)
	}
	if xmlText(s) != s {
		return fmt.Errorf("notify: feed %s %q holds characters XML cannot carry", what, s)
	}
	return nil
}

// xmlText drops what XML 1.0 cannot carry: invalid UTF-8 and characters
// outside its Char production (C0 controls but tab, LF and CR; surrogates;
// U+FFFE and U+FFFF). encoding/xml would put U+FFFD in their place; gone
// is clearer than a row of question marks.
func xmlText(s string) string {
	return strings.Map(func(r rune) rune {
		if !isXMLChar(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
}

func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		(r >= 0x20 && r <= 0xD7FF) ||
		(r >= 0xE000 && r <= 0xFFFD) ||
		(r >= 0x10000 && r <= 0x10FFFF)
}
