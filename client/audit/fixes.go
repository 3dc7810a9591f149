package audit

import (
	"errors"
	"math/big"
	"regexp"
	"slices"
	"strings"
)

// Fixes returns the advisories of dist that a release of this version
// fixes: the version is outside the advisory's affected versions while
// some version below it is inside them. "Affected" is what Affecting
// means by it: in the affected range (any of them) and not in the fixed
// range, when the advisory lists fixed_versions; an advisory listing only
// fixed_versions affects every version outside them.
//
// It fails closed: an advisory whose ranges cannot be evaluated (a range
// or the version that does not parse, or neither an affected nor a fixed
// range) is never returned as fixed, although Affecting reports the same
// advisory as one that may apply. Nor is an advisory whose ID the data
// lists again with a range that holds the version (or cannot be
// evaluated). A release is said to fix an advisory only when that is
// certain; each ID is returned once.
//
// Every version above the last affected one is outside the range, so a
// later release fixes the advisory as well; a caller that reports a fix
// once remembers that it did.
func (db *DB) Fixes(dist, version string) []Advisory {
	if db == nil {
		return nil
	}
	v, err := parseVersion(version)
	if err != nil {
		return nil
	}
	advs := db.Dists[dist].Advisories
	// CPANSA lists some advisories several times under one ID, each with
	// its own range (CPANSA-Dpkg-2014-0471: <1.17.8, <1.17.9, <1.17.10).
	// An ID this version is (or may be) affected by under any of them is
	// not fixed.
	open := map[string]bool{}
	for _, a := range advs {
		if in, err := affected(a, version); err != nil || in || len(a.AffectedVersions) == 0 && len(a.FixedVersions) == 0 {
			open[a.ID] = true
		}
	}
	var out []Advisory
	for _, a := range advs {
		if !open[a.ID] && fixes(a, v, version) {
			out = append(out, a)
			open[a.ID] = true // once per ID
		}
	}
	return out
}

// fixes decides one advisory. Whether a version is affected changes only
// at the versions the ranges name, so testing one version in each stretch
// between them, and each of them, below v answers whether any version
// below v is affected.
func fixes(a Advisory, v version, ver string) bool {
	if len(a.AffectedVersions) == 0 && len(a.FixedVersions) == 0 {
		return false
	}
	bounds, err := boundaries(append(slices.Clone(a.AffectedVersions), a.FixedVersions...))
	if err != nil {
		return false
	}
	if in, err := affected(a, ver); err != nil || in {
		return false
	}
	points := append(bounds, v, version{big.NewInt(0)})
	slices.SortFunc(points, version.compare)
	points = slices.CompactFunc(points, func(x, y version) bool { return x.compare(y) == 0 })
	for i, p := range points {
		if p.compare(v) >= 0 {
			break
		}
		// p itself, and a version strictly between p and the next point
		// (which is at most v).
		for _, c := range []version{p, between(p, points[i+1])} {
			in, err := affected(a, c.String())
			if err != nil {
				return false
			}
			if in {
				return true
			}
		}
	}
	return false
}

// affected is Affecting's verdict for one advisory and one version.
func affected(a Advisory, ver string) (bool, error) {
	in := true
	if len(a.AffectedVersions) > 0 {
		var err error
		if in, err = a.AffectedVersions.holds(ver); err != nil {
			return false, err
		}
	}
	if in && len(a.FixedVersions) > 0 {
		fixed, err := a.FixedVersions.holds(ver)
		if err != nil {
			return false, err
		}
		in = !fixed
	}
	return in, nil
}

var condSep = regexp.MustCompile(`\s*,\s*`)

// boundaries are the versions the ranges compare with; an error when one
// of them does not parse (as InRange would say).
func boundaries(ranges []string) ([]version, error) {
	var out []version
	for _, rng := range ranges {
		if strings.TrimSpace(rng) == "" {
			return nil, errors.New("empty range")
		}
		for _, cond := range condSep.Split(strings.TrimSpace(rng), -1) {
			m := rangeRE.FindStringSubmatch(cond)
			if m == nil {
				return nil, errors.New("range condition " + cond)
			}
			rv, err := parseVersion(m[2])
			if err != nil {
				return nil, err
			}
			out = append(out, rv)
		}
	}
	return out, nil
}

// between returns a version strictly between a and b (a < b): a with one
// more part, 1. It is above a; and below b, as a and b differ in a part
// a still has (padded with zeros).
func between(a, b version) version {
	c := make(version, 0, max(len(a), len(b))+1)
	c = append(c, a...)
	for len(c) < len(b) {
		c = append(c, big.NewInt(0))
	}
	return append(c, big.NewInt(1))
}

// String writes v as a dotted-decimal version.pm reads back as v.
func (v version) String() string {
	parts := make([]string, len(v))
	for i, p := range v {
		parts[i] = p.String()
	}
	return "v" + strings.Join(parts, ".")
}
