package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/CPAN-Security/cpan-tlog/internal/cli"
	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/log/index"
)

// check-data's exit status: 0 for a directory the server can serve, 1
// with the FAIL lines for one it refuses, 2 when it could not look (a
// server holds the lookup index), 2 for a usage error.
func TestCheckDataCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	l := testlog.Start(t, tlog.Config{DataDir: dir})
	l.Add(t, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", []byte("try"), "2024-01-02T03:04:05Z", true)
	l.Add(t, "modules/02packages.details.txt", []byte("a version of 02packages\n"), "2024-01-02T03:04:05Z", true)

	run := func(args ...string) (int, string) {
		var out bytes.Buffer
		err := checkData(args, &out)
		if line := errorLine("check-data", err); line != "" {
			out.WriteString(line + "\n")
		}
		return cli.ExitCode(err, 1), out.String()
	}
	// The server running holds the lookup index: could not check.
	if code, out := run("--data", dir); code != 2 || !strings.Contains(out, "could not check") || !strings.Contains(out, index.ErrLocked.Error()) {
		t.Errorf("check-data beside a running server: exit %d\n%s", code, out)
	}
	l.Stop()
	if code, out := run("--data", dir); code != 0 || !strings.Contains(out, "ok      index files: all 1 logged versions") || !strings.Contains(out, dir+" can be served") {
		t.Errorf("check-data on a sound directory: exit %d\n%s", code, out)
	}
	versions, _ := filepath.Glob(filepath.Join(dir, tlog.IndexFilesDir, "*", "*"))
	for _, v := range versions {
		os.Remove(v)
	}
	if code, out := run("--data", dir); code != 1 || !strings.Contains(out, "FAIL    index files:") || !strings.Contains(out, "cannot be served as it is") {
		t.Errorf("check-data without the index file versions: exit %d\n%s", code, out)
	}
	if code, _ := run("--data", dir, "--storage", "s3"); code != cli.ExitUsage {
		t.Errorf("check-data --storage s3 without a bucket: exit %d", code)
	}
	// serve refuses it too, with what to do.
	if _, err := tlog.Open(context.Background(), tlog.Config{DataDir: dir}); err == nil || !strings.Contains(err.Error(), "--allow-missing-index-files") {
		t.Errorf("serve on the damaged directory: %v", err)
	}
}
