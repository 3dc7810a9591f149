package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// runbookBase is where every alert's runbook_url points, followed by
// "#" and the alert's name in lower case (GitHub's anchor of its heading).
const runbookBase = "https://github.com/CPAN-Security/cpan-tlog/blob/main/deploy/RUNBOOKS.md"

type ruleFile struct {
	Groups []struct {
		Name  string           `yaml:"name"`
		Rules []map[string]any `yaml:"rules"`
	} `yaml:"groups"`
}

type ruleTests struct {
	Tests []struct {
		Name           string `yaml:"name"`
		AlertRuleTests []struct {
			AlertName string `yaml:"alertname"`
			EvalTime  string `yaml:"eval_time"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func readRules(t *testing.T) (*ruleFile, []byte) {
	t.Helper()
	raw, err := os.ReadFile("prometheus/cpantlog.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(raw, &rf); err != nil {
		t.Fatal(err)
	}
	return &rf, raw
}

// TestPrometheusRules: every alert of the shipped rules has a runbook
// (a runbook_url to its section of deploy/RUNBOOKS.md, which says what it
// means, how to confirm it and what to do), uses only metrics a server
// exports, and has a unit test in which it fires and one in which it does
// not; promtool (Debian's prometheus package) checks the rules and runs
// the unit tests.
func TestPrometheusRules(t *testing.T) {
	rf, raw := readRules(t)
	runbooks, err := os.ReadFile("RUNBOOKS.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{}
	for _, s := range strings.Split(string(runbooks), "\n## ")[1:] {
		name, body, _ := strings.Cut(s, "\n")
		sections[name] = body
	}
	var alerts []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			name, _ := r["alert"].(string)
			if name == "" {
				t.Errorf("group %s: a rule that is not an alert: %v", g.Name, r)
				continue
			}
			alerts = append(alerts, name)
			ann, _ := r["annotations"].(map[string]any)
			if got, want := ann["runbook_url"], runbookBase+"#"+strings.ToLower(name); got != want {
				t.Errorf("%s: runbook_url %v, want %s", name, got, want)
			}
			body, ok := sections[name]
			if !ok {
				t.Errorf("%s: no section '## %s' in RUNBOOKS.md", name, name)
			}
			for _, part := range []string{"**What it means.**", "**Confirm.**", "**What to do.**"} {
				if ok && !strings.Contains(body, part) {
					t.Errorf("RUNBOOKS.md, %s: no %s", name, part)
				}
			}
		}
	}
	if len(alerts) < 13 {
		t.Errorf("only %d alerts: %v", len(alerts), alerts)
	}
	for name := range sections {
		if !strings.Contains(string(raw), "alert: "+name+"\n") {
			t.Errorf("RUNBOOKS.md has a section for %s, which is no alert", name)
		}
	}

	// Every metric of ours that a rule uses is one a server exports.
	for _, m := range regexp.MustCompile(`cpantlog_[a-z_]+`).FindAllString(exprs(rf), -1) {
		src, _ := exec.Command("grep", "-rl", "--include=*.go", `"`+m+`"`, "../log", "../witness", "../monitor").Output()
		if len(src) == 0 {
			t.Errorf("a rule uses %s, which no server exports", m)
		}
	}

	// A case where each alert fires and one where it does not.
	var tests ruleTests
	if err := yaml.Unmarshal(mustRead(t, "prometheus/cpantlog.rules.test.yml"), &tests); err != nil {
		t.Fatal(err)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTests {
			if len(a.ExpAlerts) > 0 {
				fires[a.AlertName] = true
			} else {
				quiet[a.AlertName] = true
			}
		}
	}
	for _, name := range alerts {
		if !fires[name] || !quiet[name] {
			t.Errorf("%s: cpantlog.rules.test.yml has no case where it fires (%v) or none where it does not (%v)", name, fires[name], quiet[name])
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool missing in CI: .ci/run installs Debian's prometheus")
		}
		t.Skip("promtool not installed (Debian: prometheus)")
	}
	if out, err := exec.Command(promtool, "check", "rules", "prometheus/cpantlog.rules.yml").CombinedOutput(); err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
	cmd := exec.Command(promtool, "test", "rules", "cpantlog.rules.test.yml")
	cmd.Dir = "prometheus"
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}
}

// TestPrometheusRuleTestsCatchBrokenRules: the unit tests are not
// vacuous. With every alert's expression replaced by one that never
// fires, promtool test rules must fail every case where an alert is
// expected; with one that always fires, every case where none is.
func TestPrometheusRuleTestsCatchBrokenRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool missing in CI: .ci/run installs Debian's prometheus")
		}
		t.Skip("promtool not installed (Debian: prometheus)")
	}
	raw := mustRead(t, "prometheus/cpantlog.rules.test.yml")
	var tests ruleTests
	if err := yaml.Unmarshal(raw, &tests); err != nil {
		t.Fatal(err)
	}
	rf, _ := readRules(t)
	failed := regexp.MustCompile(`alertname: (\w+), time: ([0-9hms]+),`)
	for _, broken := range []struct {
		expr  string
		fires bool // the cases that must fail: those expecting alerts, or those expecting none
	}{{"vector(0) > 1", true}, {"vector(1)", false}} {
		t.Run(broken.expr, func(t *testing.T) {
			var mutated ruleFile
			if err := yaml.Unmarshal(must(yaml.Marshal(rf)), &mutated); err != nil {
				t.Fatal(err)
			}
			for _, g := range mutated.Groups {
				for _, r := range g.Rules {
					r["expr"] = broken.expr
				}
			}
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "cpantlog.rules.yml"), must(yaml.Marshal(mutated)), 0o644)
			os.WriteFile(filepath.Join(dir, "cpantlog.rules.test.yml"), raw, 0o644)
			cmd := exec.Command(promtool, "test", "rules", "cpantlog.rules.test.yml")
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("promtool test rules passes with every expression replaced by %q\n%s", broken.expr, out)
			}
			got := map[string]bool{}
			for _, m := range failed.FindAllStringSubmatch(string(out), -1) {
				d, err := time.ParseDuration(m[2])
				if err != nil {
					t.Fatalf("promtool's output: %q: %v", m[0], err)
				}
				got[m[1]+"@"+d.String()] = true
			}
			for _, tc := range tests.Tests {
				for _, a := range tc.AlertRuleTests {
					if (len(a.ExpAlerts) > 0) != broken.fires {
						continue
					}
					d, err := time.ParseDuration(a.EvalTime)
					if err != nil {
						t.Fatal(err)
					}
					if !got[a.AlertName+"@"+d.String()] {
						t.Errorf("%s at %s: the case passes with the expression %q: it does not test the rule", a.AlertName, a.EvalTime, broken.expr)
					}
				}
			}
		})
	}
}

// exprs is every rule's expression, one per line.
func exprs(rf *ruleFile) string {
	var b strings.Builder
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			e, _ := r["expr"].(string)
			b.WriteString(e + "\n")
		}
	}
	return b.String()
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
