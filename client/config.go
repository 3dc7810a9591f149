package client

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// One configuration for every cpantlog tool, Go and Perl (the Perl
// verifier's CPAN::TLog::Cpanm reads the same places):
//
//   - the trust policy is $CPANTLOG_POLICY, else
//     $XDG_CONFIG_HOME/cpantlog/policy (~/.config/cpantlog/policy); the
//     Perl tools' old ~/.cpantlog/policy is still read when only it exists,
//     with a notice;
//   - trusted state is kept under $CPANTLOG_STATE, else
//     $XDG_STATE_HOME/cpantlog (~/.local/state/cpantlog).

// DefaultLogPolicy is the policy of the log every tool trusts when the
// user has written none, as the go command carries sum.golang.org's key.
// It is empty until the CPAN Security Group runs a public log; `cpantlog
// init` with no flags writes it.
const DefaultLogPolicy = ""

// PolicyFile returns where the trust policy is read, and a notice to
// print when that is the old Perl location.
func PolicyFile() (path, notice string) {
	if p := os.Getenv("CPANTLOG_POLICY"); p != "" {
		return p, ""
	}
	cfg, err := os.UserConfigDir()
	if err != nil {
		cfg = filepath.Join(os.TempDir(), "cpantlog-config")
	}
	p := filepath.Join(cfg, "cpantlog", "policy")
	if _, err := os.Stat(p); err == nil {
		return p, ""
	}
	if home, err := os.UserHomeDir(); err == nil {
		old := filepath.Join(home, ".cpantlog", "policy")
		if _, err := os.Stat(old); err == nil {
			return old, fmt.Sprintf("reading the policy from %s; move it to %s, where every cpantlog tool looks", old, p)
		}
	}
	return p, ""
}

// StateDir is where trusted state is kept: $CPANTLOG_STATE, else
// DefaultStateDir.
func StateDir() string {
	if d := os.Getenv("CPANTLOG_STATE"); d != "" {
		return d
	}
	return DefaultStateDir()
}

// PolicySpec is what a log's operator publishes: the log's URL and
// verifier key, and its witnesses.
type PolicySpec struct {
	LogURL, LogKey string
	// Witnesses are "NAME VKEY [URL]".
	Witnesses []string
	// Quorum is how many witnesses must cosign: "all", "any" or a number
	// (default all).
	Quorum string
}

// FormatPolicy writes the policy text for spec and checks that it parses
// as a policy every verifier reads.
func FormatPolicy(spec PolicySpec) ([]byte, error) {
	if spec.LogURL == "" || spec.LogKey == "" {
		return nil, errors.New("want the log's URL and verifier key (--log URL --key VKEY), as its operator publishes them")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# The cpan-tlog trust policy, read by every cpantlog tool (Go and Perl).\n")
	fmt.Fprintf(&b, "log %s %s\n", spec.LogKey, strings.TrimSuffix(spec.LogURL, "/"))
	var names []string
	for _, w := range spec.Witnesses {
		f := strings.Fields(w)
		if len(f) < 2 || len(f) > 3 {
			return nil, fmt.Errorf("witness %q: want \"NAME VKEY [URL]\"", w)
		}
		fmt.Fprintf(&b, "witness %s\n", strings.Join(f, " "))
		names = append(names, f[0])
	}
	switch q := spec.Quorum; {
	case len(names) == 0 && (q == "" || q == "none"):
		b.WriteString("quorum none\n")
	case len(names) == 0:
		return nil, fmt.Errorf("quorum %q with no witness", q)
	default:
		if q == "" {
			q = "all"
		}
		if n, err := strconv.Atoi(q); q != "all" && q != "any" && (err != nil || n < 1 || n > len(names)) {
			return nil, fmt.Errorf("quorum %q: want all, any or a number from 1 to %d", q, len(names))
		}
		fmt.Fprintf(&b, "group witnesses %s %s\nquorum witnesses\n", q, strings.Join(names, " "))
	}
	text := []byte(b.String())
	if _, err := ParsePolicy(text); err != nil {
		return nil, err
	}
	return text, nil
}
