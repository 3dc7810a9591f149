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

// walkOutputs are the files and directories the README's walk creates in
// the repository's root: a copy of the repository that holds them (from
// someone following the README there) must not hand them to the walk.
var walkOutputs = map[string]bool{
	".git": true, "cpantlog-data": true, "w1": true, "w1.config": true, "policy": true,
	"cpan-mirror": true, "local": true, "monitor-state": true, "watch.txt": true,
	"Try-Tiny-0.31.tar.gz.tlog-proof": true,
}

// TestREADMEWalk runs the README's walk-through as a newcomer would, with
// a fresh HOME and GOPATH, from a scratch directory that links the
// repository's sources: install and the demo; a log with an entry added
// and read back and the policy written by 'cpantlog init'; the Perl
// user's path (cpanm through 'cpantlog exec' and cpanm-tlog, a tampered
// tarball refused, verification online and offline); the auditor's (a
// monitor round with a watch rule, a mirror audit that finds the tampered
// tarball); and the operator's (a witness, whose cosignature
// verification then needs).
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
		if walkOutputs[e.Name()] {
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
	t.Logf("the walk's %d blocks ran", len(blocks))
	if testing.Verbose() {
		t.Logf("--- output ---\n%s", out)
	}
	for _, want := range []string{
		"== 7. A hostile mirror serves a tampered copy ==", // the demo
		"That is cpan-tlog.",
		"c2sp.org/tlog-proof@v1",                   // add ?wait=1
		`"index":0`,                                // lookup
		"the log localhost/cpan-tlog is at size 1", // init, as the README says
		"every cpantlog tool, Go and Perl, now verifies against localhost/cpan-tlog", // init
		"  ok        authors/id/R/RJ/RJBS/Test-Fatal-0.017.tar.gz",                   // the cpanm walk
		"cpanm-tlog: 2 verified against localhost/cpan-tlog, 0 refused",              // cpanm-tlog
		"  REFUSED   authors/id/N/NE/NEILB/Text-Diff-1.45.tar.gz",                    // the hostile mirror
		"refused (exit 1)",
		"verified authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz",
		"wrote Try-Tiny-0.31.tar.gz.tlog-proof",
		"finding watched: upload authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", // the monitor
		"audited 10 entries", // as the README says
		"findings (exit 1)",
		"SECURITY mirror-mismatch: the mirror cpan-mirror serves authors/id/N/NE/NEILB/Text-Diff-1.45.tar.gz", // audit-mirror
		"findings (exit 3)",
		"cosigned by [w1]", // init with the witness
		"cosigned by: w1",  // verify with the witness
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the walk's output lacks %q:\n%s", want, out)
		}
	}
	// What the walk wrote that must never be committed is ignored.
	for _, name := range []string{"cpantlog-data/log.key", "cpantlog-data/ingest.token", "w1/witness.key", "cpan-mirror/modules/02packages.details.txt.gz", "local/lib/perl5/Test/Fatal.pm", "local/lib/perl5/Sub/Install.pm", "monitor-state/monitor.db"} {
		if _, err := os.Stat(filepath.Join(work, name)); err != nil {
			t.Errorf("the walk did not create %s: %v", name, err)
			continue
		}
		if err := exec.Command("git", "-C", repo, "check-ignore", "-q", name).Run(); err != nil {
			t.Errorf("%s is not ignored by .gitignore: one 'git add -A' away from a published key", name)
		}
	}
}
