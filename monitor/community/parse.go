package community

import (
	"fmt"
	"net/mail"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
)

// Bounds on what a subscriber writes. They keep one subscription small
// (it is read on every routing index rebuild) and every error message
// short.
const (
	maxTextBytes  = 64 << 10 // the whole rules text
	maxLineBytes  = 512
	maxValueBytes = 255
	maxEmailBytes = 254 // RFC 5321's path limit, less the brackets
	maxURLBytes   = 512
	maxDists      = 50 // dists= of one expectation
)

// Rule kinds.
const (
	KindAuthor    = "author"
	KindDist      = "dist"
	KindNamespace = "namespace"
	KindPath      = "path"
)

var distRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)

// ParseRequestText parses the form's text area, one rule a line:
//
//	author ETHER
//	dist Try-Tiny
//	namespace Try::Tiny          (or Try::Tiny::* for the namespace below it)
//	path authors/id/E/ET/ETHER/*
//	expect issuer=https://token.actions.githubusercontent.com repository=owner/repo [workflow=.github/workflows/release.yml] [dists=Foo,Bar]
//
// Blank lines and lines starting with # are skipped. Every error is an
// *InputError naming its line; the text is bounded in size, line length
// and number of rules (DefaultMaxRules).
func ParseRequestText(text string) ([]Rule, []Expectation, error) {
	return parseRequestText(text, DefaultMaxRules)
}

func parseRequestText(text string, maxRules int) ([]Rule, []Expectation, error) {
	if len(text) > maxTextBytes {
		return nil, nil, &InputError{Msg: fmt.Sprintf("the rules are longer than %d bytes", maxTextBytes)}
	}
	if !utf8.ValidString(text) {
		return nil, nil, &InputError{Msg: "the rules are not valid UTF-8"}
	}
	var rules []Rule
	var expect []Expectation
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		if len(line) > maxLineBytes {
			return nil, nil, &InputError{Line: n, Msg: fmt.Sprintf("longer than %d bytes", maxLineBytes)}
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(rules)+len(expect) >= maxRules {
			return nil, nil, &InputError{Line: n, Msg: fmt.Sprintf("more than %d rules", maxRules)}
		}
		kind, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		if kind == "expect" {
			e, err := parseExpectation(rest)
			if err != nil {
				return nil, nil, &InputError{Line: n, Msg: err.Error()}
			}
			expect = append(expect, e)
			continue
		}
		r := Rule{Kind: kind, Value: rest}
		if strings.ContainsAny(rest, " \t") {
			return nil, nil, &InputError{Line: n, Msg: fmt.Sprintf("%s takes one value", safeWord(kind))}
		}
		r, err := checkRule(r)
		if err != nil {
			return nil, nil, &InputError{Line: n, Msg: err.Error()}
		}
		if !slices.Contains(rules, r) {
			rules = append(rules, r)
		}
	}
	return rules, expect, nil
}

// safeWord quotes what a subscriber wrote for an error message, short.
func safeWord(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// checkRule validates one rule and returns it in its normal form (PAUSE
// ids upper-case).
func checkRule(r Rule) (Rule, error) {
	v := r.Value
	if v == "" {
		return r, fmt.Errorf("%s needs a value", safeWord(r.Kind))
	}
	if len(v) > maxValueBytes {
		return r, fmt.Errorf("the value is longer than %d bytes", maxValueBytes)
	}
	switch r.Kind {
	case KindAuthor:
		r.Value = strings.ToUpper(v)
		if !cpan.ValidID(r.Value) {
			return r, fmt.Errorf("%s is not a PAUSE id", safeWord(v))
		}
	case KindDist:
		if !distRE.MatchString(v) {
			return r, fmt.Errorf("%s is not a distribution name (Try-Tiny)", safeWord(v))
		}
	case KindNamespace:
		name := strings.TrimSuffix(v, "::*")
		if strings.Contains(name, "*") || strings.Contains(name, "'") || strings.HasSuffix(name, "::") || !cpan.ValidPackage(name) {
			return r, fmt.Errorf("%s is not a package name (Try::Tiny) or a namespace (Try::Tiny::*)", safeWord(v))
		}
	case KindPath:
		if !strings.HasPrefix(v, cpan.AuthorsPrefix) {
			return r, fmt.Errorf("a path glob starts with %s", cpan.AuthorsPrefix)
		}
		// Printable ASCII only: the glob is shown back in every message,
		// and a requester's invisible or right-to-left characters must
		// not reach the confirmation mail of an address not theirs.
		for _, c := range v {
			if c <= 0x20 || c >= 0x7f || c == '\\' {
				return r, fmt.Errorf("the path glob holds a space, a control or non-ASCII character or a backslash (use * or ?)")
			}
		}
		if _, err := path.Match(v, ""); err != nil {
			return r, fmt.Errorf("%s is not a valid glob: %v", safeWord(v), err)
		}
	default:
		return r, fmt.Errorf("unknown rule %s (author, dist, namespace, path or expect)", safeWord(r.Kind))
	}
	return r, nil
}

// parseExpectation parses "issuer=URL repository=owner/repo
// workflow=.github/workflows/x.yml dists=A,B".
func parseExpectation(s string) (Expectation, error) {
	var e Expectation
	seen := map[string]bool{}
	for f := range strings.FieldsSeq(s) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || v == "" {
			return e, fmt.Errorf("expect takes key=value pairs; %s is not one", safeWord(f))
		}
		if seen[k] {
			return e, fmt.Errorf("%s given twice", safeWord(k))
		}
		seen[k] = true
		switch k {
		case "issuer":
			e.Issuer = v
		case "repository", "repo":
			e.Repository = v
		case "workflow":
			e.Workflow = v
		case "dists", "dist":
			for d := range strings.SplitSeq(v, ",") {
				e.Dists = append(e.Dists, d)
			}
		default:
			return e, fmt.Errorf("unknown key %s (issuer, repository, workflow, dists)", safeWord(k))
		}
	}
	return e, checkExpectation(e)
}

func checkExpectation(e Expectation) error {
	if e.Issuer == "" {
		return fmt.Errorf("expect needs issuer=")
	}
	if e.Repository == "" && e.Workflow == "" {
		return fmt.Errorf("expect needs repository= or workflow=")
	}
	// A workflow path alone (.github/workflows/release.yml) is in every
	// repository: anyone's own repository would match it.
	if e.Repository == "" && !strings.Contains(e.Workflow, "://") {
		return fmt.Errorf("a workflow path needs repository= too (or give the workflow's full URL)")
	}
	for _, v := range []string{e.Issuer, e.Repository, e.Workflow} {
		if len(v) > maxValueBytes {
			return fmt.Errorf("a value is longer than %d bytes", maxValueBytes)
		}
		for _, c := range v {
			if c <= 0x20 || c == 0x7f || c > 0x7e {
				return fmt.Errorf("%s holds a space, control or non-ASCII character", safeWord(v))
			}
		}
	}
	if u, err := url.Parse(e.Issuer); err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("the issuer %s is not an https URL", safeWord(e.Issuer))
	}
	if len(e.Dists) > maxDists {
		return fmt.Errorf("more than %d dists", maxDists)
	}
	for _, d := range e.Dists {
		if !distRE.MatchString(d) || len(d) > maxValueBytes {
			return fmt.Errorf("%s is not a distribution name", safeWord(d))
		}
	}
	return nil
}

// NormalizeEmail checks that s is one bare address (no name, no angle
// brackets, no quoted local part, no IP literal) and returns it with its
// domain in lower case.
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	bad := &InputError{Msg: "that is not an email address (write just the address: you@example.org)"}
	if s == "" || len(s) > maxEmailBytes || !utf8.ValidString(s) {
		return "", bad
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", bad
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || strings.ContainsAny(domain, "[]@") || !strings.Contains(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", bad
	}
	// ASCII only (an internationalised domain in its xn-- form): SMTP
	// without SMTPUTF8, which notify speaks, carries nothing else.
	for _, c := range s {
		if c <= 0x20 || c >= 0x7f {
			return "", bad
		}
	}
	return local + "@" + strings.ToLower(domain), nil
}

// checkWebhook accepts an http(s) URL without credentials; where it may
// point (not loopback or private) is checked when it is dialled
// (notify.Webhook).
func checkWebhook(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > maxURLBytes {
		return &InputError{Msg: fmt.Sprintf("the webhook URL is longer than %d bytes", maxURLBytes)}
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return &InputError{Msg: "the webhook must be an http(s) URL without user name, password or #fragment"}
	}
	return nil
}

// checkRequest validates a request's rules, expectations and channels
// (not its address) and returns the rules in normal form.
func checkRequest(req Request, maxRules int) ([]Rule, []Expectation, error) {
	if len(req.Rules) == 0 {
		return nil, nil, &InputError{Msg: "say what to watch: at least one author, dist, namespace or path rule"}
	}
	if len(req.Rules)+len(req.Expect) > maxRules {
		return nil, nil, &InputError{Msg: fmt.Sprintf("more than %d rules", maxRules)}
	}
	var rules []Rule
	for _, r := range req.Rules {
		n, err := checkRule(r)
		if err != nil {
			return nil, nil, &InputError{Msg: err.Error()}
		}
		if !slices.Contains(rules, n) {
			rules = append(rules, n)
		}
	}
	for _, e := range req.Expect {
		if err := checkExpectation(e); err != nil {
			return nil, nil, &InputError{Msg: err.Error()}
		}
	}
	if err := checkWebhook(req.Webhook); err != nil {
		return nil, nil, err
	}
	return rules, slices.Clone(req.Expect), nil
}
