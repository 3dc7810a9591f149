package witness

import (
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/internal/confline"
)

// Config is the set of logs a witness cosigns for.
type Config struct {
	// Logs maps a log's origin to the keys whose signature makes a
	// checkpoint of it acceptable.
	Logs map[string][]note.Verifier
	// VKeys holds the same keys as written (vkeys), where known, so that
	// messages can name them in full; it may be nil.
	VKeys map[string][]string
}

// ErrNoLogs is ParseConfig's error for a config without a log line, which
// only a witness that takes its logs from a tlog-list can serve.
var ErrNoLogs = errors.New("witness config lists no log: add a line 'log <vkey> <url>'")

// ParseConfig reads C2SP tlog-policy "log <vkey> [<url>]" lines; the origin
// is the key's name, one origin may have several keys, and "#" starts a
// comment. Errors name the line.
func ParseConfig(b []byte) (*Config, error) {
	c := &Config{Logs: map[string][]note.Verifier{}, VKeys: map[string][]string{}}
	err := confline.Each("witness config", b, func(f []string) error {
		if f[0] != "log" || len(f) < 2 || len(f) > 3 {
			return errors.New("want 'log <vkey> [<url>]'")
		}
		v, err := note.NewVerifier(f[1])
		if err != nil {
			return fmt.Errorf("log key: %v", err)
		}
		for _, o := range c.Logs[v.Name()] {
			if o.KeyHash() == v.KeyHash() {
				return fmt.Errorf("key %s is listed twice", f[1])
			}
		}
		c.Logs[v.Name()] = append(c.Logs[v.Name()], v)
		c.VKeys[v.Name()] = append(c.VKeys[v.Name()], f[1])
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(c.Logs) == 0 {
		return nil, ErrNoLogs
	}
	return c, nil
}
