package witness

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Config is the set of logs a witness cosigns for.
type Config struct {
	// Logs maps a log's origin to the keys whose signature makes a
	// checkpoint of it acceptable.
	Logs map[string][]note.Verifier
}

// ParseConfig reads C2SP tlog-policy "log <vkey> [<url>]" lines; the origin
// is the key's name, one origin may have several keys, and "#" starts a
// comment. Errors name the line.
func ParseConfig(b []byte) (*Config, error) {
	c := &Config{Logs: map[string][]note.Verifier{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if f[0] != "log" || len(f) < 2 || len(f) > 3 {
			return nil, fmt.Errorf("witness config line %d (%q): want 'log <vkey> [<url>]'", n, strings.TrimSpace(sc.Text()))
		}
		v, err := note.NewVerifier(f[1])
		if err != nil {
			return nil, fmt.Errorf("witness config line %d: log key: %v", n, err)
		}
		for _, o := range c.Logs[v.Name()] {
			if o.KeyHash() == v.KeyHash() {
				return nil, fmt.Errorf("witness config line %d: key %s is listed twice", n, f[1])
			}
		}
		c.Logs[v.Name()] = append(c.Logs[v.Name()], v)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(c.Logs) == 0 {
		return nil, fmt.Errorf("witness config lists no log: add a line 'log <vkey> <url>'")
	}
	return c, nil
}
