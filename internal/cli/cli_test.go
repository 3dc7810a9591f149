package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-11-25T00:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	if got, want := describe(bi), "v1.2.3, revision 0123456789ab (modified), 2026-11-25T00:00:00Z, go1.26.8"; got != want {
		t.Errorf("describe = %q, want %q", got, want)
	}
	if got := describe(&debug.BuildInfo{GoVersion: "go1.26.8"}); got != "(devel), go1.26.8" {
		t.Errorf("describe without VCS = %q", got)
	}
}

func TestParseAndExitCode(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String("data", "", "")
	err := Parse(fs, []string{"--nope"})
	if ExitCode(err, 1) != ExitUsage || !strings.Contains(err.Error(), "nope") {
		t.Errorf("bad flag: %v, exit %d", err, ExitCode(err, 1))
	}
	if err := Parse(fs, []string{"-h"}); !errors.Is(err, flag.ErrHelp) || ExitCode(err, 1) != 0 {
		t.Errorf("-h: %v", err)
	}
	if ExitCode(errors.New("disk"), 1) != 1 || ExitCode(Usagef("want %d", 1), 1) != ExitUsage || ExitCode(nil, 1) != 0 {
		t.Error("ExitCode")
	}
	if !IsVersion([]string{"--version"}) || IsVersion([]string{"serve"}) || !IsHelp([]string{"help"}) {
		t.Error("IsVersion/IsHelp")
	}
}

// TestParseSaysWhatIsWrongInOneLine: a flag that is not defined is one
// line with the flag it may be a typo of, then how to see the flags; the
// usage is not printed; -h still prints it.
func TestParseSaysWhatIsWrongInOneLine(t *testing.T) {
	newFS := func(out io.Writer) *flag.FlagSet {
		fs := flag.NewFlagSet("cpantlog verify", flag.ContinueOnError)
		fs.SetOutput(out)
		fs.Usage = func() { fmt.Fprintln(fs.Output(), "Usage: the whole usage") }
		for _, name := range []string{"policy", "state", "log", "origin", "s3-bucket", "s3-region", "o"} {
			fs.String(name, "", "")
		}
		return fs
	}
	for _, c := range []struct {
		arg, want string
	}{
		{"--polcy", "flag provided but not defined: -polcy (did you mean --policy?)"},
		{"-Policy=x", "flag provided but not defined: -Policy (did you mean --policy?)"},
		{"--stat", "flag provided but not defined: -stat (did you mean --state?)"},
		{"--pol", "flag provided but not defined: -pol (did you mean --policy?)"}, // a prefix before "log", 2 edits away
		{"--s3-bukcet", "flag provided but not defined: -s3-bukcet (did you mean --s3-bucket?)"},
		{"--s3-regoin", "flag provided but not defined: -s3-regoin (did you mean --s3-region?)"},
		{"--s3-", "flag provided but not defined: -s3- (did you mean --s3-bucket or --s3-region?)"},
		{"-x", "flag provided but not defined: -x"},        // one letter: anything is one edit away
		{"--nope", "flag provided but not defined: -nope"}, // nothing near
		{"--log", "flag needs an argument: -log"},          // not a typo: said as the flag package says it
	} {
		var out bytes.Buffer
		fs := newFS(&out)
		err := ParseAs(fs, []string{c.arg}, "cpantlog verify")
		want := c.want + "\nrun 'cpantlog verify -h' for the flags"
		if err == nil || err.Error() != want || ExitCode(err, 1) != ExitUsage {
			t.Errorf("%s: %q (exit %d), want %q (exit 2)", c.arg, err, ExitCode(err, 1), want)
		}
		if out.Len() != 0 {
			t.Errorf("%s printed %q; want nothing (the caller prints the error, no usage)", c.arg, out.String())
		}
	}
	var out bytes.Buffer
	if err := ParseAs(newFS(&out), []string{"--origin", "o", "--state", "s"}, "cpantlog verify"); err != nil || out.Len() != 0 {
		t.Errorf("defined flags: %v, printed %q", err, out.String())
	}
	if err := ParseAs(newFS(&out), []string{"-h"}, "cpantlog verify"); !errors.Is(err, flag.ErrHelp) || out.String() != "Usage: the whole usage\n" {
		t.Errorf("-h: %v, printed %q; want ErrHelp and the usage", err, out.String())
	}
	// Parse names the command after the flag set.
	if err := Parse(newFS(io.Discard), []string{"--polcy"}); err == nil || !strings.HasSuffix(err.Error(), "run 'cpantlog verify -h' for the flags") {
		t.Errorf("Parse: %v", err)
	}
}

type statusErr int

func (e statusErr) Error() string   { return "stopped" }
func (e statusErr) ExitStatus() int { return int(e) }

// TestExitCodeOfAnErrorWithItsOwnStatus: an error that names its exit
// status (an interrupted command's 130) ends with it, wrapped or not.
func TestExitCodeOfAnErrorWithItsOwnStatus(t *testing.T) {
	if got := ExitCode(fmt.Errorf("import: %w", statusErr(130)), 1); got != 130 {
		t.Errorf("ExitCode = %d, want 130", got)
	}
}
