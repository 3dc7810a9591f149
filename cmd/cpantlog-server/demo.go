package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"time"

	"k8s.io/klog/v2"

	"github.com/CPAN-Security/cpan-tlog/internal/cli"
	"github.com/CPAN-Security/cpan-tlog/internal/demo"
)

// demoCmd runs the narrated demo. It lives with the servers, not in the
// user's tool: it runs a log, a witness and a monitor.
func demoCmd(args []string, stdout io.Writer) error {
	fs := newFlags("demo", "Run the whole story in a temporary directory: a log, a witness, the sample CPAN tarballs\nlogged, a cosigned checkpoint, a monitor, a verification and a tampered tarball refused;\nwith cpanm installed, a real cpanm install through the log and a tampered tarball it meets.", "cpantlog-server demo", "cpantlog-server demo --testdata /path/to/cpan-tlog/testdata")
	testdata := fs.String("testdata", "testdata", "`DIR` holding the sample tarballs under authors/id/")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return cli.Usagef("demo takes no arguments")
	}
	// Tessera's own progress logs would drown the story.
	klog.LogToStderr(false)
	klog.SetOutput(io.Discard)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return demo.Run(ctx, stdout, sampleDir(*testdata))
}

// sharedTestdata is where the packages install the sample tarballs
// (scripts/package.sh).
var sharedTestdata = "/usr/share/cpantlog/testdata"

// sampleDir is the directory of sample tarballs to read: dir, or when dir
// is the default "testdata" and holds none (not run from the repository),
// the packages' copy if it is installed.
func sampleDir(dir string) string {
	if dir != "testdata" {
		return dir
	}
	if _, err := os.Stat(filepath.Join(dir, "authors", "id")); err == nil {
		return dir
	}
	if _, err := os.Stat(filepath.Join(sharedTestdata, "authors", "id")); err == nil {
		return sharedTestdata
	}
	return dir
}
