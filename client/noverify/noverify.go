// Package noverify is the one way unlogged code gets past the CPAN clients'
// deny by default: the CPANTLOG_NOVERIFY patterns, which name the
// distributions, URLs and local paths a user lets through without the log
// (a DarkPAN, a git checkout, a module under development). Every file a
// pattern lets through is still reported, as "not verified (exempt by
// PATTERN)", so the caller needs the pattern that matched, not just a yes.
//
// The same matcher is implemented in Perl (CPAN::TLog::NoVerify), and both
// are held to testdata/vectors-noverify.txt; a pattern means the same thing
// to every client of the log.
//
// # Syntax
//
// CPANTLOG_NOVERIFY is a comma-separated list of patterns. White space
// (ASCII: space, tab, newline, CR, VT, FF) around each pattern is trimmed
// and empty entries are ignored, so an unset or empty variable exempts
// nothing.
//
// A subject is the string naming what arrived: for a CPAN file its CPAN
// path (authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz, or an index path such
// as modules/02packages.details.txt.gz); for a URL (git, http, file) the
// URL as given; for a local file or directory its absolute path.
//
// A pattern matches a subject when its glob matches the whole subject, or a
// leading part of the subject that is followed by '/' in the subject: like
// GOPRIVATE, a pattern covers everything below the path it names, by whole
// path elements (authors/id/M/MY/MYCO matches authors/id/M/MY/MYCO/X-1.tar.gz
// but not authors/id/M/MY/MYCOMPANY/X-1.tar.gz). In the glob, '*' matches
// any run of characters other than '/', '?' matches any one character other
// than '/', and every other character is literal: there are no character
// classes and no escapes. Matching is case-sensitive. A character is a
// UTF-8 encoded code point; in a subject that is not valid UTF-8, each
// byte that does not begin a valid sequence is one character.
//
// Match returns the first pattern, in the variable's order, that matches.
//
// # Refused patterns
//
// Parse refuses the whole variable (the tool must not start: exit 2), with
// an error naming the pattern, why and what to write instead, when a
// pattern
//
//   - is not valid UTF-8, or has a control character (Unicode Cc) or white
//     space (Unicode White_Space) inside it;
//   - would exempt everything: it is made only of '*', '?' and '/' (such as
//     "*" or "*/*"), or it is a URL scheme followed only by those ("https:",
//     "https://*", "file:///*", "*://*/*");
//   - would exempt every CPAN author: its first element matches "authors",
//     and either it has one element, or its second element matches "id" and
//     none of its elements from the fifth (the PAUSE id) on begins with a
//     literal character. So "authors", "authors/id", "authors/*",
//     "authors/id/*/*/*", "authors/id/E/ET/*", "authors/id/*/*/*/*" and
//     "authors/id/*/*/*/*.tar.gz" are refused, while
//     "authors/id/M/MY/MYCOMPANY", "authors/id/*/*/MYCOMPANY" and
//     "authors/id/*/*/*/MyCompany-*" are fine;
//   - matches an index file (IndexPaths, such as
//     modules/02packages.details.txt.gz, or "modules" itself): the index
//     chooses what is installed and is never exempt;
//   - ends in '/' (it could match only subjects with an empty last element;
//     the pattern without the '/' covers everything below it).
//
// The refusals catch mistakes, not malice: a pattern that names something
// is taken at its word.
package noverify

import (
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// EnvVar is the environment variable FromEnv reads.
const EnvVar = "CPANTLOG_NOVERIFY"

// IndexPaths are the index files no pattern may match (the same list as
// internal/cpan.IndexPaths, which a test checks).
var IndexPaths = []string{
	"modules/02packages.details.txt.gz",
	"modules/02packages.details.txt",
	"modules/06perms.txt.gz",
	"modules/06perms.txt",
	"authors/01mailrc.txt.gz",
}

// Patterns is a parsed CPANTLOG_NOVERIFY. The nil *Patterns matches nothing.
type Patterns struct {
	list  []string
	elems [][]string // each pattern split at '/'
}

// PatternError is a pattern Parse refuses. Its message names the variable,
// the pattern (quoted, bytes outside printable ASCII as \xNN) and the
// reason, which says what to write instead.
type PatternError struct {
	Pattern string // as written, with the spaces around it trimmed
	Reason  string
}

func (e *PatternError) Error() string {
	return EnvVar + ": pattern " + quote(e.Pattern) + " " + e.Reason
}

// Parse parses a CPANTLOG_NOVERIFY value. An error is a *PatternError for
// the first pattern refused.
func Parse(s string) (*Patterns, error) {
	p := &Patterns{}
	for _, f := range strings.Split(s, ",") {
		f = strings.Trim(f, asciiSpace)
		if f == "" {
			continue
		}
		if reason := check(f); reason != "" {
			return nil, &PatternError{Pattern: f, Reason: reason}
		}
		p.list = append(p.list, f)
		p.elems = append(p.elems, strings.Split(f, "/"))
	}
	return p, nil
}

// FromEnv parses the environment variable CPANTLOG_NOVERIFY. Unset or empty,
// it exempts nothing.
func FromEnv() (*Patterns, error) { return Parse(os.Getenv(EnvVar)) }

// Match returns the first pattern that matches subject. A subject that
// could lead elsewhere than it spells (LeadsElsewhere) matches nothing.
func (p *Patterns) Match(subject string) (pattern string, ok bool) {
	if p == nil || LeadsElsewhere(subject) {
		return "", false
	}
	for i, el := range p.elems {
		if matchElems(el, subject) {
			return p.list[i], true
		}
	}
	return "", false
}

// LeadsElsewhere reports whether a subject could name another place than
// the one it spells: a "." or ".." path element, an encoded '.', '/' or
// '\', a backslash, a query or a fragment (http://h/myorg/../evil/x.tar.gz
// is not below http://h/myorg). A pattern names a place; such a subject is
// never exempt.
func LeadsElsewhere(subject string) bool {
	for _, e := range strings.Split(subject, "/") {
		if e == "." || e == ".." {
			return true
		}
	}
	if strings.ContainsAny(subject, `\?#`) {
		return true
	}
	for i := 0; i+2 < len(subject); i++ {
		if subject[i] == '%' {
			switch strings.ToLower(subject[i+1 : i+3]) {
			case "2e", "2f", "5c":
				return true
			}
		}
	}
	return false
}

// String returns the patterns joined by commas: Parse(p.String()) is p.
func (p *Patterns) String() string {
	if p == nil {
		return ""
	}
	return strings.Join(p.list, ",")
}

const asciiSpace = " \t\n\v\f\r"

// matchElems reports whether the pattern elems matches subject or a leading
// part of it followed by '/'. The glob can only match a string with as many
// '/' as the pattern has, so the one candidate is subject cut before its
// len(elems)-th '/'.
func matchElems(elems []string, subject string) bool {
	rest := subject
	for i, e := range elems {
		var s string
		if i == len(elems)-1 {
			s, _, _ = strings.Cut(rest, "/")
		} else {
			var found bool
			s, rest, found = strings.Cut(rest, "/")
			if !found {
				return false
			}
		}
		if !globElem(e, s) {
			return false
		}
	}
	return true
}

// globElem matches one path element against one glob element (neither has a
// '/'): '*' any run of characters, '?' one character, the rest literal.
// pattern is valid UTF-8 (check), so each literal is a whole character,
// and sx stays on the character boundaries of s.
func globElem(pattern, s string) bool {
	px, sx := 0, 0
	starPx, starSx := -1, 0
	for px < len(pattern) || sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				starPx, starSx = px, sx
				px++
				continue
			case '?':
				if sx < len(s) {
					_, w := utf8.DecodeRuneInString(s[sx:])
					px++
					sx += w
					continue
				}
			default:
				_, w := utf8.DecodeRuneInString(pattern[px:])
				if strings.HasPrefix(s[sx:], pattern[px:px+w]) {
					px += w
					sx += w
					continue
				}
			}
		}
		// Mismatch: let the last '*' take one more character.
		if starPx >= 0 && starSx < len(s) {
			_, w := utf8.DecodeRuneInString(s[starSx:])
			starSx += w
			px, sx = starPx+1, starSx
			continue
		}
		return false
	}
	return true
}

// check returns why pattern (trimmed, non-empty) is refused, or "".
func check(pattern string) string {
	if !utf8.ValidString(pattern) {
		return "is not valid UTF-8"
	}
	for i, r := range pattern {
		if badRune(r) {
			return "has white space or a control character inside it (at byte " + strconv.Itoa(i) + "): separate patterns with commas"
		}
	}
	rest := pattern
	scheme := schemeLen(pattern)
	if scheme > 0 {
		rest = pattern[scheme:]
	}
	if strings.Trim(rest, "*?/") == "" {
		if scheme > 0 {
			return "would exempt every URL of its scheme: name the host, such as https://git.example.com/myorg"
		}
		return "would exempt everything: name what to exempt, such as authors/id/M/MY/MYCOMPANY, https://git.example.com/myorg or /home/me/src"
	}
	elems := strings.Split(pattern, "/")
	if globElem(elems[0], "authors") && (len(elems) == 1 || globElem(elems[1], "id")) {
		named := false
		for i := 4; i < len(elems); i++ {
			if e := elems[i]; e != "" && e[0] != '*' && e[0] != '?' {
				named = true
			}
		}
		if !named {
			return "would exempt every CPAN author's uploads (a wildcard at or above the PAUSE id): name the author directory, such as authors/id/M/MY/MYCOMPANY or authors/id/*/*/MYCOMPANY"
		}
	}
	for _, ip := range IndexPaths {
		if matchElems(elems, ip) {
			return "matches the index file " + ip + ", which chooses what is installed and is never exempt: name the distributions' author directory instead, such as authors/id/M/MY/MYCOMPANY"
		}
	}
	if strings.HasSuffix(pattern, "/") {
		return "ends in \"/\": a pattern covers everything below it already; write " + quote(strings.TrimRight(pattern, "/"))
	}
	return ""
}

// schemeLen returns the length of a leading URL scheme and its ':' (RFC 3986
// scheme syntax, with '*' and '?' allowed), or 0.
func schemeLen(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '*', c == '?':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':':
			return i + 1
		default:
			return 0
		}
	}
	return 0
}

// badRune reports control characters (Unicode Cc) and white space (Unicode
// White_Space), spelled out so that the Perl implementation can list the
// same; a test checks it against unicode.IsControl and unicode.IsSpace.
func badRune(r rune) bool {
	switch {
	case r <= 0x20, r >= 0x7f && r <= 0xa0:
		return true
	case r == 0x1680, r >= 0x2000 && r <= 0x200a, r == 0x2028, r == 0x2029,
		r == 0x202f, r == 0x205f, r == 0x3000:
		return true
	}
	return false
}

// quote quotes s as the Perl implementation does: bytes outside printable
// ASCII, '"' and '\' as \xNN.
func quote(s string) string {
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			b.WriteString(`\x`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		} else {
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
