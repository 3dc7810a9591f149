package readmewalk

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The binaries whose flags docs/commands.md documents.
var documentedBinaries = []string{"cpantlog", "cpantlog-server", "cpantlog-witness", "cpantlog-monitor", "cpantlog-bench"}

var (
	// commandRE finds a command in a binary's -h "Usage:" lines:
	// "  cpantlog verify FILE", "  cpantlog-server [serve] [flags]".
	commandRE = regexp.MustCompile(`^  (cpantlog(?:-[a-z]+)?) \[?([a-z][a-z-]*)\]?`)
	// helpFlagRE finds a flag in flag.PrintDefaults output, with the
	// line that explains it.
	helpFlagRE = regexp.MustCompile(`(?m)^  -([a-zA-Z0-9][a-zA-Z0-9-]*)[^\n]*(?:\n    \t([^\n]*))?`)
	// sectionRE is a command's heading in docs/commands.md:
	// "### `cpantlog verify`", "## `cpantlog-bench`".
	sectionRE = regexp.MustCompile("(?m)^#{2,3} `(cpantlog(?:-[a-z]+)?(?: [a-z][a-z-]*)?)`\\s*$")
	// docFlagRE is a flag documented in a table row's first cell:
	// "| `--listen ADDR` | ...".
	docFlagRE = regexp.MustCompile("(?m)^\\| `--([a-zA-Z0-9][a-zA-Z0-9-]*)[ `]")
)

// commands lists a binary's commands from its -h, or "" alone for a
// binary that has none.
func commands(help string) []string {
	var cmds []string
	in := false
	for _, line := range strings.Split(help, "\n") {
		switch {
		case strings.HasPrefix(line, "Usage:"):
			in = true
			continue
		case in && strings.TrimSpace(line) == "":
			in = false
		}
		if m := commandRE.FindStringSubmatch(line); in && m != nil && !slices.Contains(cmds, m[2]) {
			cmds = append(cmds, m[2])
		}
	}
	if len(cmds) == 0 {
		return []string{""}
	}
	return cmds
}

// docSections splits docs/commands.md into its commands' sections.
func docSections(doc string) map[string]string {
	out := map[string]string{}
	locs := sectionRE.FindAllStringSubmatchIndex(doc, -1)
	for i, l := range locs {
		end := len(doc)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		out[doc[l[2]:l[3]]] = doc[l[1]:end]
	}
	return out
}

func TestDocSections(t *testing.T) {
	doc := "# x\n## `cpantlog-bench`\n| `--url URL` | u |\n## `cpantlog`\nintro\n### `cpantlog verify`\n| `--path P` | p |\n| `--proof FILE` | q |\ntext `--not-a-row`\n"
	s := docSections(doc)
	if len(s) != 3 || !strings.Contains(s["cpantlog-bench"], "--url") || strings.Contains(s["cpantlog"], "--path") {
		t.Fatalf("%q", s)
	}
	var got []string
	for _, m := range docFlagRE.FindAllStringSubmatch(s["cpantlog verify"], -1) {
		got = append(got, m[1])
	}
	if fmt.Sprint(got) != "[path proof]" {
		t.Errorf("flags %q", got)
	}
	help := "cpantlog-server runs.\n\nUsage:\n  cpantlog-server [serve] [flags]    run\n  cpantlog-server keygen [flags]\n  cpantlog-server --version\n\nRun 'cpantlog-server help'\n  cpantlog-server nothere\n"
	if c := commands(help); fmt.Sprint(c) != "[serve keygen]" {
		t.Errorf("commands %q", c)
	}
	if c := commands("Usage of cpantlog-bench:\n  -url string\n"); fmt.Sprint(c) != "[]" {
		t.Errorf("commands of a binary without any: %q", c)
	}
}

// TestEveryFlagIsDocumented compares every command's -h with
// docs/commands.md: each command has its section, each flag its row
// there (or in its binary's section, for the flags every command of the
// binary takes), and the sections document no flag the command lacks. When a
// flag is added, this test says which row to write.
func TestEveryFlagIsDocumented(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every binary")
	}
	repo, _ := filepath.Abs("../..")
	docBytes, err := os.ReadFile(filepath.Join(repo, "docs", "commands.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := docSections(string(docBytes))
	bin := t.TempDir()
	args := []string{"build", "-o", bin}
	for _, b := range documentedBinaries {
		args = append(args, "./cmd/"+b)
	}
	build := exec.Command("go", args...)
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	run := func(name string, args ...string) string {
		// -h exits 0 or 2 depending on the binary; its text is what counts.
		out, _ := exec.Command(filepath.Join(bin, name), args...).CombinedOutput()
		return string(out)
	}
	seen := map[string]bool{}
	for _, b := range documentedBinaries {
		for _, sub := range commands(run(b, "-h")) {
			name, args := b, []string{"-h"}
			if sub != "" {
				name, args = b+" "+sub, []string{sub, "-h"}
			}
			seen[name] = true
			help := run(b, args...)
			flags := helpFlagRE.FindAllStringSubmatch(help, -1)
			if len(flags) == 0 {
				t.Errorf("%s -h lists no flags:\n%s", name, help)
				continue
			}
			section, ok := sections[name]
			if !ok {
				t.Errorf("docs/commands.md has no section \"### `%s`\" (its -h:\n%s)", name, help)
				continue
			}
			// A command takes its own flags and its binary's common
			// ones, documented in the binary's section before its first
			// command.
			var documented []string
			for _, m := range docFlagRE.FindAllStringSubmatch(section, -1) {
				documented = append(documented, m[1])
			}
			if sub != "" {
				for _, m := range docFlagRE.FindAllStringSubmatch(sections[b], -1) {
					documented = append(documented, m[1])
				}
			}
			var defined []string
			for _, f := range flags {
				defined = append(defined, f[1])
				if !slices.Contains(documented, f[1]) {
					t.Errorf("docs/commands.md, section `%s`: no row for --%s; add \"| `--%s ...` | ... |\" (its -h says: %s)", name, f[1], f[1], strings.TrimSpace(f[2]))
				}
			}
			for _, d := range documented {
				if !slices.Contains(defined, d) {
					t.Errorf("docs/commands.md, section `%s` documents --%s, which %s does not define", name, d, name)
				}
			}
		}
	}
	for name := range sections {
		if strings.Contains(name, " ") && !seen[name] {
			t.Errorf("docs/commands.md documents `%s`, which its binary's -h does not list", name)
		}
	}
}

// mdLinkRE finds a Markdown link's target.
var mdLinkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// anchor is GitHub's anchor for a heading.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors lists the anchors of a Markdown file's headings.
func anchors(md string) []string {
	var out []string
	for _, line := range strings.Split(md, "\n") {
		if h, ok := strings.CutPrefix(line, "#"); ok {
			out = append(out, anchor(strings.TrimLeft(h, "#")))
		}
	}
	return out
}

func TestAnchor(t *testing.T) {
	for in, want := range map[string]string{
		" `cpantlog verify`":            "cpantlog-verify",
		" Exit codes":                   "exit-codes",
		" The entry (leaf) format, v1":  "the-entry-leaf-format-v1",
		" GET /tlog/proofs/<path>":      "get-tlogproofspath",
		" A Perl user: install through": "a-perl-user-install-through",
	} {
		if got := anchor(in); got != want {
			t.Errorf("anchor(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDocsLinks: every relative link of the README and docs/ leads to a
// file of the repository (and to a heading of it, when it names one), and
// none leads outside the repository.
func TestDocsLinks(t *testing.T) {
	repo, _ := filepath.Abs("../..")
	files, _ := filepath.Glob(filepath.Join(repo, "docs", "*.md"))
	files = append(files, filepath.Join(repo, "README.md"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(repo, f)
		if strings.Contains(string(b), "../shared") {
			t.Errorf("%s points at ../shared/, which is not part of the repository", rel)
		}
		for _, m := range mdLinkRE.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			path := f
			if file != "" {
				path = filepath.Join(filepath.Dir(f), file)
			}
			if r, err := filepath.Rel(repo, path); err != nil || strings.HasPrefix(r, "..") {
				t.Errorf("%s links to %s, outside the repository", rel, target)
				continue
			}
			fb, err := os.ReadFile(path)
			if err != nil {
				if fi, serr := os.Stat(path); serr == nil && fi.IsDir() && frag == "" {
					continue
				}
				t.Errorf("%s links to %s: %v", rel, target, err)
				continue
			}
			if frag != "" && strings.HasSuffix(path, ".md") && !slices.Contains(anchors(string(fb)), frag) {
				t.Errorf("%s links to %s: no heading with that anchor", rel, target)
			}
		}
	}
}
