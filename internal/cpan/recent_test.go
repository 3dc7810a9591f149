package cpan

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

const recentJSON = `{
   "meta" : {
      "aggregator" : ["6h","1d","1W","1M","1Q","1Y","Z"],
      "filenameroot" : "RECENT",
      "interval" : "1h",
      "minmax" : { "max" : "1700003600.123456", "min" : "1700000000.5" },
      "protocol" : 1,
      "serializer_suffix" : ".json"
   },
   "recent" : [
      { "epoch" : "1700003600.123456", "path" : "id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", "type" : "new" },
      { "epoch" : 1700003000.5, "path" : "id/R/RJ/RJBS/Old-1.0.tar.gz", "type" : "delete" },
      { "epoch" : "1700000000.5", "path" : "id/E/ET/ETHER/CHECKSUMS", "type" : "new" }
   ]
}`

const recentYAML = `---
meta:
  interval: 6h
  protocol: 1
recent:
  -
    epoch: 1700003600.123456
    path: id/E/ET/ETHER/Try-Tiny-0.31.tar.gz
    type: new
  -
    epoch: '1700003000.5'
    path: id/R/RJ/RJBS/Old-1.0.tar.gz
    type: delete
`

func TestParseRecent(t *testing.T) {
	r, err := ParseRecent([]byte(recentJSON), false, "authors")
	if err != nil {
		t.Fatal(err)
	}
	if r.Interval != "1h" || len(r.Events) != 3 || r.Events[0].Path != "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz" || r.Events[1].Type != "delete" || r.Events[1].Epoch.String() != "1700003000.5" {
		t.Errorf("%+v", r)
	}
	y, err := ParseRecent([]byte(recentYAML), true, "authors")
	if err != nil {
		t.Fatal(err)
	}
	if y.Interval != "6h" || len(y.Events) != 2 || y.Events[0] != r.Events[0] || y.Events[1] != r.Events[1] {
		t.Errorf("YAML twin differs: %+v", y)
	}
	if got := r.Events[0].Epoch.Time().Unix(); got != 1700003600 {
		t.Errorf("Time() = %d", got)
	}
}

func TestEpochCompare(t *testing.T) {
	e := func(s string) Epoch {
		v, err := ParseEpoch(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"1", "2", -1}, {"10", "9", 1}, {"1.5", "1.50", 0}, {"1.123456789012", "1.123456789011", 1},
		{"1700000000.1", "1700000000.09", 1}, {"01", "1", 0}, {"2", "1.999", 1},
	} {
		if got := e(c.a).Compare(e(c.b)); got != c.want {
			t.Errorf("%s vs %s: %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestParseRecentRejects(t *testing.T) {
	r := func(old, new string) string { return strings.Replace(recentJSON, old, new, 1) }
	for name, c := range map[string]struct {
		in   string
		yaml bool
	}{
		"not JSON":       {"{", false},
		"no recent":      {`{"meta":{}}`, false},
		"bad type":       {r(`"type" : "delete"`, `"type" : "rename"`), false},
		"epoch word":     {r(`"epoch" : "1700003600.123456"`, `"epoch" : "yesterday"`), false},
		"epoch negative": {r(`1700003000.5`, `-1`), false},
		"epoch missing":  {r(`"epoch" : 1700003000.5, `, ``), false},
		"absolute path":  {r(`"id/R/RJ`, `"/etc/R/RJ`), false},
		"escaping path":  {r(`"id/R/RJ/RJBS/Old-1.0.tar.gz"`, `"../../etc/passwd"`), false},
		"dotdot inside":  {r(`"id/R/RJ/RJBS/Old-1.0.tar.gz"`, `"id/../../x"`), false},
		"yaml garbage":   {"recent: [", true},
		"yaml epoch map": {"recent:\n  - epoch: {a: 1}\n    path: x\n    type: new\n", true},
	} {
		if _, err := ParseRecent([]byte(c.in), c.yaml, "authors"); !errors.Is(err, ErrBadRecent) {
			t.Errorf("%s: %v, want ErrBadRecent", name, err)
		}
	}
}

func FuzzParseRecent(f *testing.F) {
	f.Add([]byte(recentJSON), false)
	f.Add([]byte(recentYAML), true)
	f.Fuzz(func(t *testing.T, b []byte, isYAML bool) {
		r, err := ParseRecent(b, isYAML, "authors")
		if err != nil {
			return
		}
		for _, ev := range r.Events {
			if !strings.HasPrefix(ev.Path, "authors/") || slices.Contains(strings.Split(ev.Path, "/"), "..") {
				t.Fatalf("event path %q escapes authors/", ev.Path)
			}
		}
	})
}
