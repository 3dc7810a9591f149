package cli

import (
	"errors"
	"flag"
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
