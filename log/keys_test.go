package log

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// badOrigins break C2SP signed-note's rule for key names (non-empty, no
// Unicode spaces, no '+'), or put a control character in a checkpoint.
var badOrigins = map[string]string{
	"empty":         "",
	"plus":          "a+b/log",
	"space":         "a b/log",
	"tab":           "a\tb/log",
	"no-break":      "a\u00a0b/log",
	"newline":       "a\nb/log",
	"control":       "a\x01b/log",
	"invalid UTF-8": "a\xffb/log",
}

// TestKeygenRefusesBadOrigin: Keygen, and a first start with --origin,
// refuse an origin that is not a valid key name, and write nothing, not
// even the data directory (note.GenerateKey makes a key for any name,
// which serve then could not load).
func TestKeygenRefusesBadOrigin(t *testing.T) {
	for name, origin := range badOrigins {
		dir := filepath.Join(t.TempDir(), "data")
		if _, err := Keygen(dir, origin); err == nil || !strings.Contains(err.Error(), "signed-note") {
			t.Errorf("%s: Keygen(%q): %v, want a refusal citing signed-note", name, origin, err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s: Keygen wrote %s (%v)", name, dir, err)
		}
		if origin == "" {
			continue // Open's default origin
		}
		if _, err := Open(context.Background(), Config{DataDir: dir, Origin: origin}); err == nil || !strings.Contains(err.Error(), "signed-note") {
			t.Errorf("%s: Open with Origin %q: %v, want a refusal citing signed-note", name, origin, err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s: Open wrote %s (%v)", name, dir, err)
		}
	}
	dir := t.TempDir()
	if vkey, err := Keygen(dir, "cpan-tlog.example.org/log"); err != nil || !strings.HasPrefix(vkey, "cpan-tlog.example.org/log+") {
		t.Errorf("a good origin: %q %v", vkey, err)
	}
}
