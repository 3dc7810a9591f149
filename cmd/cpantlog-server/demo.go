package main

import (
	"context"
	"io"
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
	return demo.Run(ctx, stdout, *testdata)
}
