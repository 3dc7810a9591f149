// Package cpan knows CPAN's own formats and rules: which paths are valid
// upload paths under authors/id, how PAUSE ids look, which files PAUSE lets
// an author overwrite, and how CPAN::DistnameInfo splits a file name into a
// distribution and a version.
//
// Everything here is pure: no I/O, no Perl.
package cpan

import (
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// AuthorsPrefix is the directory under the CPAN root that holds every
// author's uploads.
const AuthorsPrefix = "authors/id/"

// MaxPathBelowAuthors is the longest path accepted below authors/id/, in bytes.
const MaxPathBelowAuthors = 255

// MaxIDLength bounds a PAUSE id. PAUSE itself hands out ids of at most nine
// characters; a little slack costs nothing and keeps old odd ids loggable.
const MaxIDLength = 32

// ValidID reports whether id looks like a PAUSE id: an upper-case letter,
// then upper-case letters, digits or hyphens, 2 to MaxIDLength characters.
// (A loop, not a regexp: it runs several times for every logged entry.)
func ValidID(id string) bool {
	if len(id) < 2 || len(id) > MaxIDLength || id[0] < 'A' || id[0] > 'Z' {
		return false
	}
	for i := 1; i < len(id); i++ {
		c := id[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// ErrBadPath is wrapped by every error ValidatePath returns.
var ErrBadPath = errors.New("invalid CPAN path")

func badPath(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadPath}, args...)...)
}

// ValidatePath checks that p is a file path relative to the CPAN root inside
// an author directory, authors/id/A/AB/ABCDE/..., and returns the author's
// PAUSE id. It refuses empty components (//), . and .., control bytes,
// white space (any Unicode space), invisible format characters
// (zero-width, BOM, bidi controls), invalid UTF-8, backslashes and paths longer than
// MaxPathBelowAuthors bytes below authors/id/.
func ValidatePath(p string) (cpanID string, err error) {
	rest, ok := strings.CutPrefix(p, AuthorsPrefix)
	if !ok {
		return "", badPath("%q does not start with %q", p, AuthorsPrefix)
	}
	if len(rest) > MaxPathBelowAuthors {
		return "", badPath("%d bytes below %s, more than %d", len(rest), AuthorsPrefix, MaxPathBelowAuthors)
	}
	// The common case, a path of printable ASCII (valid UTF-8, nothing to
	// look up), in one pass over its bytes; a leaf is parsed on every add
	// and by the monitor for every entry of the log.
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			if err := checkRunes(p, rest); err != nil {
				return "", err
			}
			break
		}
	}
	var parts [3]string
	n := 0
	rem := rest
	for more := true; more; n++ {
		var c string
		c, rem, more = strings.Cut(rem, "/")
		switch c {
		case "":
			return "", badPath("%q has an empty path component", p)
		case ".", "..":
			return "", badPath("%q has a %q component", p, c)
		}
		if n < len(parts) {
			parts[n] = c
		}
	}
	if n < 4 {
		return "", badPath("%q has no file below the author directory (want authors/id/A/AB/ABCDE/FILE)", p)
	}
	id := parts[2]
	if !ValidID(id) {
		return "", badPath("%q is not a PAUSE id", id)
	}
	if parts[0] != id[:1] || parts[1] != id[:2] {
		return "", badPath("author directory %s/%s/%s should be %s/%s/%s", parts[0], parts[1], id, id[:1], id[:2], id)
	}
	return id, nil
}

// checkRunes refuses, in path p, a rest below authors/id/ that is not
// UTF-8 or holds a character that does not belong in a path.
func checkRunes(p, rest string) error {
	if !utf8.ValidString(rest) {
		return badPath("%q is not valid UTF-8", p)
	}
	for _, r := range rest {
		if r > ' ' && r < 0x7f && r != '\\' {
			continue // printable ASCII, nothing to look up
		}
		switch {
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return badPath("%q contains a control character", p)
		case unicode.IsSpace(r):
			return badPath("%q contains white space (%U)", p, r)
		case unicode.Is(unicode.Cf, r):
			// Zero-width, byte-order and bidi characters make one path look
			// like another on every screen.
			return badPath("%q contains an invisible format character (%U)", p, r)
		case r == '\\':
			return badPath("%q contains a backslash", p)
		case r == utf8.RuneError:
			// What a decoder leaves for bytes it could not read: the path
			// is not the one that was sent.
			return badPath("%q contains U+FFFD, the replacement character", p)
		}
	}
	return nil
}

// overwritableRE is PAUSE's may_overwrite_file rule: documentation files
// may be uploaded again under the same name; nothing else may.
var overwritableRE = regexp.MustCompile(`(?i)(?:readme|\.(?:html|txt|mkdn|md|xml|yml|json|pdf|rdf|pod))(?:\.gz|\.bz2)?$`)

// MayOverwrite reports whether PAUSE lets a file at path p be replaced by a
// file with other content. Only documentation files qualify: names ending in
// readme, .html, .txt, .mkdn, .md, .xml, .yml, .json, .pdf, .rdf or .pod,
// optionally compressed with .gz or .bz2, in any case.
//
// It runs for every file a proxy serves: an ASCII name is checked by its
// suffix; the regexp (Unicode case folding) only decides the others.
func MayOverwrite(p string) bool {
	tail := p[max(0, len(p)-16):]
	for i := 0; i < len(tail); i++ {
		if tail[i] >= utf8.RuneSelf {
			return overwritableRE.MatchString(p)
		}
	}
	if docSuffix(tail) {
		return true
	}
	for _, z := range []string{".gz", ".bz2"} {
		if hasSuffixFold(tail, z) && docSuffix(tail[:len(tail)-len(z)]) {
			return true
		}
	}
	return false
}

var docSuffixes = []string{"readme", ".html", ".txt", ".mkdn", ".md", ".xml", ".yml", ".json", ".pdf", ".rdf", ".pod"}

func docSuffix(s string) bool {
	for _, suf := range docSuffixes {
		if hasSuffixFold(s, suf) {
			return true
		}
	}
	return false
}

// hasSuffixFold is strings.HasSuffix ignoring ASCII case.
func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// IndexPaths are the index files PAUSE publishes that clients use to choose
// what to install. Each is logged as an index entry every time it changes.
var IndexPaths = []string{
	"modules/02packages.details.txt.gz",
	"modules/02packages.details.txt",
	"modules/06perms.txt.gz",
	"modules/06perms.txt",
	"authors/01mailrc.txt.gz",
}

// IsIndexPath reports whether p is one of IndexPaths.
func IsIndexPath(p string) bool {
	for _, ip := range IndexPaths {
		if p == ip {
			return true
		}
	}
	return false
}

// ProofsDir is where a mirror publishes the log's tlog-proofs, beside
// authors/ and modules/ but outside them, so that nothing mistakes a proof
// for an upload.
const ProofsDir = "tlog/proofs/"

// ProofPath is where the tlog-proof of the file at path with content sha
// is published. A path whose content never changes (an upload PAUSE never
// lets be replaced) has one proof, <path>.tlog-proof; an index file or a
// documentation file PAUSE lets change has one per content,
// <path>.<sha256 hex>.tlog-proof, so that a proof, once written, never
// changes either.
func ProofPath(path string, sha [32]byte) string {
	if IsIndexPath(path) || MayOverwrite(path) {
		return fmt.Sprintf("%s%s.%x.tlog-proof", ProofsDir, path, sha)
	}
	return ProofsDir + path + ".tlog-proof"
}

// ParseProofPath is ProofPath backwards: the CPAN path a proof file name
// is for and, for a per-content name, the sha256 in it.
func ParseProofPath(name string) (path string, sha [32]byte, perContent bool, ok bool) {
	rest, ok1 := strings.CutPrefix(name, ProofsDir)
	rest, ok2 := strings.CutSuffix(rest, ".tlog-proof")
	if !ok1 || !ok2 {
		return "", sha, false, false
	}
	if i := len(rest) - 65; i > 0 && rest[i] == '.' {
		if _, err := hex.Decode(sha[:], []byte(rest[i+1:])); err == nil && strings.ToLower(rest[i+1:]) == rest[i+1:] {
			if p := rest[:i]; IsIndexPath(p) || MayOverwrite(p) {
				return p, sha, true, true
			}
		}
	}
	if IsIndexPath(rest) || MayOverwrite(rest) {
		return "", sha, false, false // per-content paths always carry the sha256
	}
	if _, err := ValidatePath(rest); err != nil {
		return "", sha, false, false
	}
	return rest, sha, false, true
}
