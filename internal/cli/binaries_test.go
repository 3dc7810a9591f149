package cli

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryBinarySpeaksTheSame: each binary answers --version with its
// name and build, -h with its commands and exit 0, and a bad flag with
// exit 2.
func TestEveryBinarySpeaksTheSame(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every binary")
	}
	dir := t.TempDir()
	out, err := exec.Command("go", "build", "-o", dir, "../../cmd/cpantlog", "../../cmd/cpantlog-server", "../../cmd/cpantlog-witness", "../../cmd/cpantlog-monitor").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, c := range []struct {
		bin      string
		help     []string // what -h must mention
		badUsage []string
	}{
		{"cpantlog", []string{"verify", "proof", "proxy", "exec", "snapshot"}, []string{"verify", "--nope"}},
		{"cpantlog-server", []string{"serve", "keygen", "reindex", "import", "migrate", "demo"}, []string{"--nope"}},
		{"cpantlog-witness", []string{"keygen", "serve"}, []string{"serve", "--nope"}},
		{"cpantlog-monitor", []string{"audit-mirror", "--once", "Finding kinds"}, []string{"--nope"}},
	} {
		bin := filepath.Join(dir, c.bin)
		run := func(args ...string) (int, string) {
			out, err := exec.Command(bin, args...).CombinedOutput()
			if ee, ok := err.(*exec.ExitError); ok {
				return ee.ExitCode(), string(out)
			} else if err != nil {
				t.Fatal(err)
			}
			return 0, string(out)
		}
		if code, out := run("--version"); code != 0 || !strings.HasPrefix(out, c.bin+" ") || !strings.Contains(out, "go1.") {
			t.Errorf("%s --version: exit %d %q", c.bin, code, out)
		}
		for _, h := range []string{"-h", "help"} {
			code, out := run(h)
			if code != 0 {
				t.Errorf("%s %s: exit %d", c.bin, h, code)
			}
			for _, want := range c.help {
				if !strings.Contains(out, want) {
					t.Errorf("%s %s does not mention %q:\n%s", c.bin, h, want, out)
				}
			}
		}
		if code, out := run(c.badUsage...); code != ExitUsage {
			t.Errorf("%s %q: exit %d, want %d (usage error)\n%s", c.bin, c.badUsage, code, ExitUsage, out)
		}
	}
}
