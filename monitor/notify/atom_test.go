package notify

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"time"
)

// parsedFeed reads WriteAtom's output back, namespace and all.
type parsedFeed struct {
	XMLName xml.Name `xml:"http://www.w3.org/2005/Atom feed"`
	ID      string   `xml:"id"`
	Title   struct {
		Type string `xml:"type,attr"`
		Body string `xml:",chardata"`
	} `xml:"title"`
	Updated string `xml:"updated"`
	Author  string `xml:"author>name"`
	Links   []struct {
		Rel  string `xml:"rel,attr"`
		Href string `xml:"href,attr"`
	} `xml:"link"`
	Entries []struct {
		ID    string `xml:"id"`
		Title struct {
			Type string `xml:"type,attr"`
			Body string `xml:",chardata"`
		} `xml:"title"`
		Updated string `xml:"updated"`
		Link    struct {
			Rel  string `xml:"rel,attr"`
			Href string `xml:"href,attr"`
		} `xml:"link"`
		Content struct {
			Type string `xml:"type,attr"`
			Body string `xml:",chardata"`
		} `xml:"content"`
	} `xml:"entry"`
}

func parseFeed(t *testing.T, b []byte) parsedFeed {
	t.Helper()
	var p parsedFeed
	if err := xml.Unmarshal(b, &p); err != nil {
		t.Fatalf("output does not parse: %v\n%s", err, b)
	}
	// A second, strict pass over every token, as a feed reader would.
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	for {
		if _, err := d.Token(); err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("token stream: %v", err)
			}
			break
		}
	}
	return p
}

// TestWriteAtomHostileText: whatever the texts hold, the output parses,
// carries them back as text (less what XML 1.0 cannot hold), and none
// becomes markup.
func TestWriteAtomHostileText(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "Try-Tiny 0.32 uploaded by ETHER", "Try-Tiny 0.32 uploaded by ETHER"},
		{"cdata end", "a]]>b", "a]]>b"},
		{"script", "<script>alert(1)</script>", "<script>alert(1)</script>"},
		{"entities", "&amp; &lt; &#0; &xxe;", "&amp; &lt; &#0; &xxe;"},
		{"quotes", `"'><img src=x onerror=alert(1)>`, `"'><img src=x onerror=alert(1)>`},
		{"NUL and controls", "a\x00b\x01c\x08d\x0be\x0cf\x1bg\x7fh", "abcdefg\x7fh"},
		{"tab newline", "a\tb\nc", "a\tb\nc"},
		{"invalid UTF-8", "a\xff\xfeb\xc3", "ab"},
		{"non-characters", "a\uFFFEb\uFFFFc", "abc"},
		{"replacement char kept", "a\uFFFDb", "a\uFFFDb"},
		{"unicode", "Ünïcödé — 日本 🐪", "Ünïcödé — 日本 🐪"},
		{"xml declaration", `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>`, `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			when := time.Date(2026, 12, 6, 22, 0, 0, 0, time.FixedZone("x", 3600))
			f := Feed{
				ID: "urn:cpan-tlog:feed:" + tc.in, Title: tc.in, Self: "https://tlog.example/feed?t=a&b=c", Updated: when,
				Entries: []FeedEntry{{ID: "urn:x:" + tc.in, Title: tc.in, Text: tc.in, Link: "https://tlog.example/entry/1?a=1&b=2", Updated: when}},
			}
			var b bytes.Buffer
			if err := WriteAtom(&b, f); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(b.String(), "<script") || strings.Contains(b.String(), "]]>") || strings.Contains(b.String(), "<img") {
				t.Errorf("markup passed through unescaped:\n%s", b.String())
			}
			p := parseFeed(t, b.Bytes())
			if p.Title.Body != tc.want || p.Title.Type != "text" {
				t.Errorf("feed title %q (type %q), want %q", p.Title.Body, p.Title.Type, tc.want)
			}
			if p.ID != "urn:cpan-tlog:feed:"+tc.want {
				t.Errorf("feed id %q", p.ID)
			}
			if len(p.Entries) != 1 {
				t.Fatalf("%d entries", len(p.Entries))
			}
			e := p.Entries[0]
			if e.Title.Body != tc.want || e.Content.Body != tc.want || e.Content.Type != "text" || e.Title.Type != "text" {
				t.Errorf("entry title %q content %q (%s), want %q as text", e.Title.Body, e.Content.Body, e.Content.Type, tc.want)
			}
			if e.Link.Href != "https://tlog.example/entry/1?a=1&b=2" || e.Link.Rel != "alternate" {
				t.Errorf("entry link %+v", e.Link)
			}
			if p.Updated != "2026-12-06T21:00:00Z" || e.Updated != "2026-12-06T21:00:00Z" {
				t.Errorf("updated %q / %q, want UTC RFC 3339", p.Updated, e.Updated)
			}
			if p.Author == "" || len(p.Links) != 1 || p.Links[0].Rel != "self" || p.Links[0].Href != f.Self {
				t.Errorf("author %q links %+v", p.Author, p.Links)
			}
		})
	}
}

// TestWriteAtomRefuses: relative or non-http links and missing IDs.
func TestWriteAtomRefuses(t *testing.T) {
	ok := Feed{ID: "urn:x", Self: "https://tlog.example/feed", Entries: []FeedEntry{{ID: "urn:e", Link: "https://tlog.example/e"}}}
	var b bytes.Buffer
	if err := WriteAtom(&b, ok); err != nil {
		t.Fatalf("valid feed: %v", err)
	}
	for name, mutate := range map[string]func(*Feed){
		"no id":            func(f *Feed) { f.ID = " " },
		"relative self":    func(f *Feed) { f.Self = "/feed" },
		"javascript self":  func(f *Feed) { f.Self = "javascript:alert(1)" },
		"no self":          func(f *Feed) { f.Self = "" },
		"entry no id":      func(f *Feed) { f.Entries[0].ID = "" },
		"relative link":    func(f *Feed) { f.Entries[0].Link = "entry/1" },
		"javascript link":  func(f *Feed) { f.Entries[0].Link = "javascript:alert(1)" },
		"data link":        func(f *Feed) { f.Entries[0].Link = "data:text/html,<script>" },
		"control in link":  func(f *Feed) { f.Entries[0].Link = "https://tlog.example/\x01" },
		"non-char in link": func(f *Feed) { f.Entries[0].Link = "https://tlog.example/\uFFFE" },
		"scheme-relative":  func(f *Feed) { f.Entries[0].Link = "//evil.example/" },
	} {
		f := ok
		f.Entries = append([]FeedEntry(nil), ok.Entries...)
		mutate(&f)
		if err := WriteAtom(&bytes.Buffer{}, f); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestWriteAtomUpdatedDefaults: a feed without Updated takes its newest
// entry's; an entry without one takes the feed's.
func TestWriteAtomUpdatedDefaults(t *testing.T) {
	t1 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t2 := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	err := WriteAtom(&b, Feed{ID: "urn:x", Self: "https://t.example/f", Entries: []FeedEntry{{ID: "urn:1", Updated: t1}, {ID: "urn:2", Updated: t2}, {ID: "urn:3"}}})
	if err != nil {
		t.Fatal(err)
	}
	p := parseFeed(t, b.Bytes())
	if p.Updated != "2026-02-01T00:00:00Z" || p.Entries[2].Updated != p.Updated || p.Entries[0].Updated != "2026-01-01T00:00:00Z" {
		t.Errorf("feed updated %q, entries %q %q %q", p.Updated, p.Entries[0].Updated, p.Entries[1].Updated, p.Entries[2].Updated)
	}
}

// FuzzWriteAtom: WriteAtom either refuses the feed or writes XML that
// parses, with each text coming back as given less what XML 1.0 cannot
// carry.
func FuzzWriteAtom(f *testing.F) {
	f.Add("urn:x", "title <b>", "text ]]> &", "https://tlog.example/e")
	f.Add("urn:x", "\x00\x01", "\xff\xfe", "javascript:alert(1)")
	f.Fuzz(func(t *testing.T, id, title, text, link string) {
		feed := Feed{ID: id, Title: title, Self: "https://tlog.example/feed?t=x", Entries: []FeedEntry{{ID: id, Title: title, Text: text, Link: link}}}
		var b bytes.Buffer
		if err := WriteAtom(&b, feed); err != nil {
			return
		}
		p := parseFeed(t, b.Bytes())
		if len(p.Entries) != 1 {
			t.Fatalf("%d entries", len(p.Entries))
		}
		e := p.Entries[0]
		// encoding/xml normalises CR and CRLF in character data to LF
		// when reading, as XML requires (the writer escapes CR as &#xD;,
		// which survives).
		if p.Title.Body != xmlText(title) || e.Title.Body != xmlText(title) || e.Content.Body != xmlText(text) || e.ID != xmlText(id) || p.ID != xmlText(id) {
			t.Fatalf("texts changed: title %q content %q id %q feed id %q", e.Title.Body, e.Content.Body, e.ID, p.ID)
		}
		if link != "" && e.Link.Href != link {
			t.Fatalf("link %q, want %q", e.Link.Href, link)
		}
	})
}
