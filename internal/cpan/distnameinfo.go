package cpan

import (
	"regexp"
	"strconv"
	"strings"
)

// DistInfo is what CPAN::DistnameInfo 0.12 extracts from a path. An empty
// string stands for Perl's undef.
type DistInfo struct {
	Pathname  string // the path, with runs of slashes folded
	Filename  string // the path below the author directory, or the whole path
	CPANID    string // the author's PAUSE id, when the path is in an author directory
	DistVName string // the file name without directories and archive extension
	Extension string // tar.gz, tar.bz2, tar.z, tgz, zip (as written)
	Dist      string // the distribution name
	Version   string // the version, "" when none was found
	Maturity  string // "released" or "developer"
}

var (
	slashRunRE    = regexp.MustCompile(`//+`)
	vDistRE       = regexp.MustCompile(`^(-[Vv].*)-(\d.*)`)
	underDistRE   = regexp.MustCompile(`(.+_.*)-(\d.*)`)
	pmSuffixRE    = regexp.MustCompile(`\.pm$`)
	trailVerRE    = regexp.MustCompile(`-(\d+\w)$`)
	allDigitsRE   = regexp.MustCompile(`^\d+$`)
	trailWordRE   = regexp.MustCompile(`-(\w+)$`)
	digitDotRE    = regexp.MustCompile(`\d\.\d`)
	leadSepDotRE  = regexp.MustCompile(`^[-_.]+`)
	leadSepRE     = regexp.MustCompile(`^[-_]+`)
	perlVersionRE = regexp.MustCompile(`^perl-?\d+\.(\d+)(?:\D(\d+))?(-(?:TRIAL|RC)\d+)?$`)
	devVersionRE  = regexp.MustCompile(`\d\D\d+_\d`)
)

// ParseDistInfo is a port of CPAN::DistnameInfo->new($path) from
// CPAN-DistnameInfo 0.12, byte for byte in its results: the heuristics that
// PAUSE, MetaCPAN and CPAN clients use to name a distribution and its
// version. Perl's regular expressions with look-around and back-references
// are hand-written here; the rest uses regexp, whose leftmost-first
// semantics match Perl's for these patterns.
func ParseDistInfo(path string) DistInfo {
	if strings.Contains(path, "//") {
		path = slashRunRE.ReplaceAllString(path, "/")
	}
	d := DistInfo{Pathname: path, Filename: path}
	if rest, id, ok := stripAuthorDir(path); ok {
		d.Filename, d.CPANID = rest, id
	}
	d.DistVName, d.Extension = splitArchive(path[strings.LastIndexByte(path, '/')+1:])
	var dev bool
	d.Dist, d.Version, dev = distnameInfo(d.DistVName)
	d.Maturity = "released"
	if dev {
		d.Maturity = "developer"
	}
	return d
}

// archiveExts are the extensions of archiveRE,
//
//	(?i)([^/]+)\.(tar\.(?:g?z|bz2)|zip|tgz)$
//
// which splitArchive implements without a regexp: it runs for every entry
// the lookup index takes. No two can end the same name, so the suffix
// that matches is the one the greedy regexp finds.
var archiveExts = []string{".tar.gz", ".tar.z", ".tar.bz2", ".zip", ".tgz"}

// splitArchive splits a file name into the name and extension of an archive.
func splitArchive(base string) (name, ext string) {
	for _, e := range archiveExts {
		if len(base) > len(e) && strings.EqualFold(base[len(base)-len(e):], e) {
			return base[:len(base)-len(e)], base[len(base)-len(e)+1:]
		}
	}
	return "", ""
}

// stripAuthorDir implements
//
//	s,^(((.*?/)?authors/)?id/)?([A-Z])/(\4[A-Z])/(\5[-A-Z0-9]*)/,,
//
// trying the candidate starts in the order Perl's backtracking tries them.
func stripAuthorDir(p string) (rest, id string, ok bool) {
	try := func(at int) (string, string, bool) {
		s := p[at:]
		if len(s) < 6 || !isUpper(s[0]) || s[1] != '/' || s[2] != s[0] || !isUpper(s[3]) || s[4] != '/' {
			return "", "", false
		}
		if s[5] != s[2] || len(s) < 7 || s[6] != s[3] {
			return "", "", false
		}
		j := 7
		for j < len(s) && (isUpper(s[j]) || isDigit(s[j]) || s[j] == '-') {
			j++
		}
		if j >= len(s) || s[j] != '/' {
			return "", "", false
		}
		return s[j+1:], s[5:j], true
	}
	// (.*?/)authors/id/ with the lazy prefix growing one slash at a time.
	for i := 0; i < len(p); i++ {
		if p[i] == '\n' {
			break // . does not match a newline
		}
		if p[i] == '/' && strings.HasPrefix(p[i+1:], "authors/id/") {
			if r, id, ok := try(i + 1 + len("authors/id/")); ok {
				return r, id, true
			}
		}
	}
	if strings.HasPrefix(p, "authors/id/") {
		if r, id, ok := try(len("authors/id/")); ok {
			return r, id, true
		}
	}
	if strings.HasPrefix(p, "id/") {
		if r, id, ok := try(len("id/")); ok {
			return r, id, true
		}
	}
	return try(0)
}

// distnameInfo is CPAN::DistnameInfo::distname_info.
func distnameInfo(file string) (dist, version string, dev bool) {
	if file == "" || file == "0" { // my $file = shift or return;
		return "", "", false
	}
	end := distPrefixEnd(file)
	if end < 0 {
		return file, "", false
	}
	dist, version = file[:end], file[end:]

	if strings.HasSuffix(dist, "-undef") && version == "" {
		dist = strings.TrimSuffix(dist, "-undef")
	}
	version = strings.TrimSuffix(version, "-withoutworldwriteables")
	if strings.HasPrefix(version, "-V") || strings.HasPrefix(version, "-v") {
		if m := vDistRE.FindStringSubmatch(version); m != nil {
			dist += m[1]
			version = m[2]
		}
	}
	if strings.Contains(version, "_") { // underDistRE needs one
		if m := underDistRE.FindStringSubmatch(version); m != nil {
			dist += m[1]
			version = m[2]
		}
	}
	dist = pmSuffixRE.ReplaceAllString(dist, "")
	if version == "" {
		if m := trailVerRE.FindStringSubmatchIndex(dist); m != nil {
			version = dist[m[2]:m[3]]
			dist = dist[:m[0]]
		}
	}
	if allDigitsRE.MatchString(version) {
		if m := trailWordRE.FindStringSubmatchIndex(dist); m != nil {
			version = dist[m[2]:m[3]] + version
			dist = dist[:m[0]]
		}
	}
	if digitDotRE.MatchString(version) {
		version = leadSepDotRE.ReplaceAllString(version, "")
	} else {
		version = leadSepRE.ReplaceAllString(version, "")
	}

	if version == "" {
		return dist, "", false
	}
	if m := perlMatch(file); m != nil {
		minor, _ := strconv.ParseUint(m[1], 10, 64)
		patch, _ := strconv.ParseUint(m[2], 10, 64)
		// ($1 > 6 and $1 & 1) or ($2 and $2 >= 50) or $3
		dev = (minor > 6 && minor&1 == 1) || (perlTrue(m[2]) && patch >= 50) || m[3] != ""
		// Perl compares huge numbers as floats; ParseUint saturating to 0
		// on overflow only matters for versions nobody has published.
	} else if devVersionRE.MatchString(version) || strings.Contains(version, "-TRIAL") {
		dev = true
	}
	return dist, version, dev
}

// perlMatch is perlVersionRE's match of file, skipping the regexp for the
// names that cannot match.
func perlMatch(file string) []string {
	if !strings.HasPrefix(file, "perl") {
		return nil
	}
	return perlVersionRE.FindStringSubmatch(file)
}

// perlTrue is Perl's truthiness of a string.
func perlTrue(s string) bool { return s != "" && s != "0" }

// distPrefixEnd returns the end of group 1 of distname_info's main match,
//
//	^((?:[-+.]*(?:[A-Za-z0-9]+|(?<=\D)_|_(?=\D))*
//	   (?:[A-Za-z](?=[^A-Za-z]|$)|\d(?=-))(?<![._-][vV]))+)(.*)$
//
// or -1 when it does not match. Because (.*)$ matches whatever follows, the
// first match Perl finds is the chain of first-found matches of the repeated
// group, each starting where the last one ended. Within one repetition the
// search is a memoised backtracking search in Perl's order of preference,
// so it stays linear where the pattern's nested quantifiers would explode.
func distPrefixEnd(s string) int {
	end := -1
	for p := 0; p < len(s); {
		e := matchDistChunk(s, p)
		if e < 0 {
			break
		}
		end, p = e, e
	}
	return end
}

// matchDistChunk matches one repetition of the group at p and returns where
// Perl's first-found match ends, or -1.
func matchDistChunk(s string, p int) int {
	failed := make(map[int]bool) // star positions known not to lead to a match

	// tail: (?:[A-Za-z](?=[^A-Za-z]|$)|\d(?=-))(?<![._-][vV])
	tail := func(q int) int {
		if q >= len(s) {
			return -1
		}
		c := s[q]
		if isLetter(c) && (q+1 == len(s) || !isLetter(s[q+1]) || (q+1 == len(s)-1 && s[q+1] == '\n')) {
			e := q + 1
			if !(e >= 2 && (s[e-2] == '.' || s[e-2] == '_' || s[e-2] == '-') && (s[e-1] == 'v' || s[e-1] == 'V')) {
				return e
			}
		}
		if isDigit(c) && q+1 < len(s) && s[q+1] == '-' {
			return q + 1 // the look-behind cannot see [vV] before a digit
		}
		return -1
	}

	// star: (?:[A-Za-z0-9]+|(?<=\D)_|_(?=\D))* followed by tail, greedy.
	var star func(q int) int
	star = func(q int) int {
		if failed[q] {
			return -1
		}
		// [A-Za-z0-9]+, longest first.
		run := q
		for run < len(s) && isAlnum(s[run]) {
			run++
		}
		for j := run; j > q; j-- {
			if e := star(j); e >= 0 {
				return e
			}
		}
		if q < len(s) && s[q] == '_' {
			if q > 0 && !isDigit(s[q-1]) { // (?<=\D)_
				if e := star(q + 1); e >= 0 {
					return e
				}
			}
			if q+1 < len(s) && !isDigit(s[q+1]) { // _(?=\D)
				if e := star(q + 1); e >= 0 {
					return e
				}
			}
		}
		if e := tail(q); e >= 0 {
			return e
		}
		failed[q] = true
		return -1
	}

	// [-+.]*, longest first.
	run := p
	for run < len(s) && (s[run] == '-' || s[run] == '+' || s[run] == '.') {
		run++
	}
	for k := run; k >= p; k-- {
		if e := star(k); e >= 0 {
			return e
		}
	}
	return -1
}

func isUpper(c byte) bool  { return c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return isUpper(c) || (c >= 'a' && c <= 'z') }
func isAlnum(c byte) bool  { return isLetter(c) || isDigit(c) }
