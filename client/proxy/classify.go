package proxy

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
)

// Class is what kind of CPAN file a request names. The proxy serves a
// request only when it has a class, and only after the check of that class
// passed: it decides by allowlist, never by exception.
type Class int

const (
	// Upload is a file under authors/id/A/AB/ID/: served only when its
	// bytes verify against the log.
	Upload Class = iota + 1
	// Checksums is an author directory's CHECKSUMS: served only when it
	// parses as a CHECKSUMS file (cpanm and CPAN.pm compare tarballs
	// with it; the tarballs themselves are verified).
	Checksums
	// Index is one of the index files PAUSE publishes (cpan.IndexPaths):
	// served only when logged and not stale.
	Index
	// Modlist is modules/03modlist.data.gz, which CPAN.pm fetches and
	// evaluates as Perl. PAUSE has not maintained it since 2012 and the log
	// does not record it, so the proxy never serves the mirror's: it
	// answers an empty module list of its own.
	Modlist
)

// ModlistPath is the module list CPAN.pm asks for.
const ModlistPath = "modules/03modlist.data.gz"

func (c Class) String() string {
	switch c {
	case Upload:
		return "upload"
	case Checksums:
		return "CHECKSUMS"
	case Index:
		return "index"
	case Modlist:
		return "modlist"
	}
	return "none"
}

// ErrNotServed is wrapped by every error of Classify: the request names
// nothing the proxy can verify, so it is refused.
var ErrNotServed = errors.New("not a CPAN file this proxy can verify")

func notServed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrNotServed}, args...)...)
}

// Classify decides what a request's path names. escaped is the path as
// sent (URL.EscapedPath), decoded the same path with escapes decoded
// (URL.Path). It returns the CPAN path (relative to the CPAN root) and its
// class, or an error that says why the proxy will not serve it. The same
// path string is then both what gets verified and what gets fetched.
func Classify(escaped, decoded string) (string, Class, error) {
	low := strings.ToLower(escaped)
	for _, enc := range []string{"%2f", "%5c", "%00", "%2e"} {
		if strings.Contains(low, enc) {
			return "", 0, notServed("the path contains an encoded %q", enc)
		}
	}
	p, ok := strings.CutPrefix(decoded, "/")
	switch {
	case !ok:
		return "", 0, notServed("the path does not start with /")
	case p == "":
		return "", 0, notServed("the mirror's root is not a file")
	case !utf8.ValidString(p):
		return "", 0, notServed("the path is not valid UTF-8")
	case strings.HasSuffix(p, "/"):
		return "", 0, notServed("%q ends in a slash: directories are not served", p)
	case strings.Contains(p, "\\"):
		return "", 0, notServed("%q contains a backslash", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", 0, notServed("%q has an empty, . or .. segment", p)
		}
	}
	if cpan.IsIndexPath(p) {
		return p, Index, nil
	}
	if p == ModlistPath {
		return p, Modlist, nil
	}
	if !strings.HasPrefix(p, cpan.AuthorsPrefix) {
		return "", 0, notServed("%q is neither under authors/id/A/AB/ID/ nor one of the index files (%s)", p, strings.Join(cpan.IndexPaths, ", "))
	}
	if _, err := cpan.ValidatePath(p); err != nil {
		return "", 0, notServed("%v", err)
	}
	if path.Base(p) == "CHECKSUMS" {
		return p, Checksums, nil
	}
	return p, Upload, nil
}
