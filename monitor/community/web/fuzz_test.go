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
