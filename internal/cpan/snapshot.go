package cpan

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// SnapshotDist is one distribution a Carton snapshot pins.
type SnapshotDist struct {
	Name     string // e.g. Try-Tiny-0.31
	Pathname string // relative to authors/id/, e.g. E/ET/ETHER/Try-Tiny-0.31.tar.gz
}

// Path is the pinned file's CPAN path.
func (d SnapshotDist) Path() string { return AuthorsPrefix + d.Pathname }

// ErrBadSnapshot is wrapped by every ParseSnapshot error.
var ErrBadSnapshot = errors.New("malformed cpanfile.snapshot")

// MaxSnapshotSize bounds a cpanfile.snapshot.
const MaxSnapshotSize = 16 << 20

// ParseSnapshot reads a Carton cpanfile.snapshot (format version 1.0):
//
//	# carton snapshot format: version 1.0
//	DISTRIBUTIONS
//	  Try-Tiny-0.31
//	    pathname: E/ET/ETHER/Try-Tiny-0.31.tar.gz
//	    provides:
//	      Try::Tiny 0.31
//	    requirements:
//	      ExtUtils::MakeMaker 0
//
// Every distribution must have a pathname that is a valid CPAN path.
func ParseSnapshot(b []byte) ([]SnapshotDist, error) {
	bad := func(n int, format string, args ...any) error {
		return fmt.Errorf("%w: line %d: "+format, append([]any{ErrBadSnapshot, n}, args...)...)
	}
	if len(b) > MaxSnapshotSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrBadSnapshot, len(b), MaxSnapshotSize)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	var dists []SnapshotDist
	seen := map[string]bool{}
	n := 0
	section := ""
	finish := func() error {
		if len(dists) > 0 && dists[len(dists)-1].Pathname == "" {
			return bad(n, "distribution %s has no pathname", dists[len(dists)-1].Name)
		}
		return nil
	}
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if n == 1 {
			if !strings.HasPrefix(line, "# carton snapshot format: version ") {
				return nil, bad(n, "not a Carton snapshot (want '# carton snapshot format: version 1.0')")
			}
			if v := strings.TrimPrefix(line, "# carton snapshot format: version "); v != "1.0" {
				return nil, bad(n, "snapshot format version %q; this reads 1.0", v)
			}
			continue
		}
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		text := strings.TrimSpace(line)
		switch indent {
		case 0:
			if err := finish(); err != nil {
				return nil, err
			}
			section = text
		case 2:
			if section != "DISTRIBUTIONS" {
				continue
			}
			if err := finish(); err != nil {
				return nil, err
			}
			if strings.ContainsAny(text, " :") {
				return nil, bad(n, "distribution name %q", text)
			}
			dists = append(dists, SnapshotDist{Name: text})
		case 4:
			if section != "DISTRIBUTIONS" {
				continue
			}
			if len(dists) == 0 {
				return nil, bad(n, "key outside a distribution")
			}
			k, v, ok := strings.Cut(text, ":")
			if !ok {
				return nil, bad(n, "want 'key: value'")
			}
			if k == "pathname" {
				d := &dists[len(dists)-1]
				if d.Pathname != "" {
					return nil, bad(n, "second pathname for %s", d.Name)
				}
				d.Pathname = strings.TrimSpace(v)
				if _, err := ValidatePath(d.Path()); err != nil {
					return nil, bad(n, "%v", err)
				}
				if seen[d.Pathname] {
					return nil, bad(n, "%s pinned twice", d.Pathname)
				}
				seen[d.Pathname] = true
			}
		case 6:
			// provides / requirements entries
		default:
			return nil, bad(n, "unexpected indentation of %d spaces", indent)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: empty file", ErrBadSnapshot)
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return dists, nil
}
