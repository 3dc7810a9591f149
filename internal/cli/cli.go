// Package cli gives the cpan-tlog commands one voice: the same --version
// (from the build's own record of its module version and VCS revision),
// and usage errors that exit 2 in every binary.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// ExitUsage is the exit status of a usage error in every binary.
const ExitUsage = 2

// UsageError is a command line the program cannot run: a bad flag, a
// missing argument.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// Parse is ParseAs with fs's name as the command: name a flag set after
// the command as it is typed ("cpantlog-server import").
func Parse(fs *flag.FlagSet, args []string) error {
	return ParseAs(fs, args, fs.Name())
}

// ParseAs parses args into fs, the flags of command (as it is typed:
// "cpantlog verify"). -h prints fs's usage and returns flag.ErrHelp. A bad
// flag prints nothing: it is a UsageError of two lines, what is wrong (for
// a flag that is not defined, with the defined ones it may be a typo of:
// "flag provided but not defined: -polcy (did you mean --policy?)") and
// "run 'COMMAND -h' for the flags", without the usage, which would bury
// the one line that matters.
func ParseAs(fs *flag.FlagSet, args []string, command string) error {
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = usage
	fs.SetOutput(out)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		if usage != nil {
			usage()
		} else {
			fmt.Fprintf(out, "Usage of %s:\n", command)
			fs.PrintDefaults()
		}
		return err
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		if s := Suggest(fs, name); len(s) > 0 {
			msg += " (did you mean --" + strings.Join(s, " or --") + "?)"
		}
	}
	return &UsageError{Err: fmt.Errorf("%s\nrun '%s -h' for the flags", msg, command)}
}

// Suggest returns the flags of fs that name, which is not one, may be a
// typo of: those at the smallest edit distance from it, at most 2 (and less
// than its length), or those it is a prefix of (of at least 3 characters),
// which count as distance 1. At most 3, in order.
func Suggest(fs *flag.FlagSet, name string) []string {
	best := 3
	var out []string
	fs.VisitAll(func(f *flag.Flag) {
		d := levenshtein(strings.ToLower(name), strings.ToLower(f.Name))
		if d >= len(name) {
			d = best + 1
		}
		if len(name) >= 3 && strings.HasPrefix(f.Name, name) {
			d = min(d, 1)
		}
		switch {
		case d < best:
			best, out = d, []string{f.Name}
		case d == best && d <= 2:
			out = append(out, f.Name)
		}
	})
	if best > 2 {
		return nil
	}
	return out[:min(len(out), 3)]
}

// levenshtein is the edit distance between a and b (insertions, deletions,
// substitutions of bytes).
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// ExitCode is 0 for no error or -h, ExitUsage for a usage error, the
// status an error names with an ExitStatus() int method (an interrupted
// command's 130), and other for anything else.
func ExitCode(err error, other int) int {
	var ue *UsageError
	var es interface{ ExitStatus() int }
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, &es):
		return es.ExitStatus()
	}
	return other
}

// IsVersion reports whether args ask for the version.
func IsVersion(args []string) bool {
	return len(args) > 0 && (args[0] == "--version" || args[0] == "-version" || args[0] == "version")
}

// IsHelp reports whether args ask for the top-level help.
func IsHelp(args []string) bool {
	return len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help")
}

// version, when set at link time (-X, by scripts/package.sh), is the
// release version; the VCS details still come from the build.
var version string

// Version is the one-line version of a command: its module version (or the
// packaged release's), VCS revision and whether the tree was modified, as
// the Go toolchain recorded them in the binary.
func Version(command string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return command + " (no build information)"
	}
	if version != "" {
		bi.Main.Version = version
	}
	return command + " " + describe(bi)
}

func describe(bi *debug.BuildInfo) string {
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	var rev, when string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	var parts []string
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		r := "revision " + rev
		if modified {
			r += " (modified)"
		}
		parts = append(parts, r)
	}
	if when != "" {
		parts = append(parts, when)
	}
	parts = append(parts, bi.GoVersion)
	return version + ", " + strings.Join(parts, ", ")
}
