package web

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/CPAN-Security/cpan-tlog/monitor/community"
)

// FuzzParseForm: any form body either parses or is an *InputError (never
// a panic, never another error); what parses is within the fields'
// bounds, and its rules written back by FormatRules (the manage form's
// text) parse to the same rules.
func FuzzParseForm(f *testing.F) {
	f.Add("email=a%40example.org&rules=author+ETHER%0Adist+Try-Tiny&mail=1")
	f.Add("email=a%40example.org&rules=expect+issuer%3Dhttps%3A%2F%2Ftoken.actions.githubusercontent.com+repository%3Do%2Fr+dists%3DFoo%2CBar&webhook=https%3A%2F%2Fh.example%2Fx")
	f.Add("email=&rules=")
	f.Add("email=a%40b&email=c%40d")
	f.Add("email=a%0D%0ABcc%3A+e%40x&rules=author+X")
	f.Add("rules=namespace+Foo%3A%3A*%0Apath+authors%2Fid%2FE%2FET%2FETHER%2F*%0A%23+comment")
	f.Fuzz(func(t *testing.T, body string) {
		v, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		for _, needEmail := range []bool{true, false} {
			req, err := parseForm(v, needEmail)
			if err != nil {
				var ie *community.InputError
				if !errors.As(err, &ie) || ie.Error() == "" {
					t.Fatalf("error %T %v is not an InputError", err, err)
				}
				continue
			}
			if needEmail && (req.Email == "" || len(req.Email) > maxEmail) {
				t.Fatalf("email %q accepted", req.Email)
			}
			if len(req.Webhook) > maxWebhook || strings.ContainsAny(req.Webhook, " \r\n\t") {
				t.Fatalf("webhook %q accepted", req.Webhook)
			}
			rules, expect, err := community.ParseRequestText(FormatRules(req.Rules, req.Expect))
			if err != nil {
				t.Fatalf("FormatRules(%+v, %+v) does not parse: %v", req.Rules, req.Expect, err)
			}
			if !reflect.DeepEqual(rules, req.Rules) || !reflect.DeepEqual(expect, req.Expect) {
				t.Fatalf("round trip: %+v %+v became %+v %+v", req.Rules, req.Expect, rules, expect)
			}
		}
	})
}

// TestFormatRules: the manage form's text for stored rules.
func TestFormatRules(t *testing.T) {
	got := FormatRules([]community.Rule{{Kind: "author", Value: "ETHER"}, {Kind: "namespace", Value: "Try::Tiny::*"}},
		[]community.Expectation{{Issuer: "https://token.actions.githubusercontent.com", Repository: "o/r", Workflow: ".github/workflows/release.yml", Dists: []string{"A", "B"}}})
	want := "author ETHER\nnamespace Try::Tiny::*\nexpect issuer=https://token.actions.githubusercontent.com repository=o/r workflow=.github/workflows/release.yml dists=A,B\n"
	if got != want {
		t.Errorf("FormatRules:\n%s\nwant:\n%s", got, want)
	}
}

// TestParseFormMalformed: each malformed field is an *InputError naming
// the field; nothing malformed passes.
func TestParseFormMalformed(t *testing.T) {
	ok := url.Values{"email": {"a@example.org"}, "rules": {"author ETHER"}, "mail": {"1"}}
	with := func(k string, v ...string) url.Values {
		c := url.Values{}
		for kk, vv := range ok {
			c[kk] = vv
		}
		c[k] = v
		return c
	}
	cases := []struct {
		name string
		v    url.Values
		want string
	}{
		{"no email", with("email", ""), "enter your email address"},
		{"blank email", with("email", "  \t"), "enter your email address"},
		{"long email", with("email", strings.Repeat("a", 250)+"@example.org"), "longer than 254"},
		{"CRLF in email", with("email", "a@example.org\r\nBcc: b@example.org"), "white space or control"},
		{"NUL in email", with("email", "a\x00@example.org"), "white space or control"},
		{"space in email", with("email", "a b@example.org"), "white space or control"},
		{"two emails", with("email", "a@example.org", "b@example.org"), "email more than once"},
		{"two rules fields", with("rules", "author A", "author B"), "rules more than once"},
		{"two mail fields", with("mail", "1", "0"), "mail more than once"},
		{"long webhook", with("webhook", "https://h.example/"+strings.Repeat("a", 2048)), "longer than 2048"},
		{"newline in webhook", with("webhook", "https://h.example/\nx"), "white space or control"},
		{"bad rule", with("rules", "author ETHER\nbogus X"), "line 2"},
		{"bad UTF-8 rules", with("rules", "author \xff"), "UTF-8"},
	}
	for _, c := range cases {
		_, err := parseForm(c.v, true)
		var ie *community.InputError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an InputError saying %q", c.name, err, c.want)
		}
	}
	req, err := parseForm(ok, true)
	if err != nil || req.Email != "a@example.org" || !req.Mail || len(req.Rules) != 1 {
		t.Errorf("a good form: %+v, %v", req, err)
	}
	// Manage forms carry no address; one is not required there.
	if _, err := parseForm(url.Values{"rules": {"dist X"}}, false); err != nil {
		t.Errorf("a manage form: %v", err)
	}
	for _, off := range []string{"", "0", "off"} {
		if req, _ := parseForm(with("mail", off), true); req.Mail {
			t.Errorf("mail=%q reads as mail on", off)
		}
	}
}
