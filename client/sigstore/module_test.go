package sigstore

import (
	"os/exec"
	"strings"
	"testing"
)

// moduleDir is where the go command keeps a dependency's source.
func moduleDir(t *testing.T, mod string) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", mod).Output()
	if err != nil {
		t.Skipf("go list -m %s: %v", mod, err)
	}
	return strings.TrimSpace(string(out))
}
