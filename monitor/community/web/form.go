package web

import (
	"html/template"
	"net/url"
	"strings"
	"unicode"

	"github.com/CPAN-Security/cpan-tlog/monitor/community"
)

// Bounds of the form's own fields (the rules text is bounded by
// community.ParseRequestText). An address is at most 254 octets (RFC
// 5321's path limit less its brackets).
const (
	maxEmail   = 254
	maxWebhook = 2048
)

// parseForm turns a subscribe or manage form into a Request. The address
// is required only when subscribing (manage never changes it). Its
// errors are *community.InputError, safe to show.
func parseForm(v url.Values, needEmail bool) (community.Request, error) {
	var req community.Request
	for _, k := range []string{"email", "rules", "webhook", "mail"} {
		if len(v[k]) > 1 {
			return req, &community.InputError{Msg: "the form sent " + k + " more than once"}
		}
	}
	if needEmail {
		req.Email = strings.TrimSpace(v.Get("email"))
		switch {
		case req.Email == "":
			return req, &community.InputError{Msg: "enter your email address"}
		case len(req.Email) > maxEmail:
			return req, &community.InputError{Msg: "the email address is longer than 254 characters"}
		case strings.IndexFunc(req.Email, unicode.IsControl) >= 0 || strings.ContainsFunc(req.Email, unicode.IsSpace):
			return req, &community.InputError{Msg: "the email address holds white space or control characters"}
		}
	}
	req.Webhook = strings.TrimSpace(v.Get("webhook"))
	switch {
	case len(req.Webhook) > maxWebhook:
		return req, &community.InputError{Msg: "the webhook URL is longer than 2048 characters"}
	case strings.IndexFunc(req.Webhook, unicode.IsControl) >= 0 || strings.ContainsFunc(req.Webhook, unicode.IsSpace):
		return req, &community.InputError{Msg: "the webhook URL holds white space or control characters"}
	}
	switch v.Get("mail") {
	case "", "0", "off":
	default:
		req.Mail = true
	}
	rules, expect, err := community.ParseRequestText(v.Get("rules"))
	if err != nil {
		if _, ok := err.(*community.InputError); !ok {
			err = &community.InputError{Msg: err.Error()}
		}
		return req, err
	}
	req.Rules, req.Expect = rules, expect
	return req, nil
}

// shownForm is what a form re-shown with an error holds: what was sent,
// cut to the fields' bounds (the template escapes it).
func shownForm(v url.Values) form {
	cut := func(s string, n int) string {
		if len(s) > n {
			return strings.ToValidUTF8(s[:n], "")
		}
		return s
	}
	return form{
		Email:   cut(v.Get("email"), maxEmail),
		Rules:   cut(v.Get("rules"), DefaultMaxBody),
		Webhook: cut(v.Get("webhook"), maxWebhook),
		Mail:    v.Get("mail") != "" && v.Get("mail") != "0" && v.Get("mail") != "off",
	}
}

// FormatRules writes rules and expectations back in the syntax
// community.ParseRequestText reads, one a line, for the manage form.
func FormatRules(rules []community.Rule, expect []community.Expectation) string {
	var b strings.Builder
	for _, r := range rules {
		b.WriteString(r.Kind + " " + r.Value + "\n")
	}
	for _, e := range expect {
		b.WriteString(FormatExpectation(e) + "\n")
	}
	return b.String()
}

// FormatExpectation is one expectation as an expect line.
func FormatExpectation(e community.Expectation) string { return "expect " + e.String() }

var funcs = template.FuncMap{
	"join": strings.Join,
	"ruleKind": func(k string) string {
		switch k {
		case "author":
			return "PAUSE id"
		case "dist":
			return "distribution"
		case "namespace":
			return "namespace"
		case "path":
			return "path"
		}
		return k
	},
}
