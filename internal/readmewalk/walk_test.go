package readmewalk

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// walkBlocks returns the indented command blocks that follow a
// "<!-- walk -->" line, in order.
func walkBlocks(readme string) []string { return Blocks(readme, "walk") }

func TestWalkBlocks(t *testing.T) {
	got := walkBlocks("x\n<!-- walk -->\n\n    a\n    b \\\n      c\n\ntext\n    not this\n<!-- walk -->\n    d\n")
	if len(got) != 2 || got[0] != "a\nb \\\n  c" || got[1] != "d" {
		t.Errorf("%q", got)
	}
}

// TestREADMEWalk runs the README's walk-through: install, the demo, a log
// with an entry added and read back, verification online and offline, and
// a witness set up, with a fresh HOME and GOPATH, from a scratch directory
// that links the repository's sources.
func TestREADMEWalk(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs everything")
	}
	for _, tool := range []string{"bash", "curl", "go", "cpanm"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s missing in CI: .ci/run installs it", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	for _, addr := range []string{"127.0.0.1:8080", "127.0.0.1:7380"} {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is taken: the README's commands need it", addr)
			}
			t.Skipf("%s is taken: the README's commands need it", addr)
		}
	}
	repo, _ := filepath.Abs("../..")
	readme, err := os.ReadFile(filepath.Join(repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := walkBlocks(string(readme))
	if len(blocks) < 5 {
		t.Fatalf("the README marks %d blocks to walk", len(blocks))
	}
	work := t.TempDir()
	entries, _ := os.ReadDir(repo)
	for _, e := range entries {
		if e.Name() == ".git" || e.Name() == "cpantlog-data" || e.Name() == "w1" {
			continue
		}
		os.Symlink(filepath.Join(repo, e.Name()), filepath.Join(work, e.Name()))
	}
	goenv := func(k string) string {
		out, _ := exec.Command("go", "env", k).Output()
		return strings.TrimSpace(string(out))
	}
	home := t.TempDir()
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "GOPATH=" + filepath.Join(work, "gopath"),
		"GOMODCACHE=" + goenv("GOMODCACHE"), "GOCACHE=" + goenv("GOCACHE"), "GOFLAGS=" + os.Getenv("GOFLAGS"), "GOPROXY=" + goenv("GOPROXY"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "XDG_STATE_HOME=" + filepath.Join(home, ".local", "state"), "XDG_CACHE_HOME=" + filepath.Join(home, ".cache")}
	script := "set -euo pipefail\n" + strings.Join(blocks, "\n") + "\n"
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = work
	cmd.Env = env
	out, err := RunGroup(cmd, t.TempDir())
	if err != nil {
		t.Fatalf("the README walk failed: %v\n--- script ---\n%s\n--- output ---\n%s", err, script, out)
	}
	for _, want := range []string{
		"== 7. A hostile mirror serves a tampered copy ==", // the demo
		"c2sp.org/tlog-proof@v1",                           // add ?wait=1
		`"index":0`,                                        // lookup
		"verified authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz",
		"cosigned by: w1",
		"  ok        authors/id/R/RJ/RJBS/Test-Fatal-0.017.tar.gz", // the cpanm walk
		"  REFUSED   authors/id/N/NE/NEILB/Text-Diff-1.45.tar.gz",  // the hostile mirror
		"refused (exit 1)",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the walk's output lacks %q:\n%s", want, out)
		}
	}
	// What the walk wrote that must never be committed is ignored.
	for _, name := range []string{"cpantlog-data/log.key", "cpantlog-data/ingest.token", "w1/witness.key", "cpan-mirror/modules/02packages.details.txt.gz", "local/lib/perl5/Test/Fatal.pm"} {
		if _, err := os.Stat(filepath.Join(work, name)); err != nil {
			t.Errorf("the walk did not create %s: %v", name, err)
			continue
		}
		if err := exec.Command("git", "-C", repo, "check-ignore", "-q", name).Run(); err != nil {
			t.Errorf("%s is not ignored by .gitignore: one 'git add -A' away from a published key", name)
		}
	}
}
