package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/CPAN-Security/cpan-tlog/internal/cli"
)

// Attack (operator mistake, or a value pasted from elsewhere): --successor
// is echoed in every refused add's body; it was taken as any string, so a
// value with a newline, white space or no scheme (a host name alone, a
// javascript: URL) was what clients were sent to. It must be an http(s)
// URL, written as url.Parse reads it.
func TestSuccessorMustBeAURL(t *testing.T) {
	for _, bad := range []string{
		"https://new.example\nX-Injected: 1",
		"https://new.example/ and then",
		"new.example",
		"javascript:alert(1)",
		"https://",
		"https://new.example/\x1b[2J",
	} {
		err := serve([]string{"--frozen", "--successor", bad, "--listen", "127.0.0.1:0", "--data", t.TempDir()})
		var ue *cli.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--successor") {
			t.Errorf("--successor %q: %v, want a usage error naming --successor", bad, err)
		}
	}
}
