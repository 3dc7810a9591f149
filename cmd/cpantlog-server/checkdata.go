package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/CPAN-Security/cpan-tlog/internal/cli"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
)

// dataCheckFailed is check-data's verdict on a directory the server would
// refuse: exit 1, the report said why.
type dataCheckFailed struct{ dir string }

func (e *dataCheckFailed) Error() string {
	return fmt.Sprintf("%s cannot be served as it is: see the FAIL lines above for what to do", e.dir)
}
func (e *dataCheckFailed) ExitStatus() int { return 1 }

// couldNotCheck is check-data's error when it could not look: exit 2.
type couldNotCheck struct{ err error }

func (e *couldNotCheck) Error() string   { return fmt.Sprintf("could not check: %v", e.err) }
func (e *couldNotCheck) Unwrap() error   { return e.err }
func (e *couldNotCheck) ExitStatus() int { return 2 }

func checkData(args []string, stdout io.Writer) error {
	fs := newFlags("check-data", "Check a log's data directory (a backup, or a restore) before serving it, writing nothing:\n"+
		"the key verifies the tree's checkpoint; every entry of the tree is read and hashes to its\n"+
		"root; Tessera's state agrees; every logged index file version has its bytes, hashing to what\n"+
		"was logged; the lookup index matches the tree; the proofs are there. Each line says ok,\n"+
		"rebuild (the server rebuilds it on start) or FAIL (the server refuses to start; the line says\n"+
		"what to do). Exit status: 0 the directory can be served, 1 it cannot, 2 could not check (the\n"+
		"storage unreachable, or a server holding the lookup index: check a copy, or stop it).",
		"cpantlog-server check-data --data /var/lib/cpantlog",
		"cpantlog-server check-data --data /var/lib/cpantlog --storage s3 --s3-bucket tlog --mysql-dsn 'user:pw@tcp(127.0.0.1:3306)/tlog'")
	var cfg tlog.Config
	fs.StringVar(&cfg.DataDir, "data", "cpantlog-data", "the data `DIR` to check")
	fs.StringVar(&cfg.Storage, "storage", tlog.StoragePOSIX, "storage driver: posix or s3")
	fs.StringVar(&cfg.S3.Endpoint, "s3-endpoint", "", "S3 server URL for non-AWS servers")
	fs.StringVar(&cfg.S3.Bucket, "s3-bucket", "", "S3 bucket of the log")
	fs.StringVar(&cfg.S3.Region, "s3-region", "us-east-1", "S3 region")
	fs.StringVar(&cfg.S3.DSN, "mysql-dsn", "", "MySQL/MariaDB DSN of the log's database")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("unexpected arguments %q", fs.Args())
	}
	if cfg.Storage == tlog.StorageS3 && (cfg.S3.Bucket == "" || cfg.S3.DSN == "") {
		return cli.Usagef("--storage s3 needs --s3-bucket and --mysql-dsn")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := tlog.CheckData(ctx, cfg)
	if err != nil {
		return &couldNotCheck{err}
	}
	fmt.Fprint(stdout, r)
	if r.Failed() {
		return &dataCheckFailed{r.Dir}
	}
	fmt.Fprintf(stdout, "%s can be served\n", r.Dir)
	return nil
}
