package main

import (
	"context"
	"errors"
	"io"
	"time"

	"k8s.io/klog/v2"

	"github.com/CPAN-Security/cpan-tlog/internal/demo"
)

func demoCmd(args []string, stdout, stderr io.Writer) error {
	fs, _ := newFlags("demo", "demo [--testdata DIR]\n\nRun the whole story in a temporary directory: a log, a witness, the sample CPAN tarballs\nlogged, a cosigned checkpoint, a monitor, a verification and a tampered tarball refused.", stderr)
	testdata := fs.String("testdata", "testdata", "directory holding the sample tarballs under authors/id/")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return errors.New("demo takes no arguments")
	}
	// Tessera's own progress logs would drown the story.
	klog.LogToStderr(false)
	klog.SetOutput(io.Discard)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return demo.Run(ctx, stdout, *testdata)
}
