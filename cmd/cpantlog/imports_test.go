package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestUserToolStaysSmall: the cpanm user's tool links none of the log,
// witness or monitor code, no storage driver and no database driver.
func TestUserToolStaysSmall(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/CPAN-Security/cpan-tlog/"
	forbidden := []string{mod + "log", mod + "witness", mod + "monitor", mod + "internal/demo", mod + "internal/testlog",
		"github.com/transparency-dev/tessera/storage", "github.com/go-sql-driver/", "go.etcd.io/bbolt", "github.com/aws/"}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps gave %d packages: %q", len(deps), deps)
	}
	for _, dep := range deps {
		if dep == mod+"log/entry" {
			continue // the entry codec is shared by design
		}
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("cmd/cpantlog depends on %s", dep)
			}
		}
	}
}
