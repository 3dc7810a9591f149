package community

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseRequestText(t *testing.T) {
	rules, exp, err := ParseRequestText("# mine\r\nauthor ether\n\n  dist Try-Tiny  \nnamespace Try::Tiny\nnamespace Try::Tiny::*\npath authors/id/E/ET/ETHER/*\nauthor ETHER\n" +
		"expect issuer=https://token.actions.githubusercontent.com repository=owner/repo workflow=.github/workflows/release.yml dists=Foo,Bar\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []Rule{{"author", "ETHER"}, {"dist", "Try-Tiny"}, {"namespace", "Try::Tiny"}, {"namespace", "Try::Tiny::*"}, {"path", "authors/id/E/ET/ETHER/*"}}
	if !reflect.DeepEqual(rules, want) {
		t.Errorf("rules %+v", rules)
	}
	wantExp := []Expectation{{Dists: []string{"Foo", "Bar"}, Issuer: "https://token.actions.githubusercontent.com", Repository: "owner/repo", Workflow: ".github/workflows/release.yml"}}
	if !reflect.DeepEqual(exp, wantExp) {
		t.Errorf("expect %+v", exp)
	}
}

func TestParseRequestTextRejects(t *testing.T) {
	long := strings.Repeat("a", maxLineBytes+1)
	many := strings.Repeat("author ETHER\n", 1) + strings.Repeat("dist A\n", 0)
	for i := range DefaultMaxRules {
		many += "dist D" + strings.Repeat("x", i%5) + string(rune('a'+i%26)) + "-" + strings.Repeat("1", i/26+1) + "\n"
	}
	for name, tc := range map[string]struct {
		text string
		line int
	}{
		"unknown kind":         {"author ETHER\nfoo bar", 2},
		"no value":             {"dist", 1},
		"two values":           {"dist Foo Bar", 1},
		"bad author":           {"author e", 1},
		"author with space":    {"author E THER", 1},
		"bad dist":             {"dist -Foo", 1},
		"dist glob":            {"dist Foo*", 1},
		"bad namespace":        {"namespace Foo::", 1},
		"namespace star mid":   {"namespace Foo::*::Bar", 1},
		"namespace quote":      {"namespace Foo'Bar", 1},
		"path outside authors": {"path modules/*", 1},
		"path bad glob":        {"path authors/id/[", 1},
		"path control":         {"path authors/id/\x01", 1},
		"path backslash":       {"path authors/id/a\\*", 1},
		"path bidi":            {"path authors/id/\u202eA/*", 1},
		"path non-ascii":       {"path authors/id/\u00e9*", 1},
		"long line":            {"dist Foo\n" + long, 2},
		"expect no issuer":     {"expect repository=a/b", 1},
		"expect http issuer":   {"expect issuer=http://x repository=a/b", 1},
		"expect only issuer":   {"expect issuer=https://x", 1},
		"expect unknown key":   {"expect issuer=https://x repository=a/b color=red", 1},
		"expect twice":         {"expect issuer=https://x issuer=https://y repository=a/b", 1},
		"expect no equals":     {"expect issuer", 1},
		"expect bad dist":      {"expect issuer=https://x repository=a/b dists=Foo,,Bar", 1},
		"expect non-ascii":     {"expect issuer=https://x repository=a/\u00e9", 1},
		"expect empty value":   {"expect issuer= repository=a/b", 1},
		"too many rules":       {many, DefaultMaxRules + 1},
		"invalid utf8":         {"dist \xff", 0},
		"too long":             {strings.Repeat("# x\n", maxTextBytes/4+1), 0},
	} {
		t.Run(name, func(t *testing.T) {
			r, e, err := ParseRequestText(tc.text)
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("got %v, %v, %v; want an *InputError", r, e, err)
			}
			if ie.Line != tc.line {
				t.Errorf("error %q names line %d, want %d", err, ie.Line, tc.line)
			}
			if tc.line > 0 && !strings.HasPrefix(err.Error(), "line ") {
				t.Errorf("error %q does not name its line", err)
			}
			if len(err.Error()) > 300 {
				t.Errorf("error is %d bytes long", len(err.Error()))
			}
		})
	}
}

func TestNormalizeEmail(t *testing.T) {
	good := map[string]string{
		"a@Example.ORG":        "a@example.org",
		" Ab.c+d@example.org ": "Ab.c+d@example.org",
	}
	for in, want := range good {
		if got, err := NormalizeEmail(in); err != nil || got != want {
			t.Errorf("%q: %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "a", "a@b", "Name <a@example.org>", "<a@example.org>", `"a b"@example.org`, "a@[127.0.0.1]",
		"a@example.org, b@example.org", "a@example.org.", "a\n@example.org", strings.Repeat("a", 250) + "@example.org", "a@@example.org", "\xff@example.org", "j\u00f6rg@example.org", "a@b\u00fccher.example"} {
		if got, err := NormalizeEmail(bad); err == nil {
			t.Errorf("%q accepted as %q", bad, got)
		}
	}
}

func TestSubscribeRejectsBadInput(t *testing.T) {
	w := newWorld(t)
	ok := []Rule{{Kind: "author", Value: "ETHER"}}
	for name, req := range map[string]Request{
		"bad address":    {Email: "Name <a@example.org>", Rules: ok},
		"no rules":       {Email: "a@example.org"},
		"bad rule":       {Email: "a@example.org", Rules: []Rule{{Kind: "path", Value: "/etc/*"}}},
		"bad expect":     {Email: "a@example.org", Rules: ok, Expect: []Expectation{{Issuer: "https://x"}}},
		"webhook scheme": {Email: "a@example.org", Rules: ok, Webhook: "file:///etc/passwd"},
		"webhook user":   {Email: "a@example.org", Rules: ok, Webhook: "https://u:p@example.org/"},
		"too many":       {Email: "a@example.org", Rules: make([]Rule, DefaultMaxRules+1)},
	} {
		var ie *InputError
		if err := w.c.Subscribe(ctx, req, "s"); !errors.As(err, &ie) {
			t.Errorf("%s: %v, want an *InputError", name, err)
		}
	}
	if len(w.mail.sent) != 0 {
		t.Fatalf("bad input sent %d mails", len(w.mail.sent))
	}
}

func FuzzParseRequestText(f *testing.F) {
	f.Add("author ETHER\ndist Try-Tiny\nnamespace Try::Tiny::*\npath authors/id/E/ET/ETHER/*\n")
	f.Add("expect issuer=https://token.actions.githubusercontent.com repository=owner/repo workflow=.github/workflows/release.yml dists=Foo,Bar")
	f.Fuzz(func(t *testing.T, text string) {
		rules, exp, err := ParseRequestText(text)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("not an InputError: %v", err)
			}
			return
		}
		if len(rules)+len(exp) > DefaultMaxRules {
			t.Fatalf("%d rules", len(rules)+len(exp))
		}
		// What it accepts, the request check accepts too (Subscribe and
		// Update validate again), and normalising is stable.
		for _, r := range rules {
			n, err := checkRule(r)
			if err != nil || n != r {
				t.Fatalf("rule %+v: %+v %v", r, n, err)
			}
		}
		for _, e := range exp {
			if err := checkExpectation(e); err != nil {
				t.Fatalf("expectation %+v: %v", e, err)
			}
		}
	})
}

func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"a@Example.ORG", "Name <a@example.org>", `"a b"@example.org`, "a@[127.0.0.1]", "a@b", "a\r\n@example.org"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormalizeEmail(s)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("not an InputError: %v", err)
			}
			return
		}
		again, err := NormalizeEmail(got)
		if err != nil || again != got {
			t.Fatalf("%q normalised to %q, which normalises to %q, %v", s, got, again, err)
		}
		if strings.Count(got, "@") != 1 || strings.ContainsAny(got, " <>\"\r\n\t[]") || len(got) > maxEmailBytes {
			t.Fatalf("%q accepted as %q", s, got)
		}
	})
}
