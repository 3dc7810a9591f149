// Package cli gives the cpan-tlog commands one voice: the same --version
// (from the build's own record of its module version and VCS revision),
// and usage errors that exit 2 in every binary.
package cli

import (
	"errors"
	"flag"
	"fmt"
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

// Parse parses args into fs; a bad flag is a UsageError (the flag package
// has printed it with the usage already), -h is flag.ErrHelp.
func Parse(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &UsageError{Err: err}
}

// ExitCode is 0 for no error or -h, ExitUsage for a usage error, and
// other for anything else.
func ExitCode(err error, other int) int {
	var ue *UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		return ExitUsage
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
