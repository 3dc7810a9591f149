package cli

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// flagRE finds the flags in a command's -h.
var flagRE = regexp.MustCompile(`(?m)^  -([a-z0-9][a-z0-9-]*)`)

// TestEveryBinarySpeaksTheSame: each binary answers --version with its
// name and build, -h with its commands and exit 0, and a bad flag with
// exit 2; every command answers a typo of one of its flags with one line
// that names it and how to see the flags, without the usage.
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
		bin         string
		help        []string // what -h must mention
		badUsage    []string
		subcommands []string
	}{
		{"cpantlog", []string{"verify", "proof", "proxy", "exec", "snapshot"}, []string{"verify", "--nope"}, []string{"verify", "proof", "proxy", "exec", "snapshot", "init"}},
		{"cpantlog-server", []string{"serve", "keygen", "reindex", "import", "migrate", "demo"}, []string{"--nope"}, []string{"serve", "keygen", "reindex", "import", "migrate", "publish-proofs", "sample-mirror", "demo"}},
		{"cpantlog-witness", []string{"keygen", "serve"}, []string{"serve", "--nope"}, []string{"serve", "keygen"}},
		{"cpantlog-monitor", []string{"audit-mirror", "--once", "Finding kinds"}, []string{"--nope"}, []string{"follow", "audit-mirror"}},
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
		// Every subcommand explains itself: its usage, its flags and an
		// example, exit 0, as "SUB -h", "SUB --help" and "help SUB".
		for _, sub := range c.subcommands {
			var first string
			for _, args := range [][]string{{sub, "-h"}, {sub, "--help"}, {"help", sub}} {
				code, out := run(args...)
				if code != 0 || !strings.Contains(out, "Usage: "+c.bin+" "+sub) || !strings.Contains(out, "\n  -") || !strings.Contains(out, "Example") {
					t.Errorf("%s %q: exit %d; want 0 with its usage, flags and an example:\n%s", c.bin, args, code, out)
				}
				if first == "" {
					first = out
				} else if out != first {
					t.Errorf("%s %q differs from %s %s -h", c.bin, args, c.bin, sub)
				}
			}
			// A typo of one of its flags: one line that names the flag,
			// how to see them all, exit 2, and no usage.
			flagName := ""
			for _, m := range flagRE.FindAllStringSubmatch(first, -1) {
				if len(m[1]) > len(flagName) {
					flagName = m[1]
				}
			}
			if len(flagName) < 4 {
				t.Errorf("%s %s -h lists no flag to mistype:\n%s", c.bin, sub, first)
				continue
			}
			typo := flagName[:len(flagName)/2] + flagName[len(flagName)/2+1:]
			args := []string{sub, "--" + typo}
			if c.bin == "cpantlog" && sub == "exec" {
				args = append(args, "--", "true")
			}
			code, out := run(args...)
			want := fmt.Sprintf("%s %s: flag provided but not defined: -%s (did you mean --%s", c.bin, sub, typo, flagName)
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if code != ExitUsage || len(lines) != 2 || !strings.HasPrefix(lines[0], want) || !strings.HasSuffix(lines[0], "?)") ||
				lines[1] != fmt.Sprintf("run '%s %s -h' for the flags", c.bin, sub) {
				t.Errorf("%s %q: exit %d; want 2 and two lines, %q...?) and %q:\n%s", c.bin, args, code, want, fmt.Sprintf("run '%s %s -h' for the flags", c.bin, sub), out)
			}
		}
	}
}
