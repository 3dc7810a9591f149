package cpan

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// MaxRecentSize bounds a RECENT file; RECENT-Z.json of all of CPAN is tens of MB.
const MaxRecentSize = 256 << 20

// Epoch is a RECENT event time as written, seconds since 1970 with an
// optional fraction. It keeps the exact text: RECENT files order events
// with more precision than a float64 keeps.
type Epoch struct{ text string }

var epochRE = regexp.MustCompile(`^[0-9]{1,12}(\.[0-9]{1,12})?$`)

// ParseEpoch checks and wraps an epoch's text.
func ParseEpoch(s string) (Epoch, error) {
	if !epochRE.MatchString(s) {
		return Epoch{}, fmt.Errorf("epoch %q is not seconds since 1970", s)
	}
	return Epoch{text: s}, nil
}

func (e Epoch) String() string { return e.text }

// IsZero reports whether e is unset.
func (e Epoch) IsZero() bool { return e.text == "" }

// Compare orders epochs numerically: -1, 0 or +1.
func (e Epoch) Compare(o Epoch) int {
	ei, ef, _ := strings.Cut(e.text, ".")
	oi, of, _ := strings.Cut(o.text, ".")
	ei, oi = strings.TrimLeft(ei, "0"), strings.TrimLeft(oi, "0")
	if len(ei) != len(oi) {
		return cmpInt(len(ei), len(oi))
	}
	if c := strings.Compare(ei, oi); c != 0 {
		return c
	}
	ef, of = strings.TrimRight(ef, "0"), strings.TrimRight(of, "0")
	return strings.Compare(ef, of)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Time is the epoch truncated to whole seconds, in UTC.
func (e Epoch) Time() time.Time {
	i, _, _ := strings.Cut(e.text, ".")
	n, _ := strconv.ParseInt(i, 10, 64)
	return time.Unix(n, 0).UTC()
}

// UnmarshalJSON accepts a JSON number or string.
func (e *Epoch) UnmarshalJSON(b []byte) error {
	s := string(b)
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	v, err := ParseEpoch(s)
	*e = v
	return err
}

// UnmarshalYAML accepts a YAML scalar.
func (e *Epoch) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("epoch is not a scalar")
	}
	v, err := ParseEpoch(n.Value)
	*e = v
	return err
}

// RecentEvent is one entry of a RECENT file.
type RecentEvent struct {
	Epoch Epoch  `json:"epoch" yaml:"epoch"`
	Path  string `json:"path" yaml:"path"` // relative to the CPAN root after ParseRecent
	Type  string `json:"type" yaml:"type"` // "new" or "delete"
}

// Recent is a parsed RECENT file.
type Recent struct {
	Interval string // "1h", "6h", "1d", "1W", "1M", "1Q", "1Y", "Z"
	Events   []RecentEvent
}

// ErrBadRecent is wrapped by every ParseRecent error.
var ErrBadRecent = errors.New("malformed RECENT file")

// RecentIntervals are the RECENT files of a mirror, shortest first.
var RecentIntervals = []string{"1h", "6h", "1d", "1W", "1M", "1Q", "1Y", "Z"}

// ParseRecent reads a RECENT-<interval>.json or .yaml file (as written by
// File::Rsync::Mirror::Recent) found in directory dir of a mirror (for
// CPAN, "authors"). Event paths are made relative to the CPAN root.
func ParseRecent(b []byte, yamlFormat bool, dir string) (*Recent, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadRecent}, args...)...)
	}
	if len(b) > MaxRecentSize {
		return nil, bad("%d bytes, more than %d", len(b), MaxRecentSize)
	}
	var doc struct {
		Meta struct {
			Interval string `json:"interval" yaml:"interval"`
		} `json:"meta" yaml:"meta"`
		Recent []RecentEvent `json:"recent" yaml:"recent"`
	}
	var err error
	if yamlFormat {
		err = yaml.Unmarshal(b, &doc)
	} else {
		err = json.Unmarshal(b, &doc)
	}
	if err != nil {
		return nil, bad("%v", err)
	}
	if doc.Recent == nil {
		return nil, bad("no 'recent' list")
	}
	r := &Recent{Interval: doc.Meta.Interval}
	for i, ev := range doc.Recent {
		if ev.Epoch.IsZero() {
			return nil, bad("event %d has no epoch", i)
		}
		if ev.Type != "new" && ev.Type != "delete" {
			return nil, bad("event %d has type %q, want new or delete", i, ev.Type)
		}
		if ev.Path == "" || strings.HasPrefix(ev.Path, "/") || strings.ContainsAny(ev.Path, "\x00\n\r") {
			return nil, bad("event %d has path %q", i, ev.Path)
		}
		p := path.Join(dir, ev.Path)
		if p != path.Clean(dir+"/"+ev.Path) || strings.HasPrefix(p, "..") || (dir != "" && !strings.HasPrefix(p, dir+"/")) {
			return nil, bad("event %d path %q leaves %s/", i, ev.Path, dir)
		}
		ev.Path = p
		r.Events = append(r.Events, ev)
	}
	return r, nil
}
