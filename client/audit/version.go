package audit

import (
	"fmt"
	"math/big"
	"regexp"
	"strings"
)

// A Perl version as version.pm's version->parse reads one: a decimal
// ("1.36", "0.99_01") is its integer part followed by its fraction in
// groups of three digits (1.36 is 1.360); a dotted-decimal ("v1.2.3",
// "1.2.3") is its parts. Both compare part by part, a missing part being
// 0 (version::vcmp). The underscore of a development release is ignored
// for ordering, as version.pm does since 0.9913.
type version []*big.Int

var (
	decimalRE = regexp.MustCompile(`^[0-9]+(?:\.(?:[0-9]+(?:_[0-9]+)?)?)?$|^\.[0-9]+$`)
	// An underscore only after the last dot, once (version.pm dies on
	// v1_2, 1.2.3_4_5 and v1.2_3.4).
	dottedRE = regexp.MustCompile(`^v?[0-9]+(?:(?:\.[0-9]+)+(?:_[0-9]+)?)?$`)
)

// parseVersion parses s; an error where version->parse would die.
func parseVersion(s string) (version, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || len(s) > 100:
		return nil, fmt.Errorf("version %q", s)
	case strings.HasPrefix(s, "v") || strings.Count(s, ".") >= 2:
		if !dottedRE.MatchString(s) {
			return nil, fmt.Errorf("dotted-decimal version %q", s)
		}
		// version.pm ignores the underscore: 1.2.3_4 is v1.2.34, not
		// v1.2.3.4 (which would compare below 1.2.10).
		var v version
		for _, p := range strings.Split(strings.ReplaceAll(strings.TrimPrefix(s, "v"), "_", ""), ".") {
			n, _ := new(big.Int).SetString(p, 10)
			v = append(v, n)
		}
		return v, nil
	case decimalRE.MatchString(s):
		ip, frac, _ := strings.Cut(s, ".")
		frac = strings.ReplaceAll(frac, "_", "")
		if ip == "" {
			ip = "0"
		}
		n, _ := new(big.Int).SetString(ip, 10)
		v := version{n}
		for len(frac) > 0 {
			g := frac[:min(3, len(frac))]
			frac = frac[len(g):]
			g += strings.Repeat("0", 3-len(g))
			n, _ := new(big.Int).SetString(g, 10)
			v = append(v, n)
		}
		return v, nil
	}
	return nil, fmt.Errorf("version %q", s)
}

// compare is version::vcmp.
func (v version) compare(o version) int {
	for i := range max(len(v), len(o)) {
		a, b := big.NewInt(0), big.NewInt(0)
		if i < len(v) {
			a = v[i]
		}
		if i < len(o) {
			b = o[i]
		}
		if c := a.Cmp(b); c != 0 {
			return c
		}
	}
	return 0
}

var rangeRE = regexp.MustCompile(`^(<=|<|>=|>|==|!=)?\s*(\S+)$`)

// InRange reports whether version is in range, a CPANSA range such as
// "<2.28" or ">=1.0,<1.5" (every comma-separated condition holds; a bare
// version means >=), as CPAN::Audit::Version's in_range does. An error says
// the version or the range does not parse (in_range then answers no).
func InRange(ver, rng string) (bool, error) {
	v, err := parseVersion(ver)
	if err != nil {
		return false, err
	}
	if strings.TrimSpace(rng) == "" {
		return false, fmt.Errorf("empty range")
	}
	for _, cond := range regexp.MustCompile(`\s*,\s*`).Split(strings.TrimSpace(rng), -1) {
		m := rangeRE.FindStringSubmatch(cond)
		if m == nil {
			return false, fmt.Errorf("range condition %q", cond)
		}
		rv, err := parseVersion(m[2])
		if err != nil {
			return false, err
		}
		c := v.compare(rv)
		ok := map[string]bool{"<": c < 0, "<=": c <= 0, "==": c == 0, ">": c > 0, ">=": c >= 0, "!=": c != 0, "": c >= 0}[m[1]]
		if !ok {
			return false, nil
		}
	}
	return true, nil
}
