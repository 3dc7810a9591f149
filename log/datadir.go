package log

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// ErrNotLogDir wraps the refusal of a --data directory that holds
// something else than a log: a witness's or a monitor's state, or files
// no log writes. Nothing is written in it.
var ErrNotLogDir = errors.New("not a cpan-tlog log's data directory")

// foreignMarks are files other cpan-tlog tools keep in their state
// directories, and what they say the directory is.
var foreignMarks = []struct{ name, what string }{
	{"witness.key", "a witness's state directory (cpantlog-witness)"},
	{"witness.vkey", "a witness's state directory (cpantlog-witness)"},
	{"monitor.db", "a monitor's state directory (cpantlog-monitor)"},
	{"trusted", "a monitor's or a client's trusted-state directory"},
}

// logNames says whether a name in a data directory is one a log (or its
// operator) puts there: the keys, the tokens, the tree, the lookup index,
// the index file versions, the proofs, and what a file system or an
// editor leaves (lost+found, dot files).
func logNames(name string) bool {
	switch {
	case strings.HasPrefix(name, "."), name == "lost+found",
		strings.HasPrefix(name, "log."), strings.HasPrefix(name, "ingest"),
		strings.HasPrefix(name, "index"), name == TreeDir, name == ProofsDir:
		return true
	}
	return false
}

// CheckDataDir refuses a data directory that holds something other than
// a log: another tool's state, or files a log does not write. An empty or
// missing directory, and one holding a log (or only its keys, from
// keygen), pass. The error names the directory by its absolute path.
func CheckDataDir(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the data directory %s: %w", abs, err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	for _, m := range foreignMarks {
		if slices.Contains(names, m.name) {
			return fmt.Errorf("%w: %s is %s (it holds %s). Pass the log's own directory with --data (the packages use /var/lib/cpantlog); nothing was written",
				ErrNotLogDir, abs, m.what, m.name)
		}
	}
	var foreign []string
	for _, n := range names {
		if !logNames(n) {
			foreign = append(foreign, shownName(n))
		}
	}
	if len(foreign) > 0 && !slices.ContainsFunc(names, func(n string) bool { return n == KeyFile || n == VKeyFile || n == TreeDir }) {
		shown := foreign[:min(len(foreign), 3)]
		more := ""
		if len(foreign) > len(shown) {
			more = fmt.Sprintf(" and %d more", len(foreign)-len(shown))
		}
		return fmt.Errorf("%w: %s is not empty and holds no log (no %s, %s or %s/; it holds %s%s). Pass the log's directory with --data, or an empty or new one to start a new log; nothing was written",
			ErrNotLogDir, abs, KeyFile, VKeyFile, TreeDir, strings.Join(shown, ", "), more)
	}
	return nil
}

// shownName is a file name as an error shows it: as it is when plain,
// else quoted, so that a crafted name (a newline and a forged report
// line, a terminal escape) cannot write on the operator's terminal.
func shownName(n string) string {
	for _, r := range n {
		if r <= ' ' || r == 0x7f || r == '"' || r == '\\' || !unicode.IsPrint(r) {
			return strconv.Quote(n)
		}
	}
	return n
}
