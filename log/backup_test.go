package log_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/internal/minicpan"
	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/monitor"
)

// BackupSet is what deploy/README.md's "Backups" says must be copied from
// a POSIX data directory: nothing else is needed to restore the log (the
// lookup index and the proofs are rebuilt).
var BackupSet = []string{tlog.KeyFile, tlog.VKeyFile, tlog.TokenFile, tlog.TreeDir, tlog.IndexFilesDir}

// copyTree copies src into dst as rsync -a would (hidden files included).
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(to, info.Mode().Perm()|0o700)
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// backup copies the documented set of a stopped log's data directory.
func backup(t testing.TB, from string, set []string) string {
	t.Helper()
	to := filepath.Join(t.TempDir(), "backup")
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range set {
		copyTree(t, filepath.Join(from, name), filepath.Join(to, name))
	}
	return to
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// logMirror logs the distribution files of testdata named by paths, with
// their 02packages and 01mailrc as PAUSE would publish them: a new index
// version each time.
func logMirror(t testing.TB, l *testlog.Log, paths ...string) {
	t.Helper()
	from := t.TempDir()
	for _, p := range paths {
		b, err := os.ReadFile(filepath.Join("../testdata", p))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(from, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(from, p), b, 0o644)
	}
	tree, err := minicpan.Build(from, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := minicpan.Log(ctx, l.URL, l.Token(), tree, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
}

// audit runs a monitor round on the log at url with the monitor's state
// in state and returns what it found.
func audit(t testing.TB, vkey, url, state string) []monitor.Finding {
	t.Helper()
	p, err := client.ParsePolicy([]byte(fmt.Sprintf("log %s %s\nquorum none\n", vkey, url)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := monitor.New(monitor.Config{Policy: p, StateDir: state, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.Sync(ctx); err != nil {
		t.Fatalf("monitor round: %v", err)
	}
	f, err := m.Deliver(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// waitProofs waits until the proof tree of the log in dir holds n files.
func waitProofs(t testing.TB, dir string, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got := 0
		filepath.WalkDir(filepath.Join(dir, tlog.ProofsDir), func(p string, d fs.DirEntry, err error) error {
			if err == nil && strings.HasSuffix(p, ".tlog-proof") {
				got++
			}
			return nil
		})
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d proof files in %s after 30s, want %d", got, dir, n)
		}
	}
}

func checkData(t testing.TB, dir string) *tlog.CheckReport {
	t.Helper()
	r, err := tlog.CheckData(context.Background(), tlog.Config{DataDir: dir})
	if err != nil {
		t.Fatalf("check-data could not check %s: %v", dir, err)
	}
	return r
}

// A log with uploads and index versions is audited by a monitor, stopped,
// backed up as deploy/README.md documents, and restored into a new
// directory: check-data passes, the server starts (rebuilding the lookup
// index and the proofs), and the monitor's next round, and a new monitor's
// first, find nothing.
func TestBackupRestoreMonitorFindsNothing(t *testing.T) {
	live := filepath.Join(t.TempDir(), "live")
	a := testlog.Start(t, tlog.Config{DataDir: live, Logger: quiet()})
	logMirror(t, a, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", "authors/id/R/RJ/RJBS/Test-Fatal-0.017.tar.gz")
	logMirror(t, a, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", "authors/id/R/RJ/RJBS/Test-Fatal-0.017.tar.gz", "authors/id/H/HA/HAARG/Role-Tiny-2.002004.tar.gz")
	vkey := a.VerifierKey()
	state := t.TempDir()
	if f := audit(t, vkey, a.URL, state); len(f) != 0 {
		t.Fatalf("the monitor's first round found %+v", f)
	}
	waitProofs(t, live, 7) // 3 uploads, 2 versions of 02packages, 2 of 01mailrc
	a.Stop()

	saved := backup(t, live, BackupSet)
	restored := filepath.Join(t.TempDir(), "restored")
	copyTree(t, saved, restored)
	r := checkData(t, restored)
	if r.Failed() {
		t.Fatalf("check-data refuses the documented backup:\n%s", r)
	}
	for _, want := range []string{"ok      keys:", "ok      tree: all 7 entries read", "ok      index files: all 4 logged versions", "rebuild lookup index: index.db is missing"} {
		if !strings.Contains(r.String(), want) {
			t.Errorf("check-data's report lacks %q:\n%s", want, r)
		}
	}

	b := testlog.Start(t, tlog.Config{DataDir: restored, Logger: quiet()})
	if b.VerifierKey() != vkey {
		t.Fatalf("the restored log has key %s, want %s", b.VerifierKey(), vkey)
	}
	waitProofs(t, restored, 7)
	// More history after the restore: an upload and a new index version.
	logMirror(t, b, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", "authors/id/R/RJ/RJBS/Test-Fatal-0.017.tar.gz", "authors/id/H/HA/HAARG/Role-Tiny-2.002004.tar.gz", "authors/id/N/NE/NEILB/Text-Diff-1.45.tar.gz")
	if f := audit(t, vkey, b.URL, state); len(f) != 0 {
		t.Errorf("the monitor's round after the restore found %+v", f)
	}
	if f := audit(t, vkey, b.URL, t.TempDir()); len(f) != 0 {
		t.Errorf("a new monitor auditing the restored log found %+v", f)
	}
	b.Stop()
	if r := checkData(t, restored); r.Failed() || strings.Contains(r.String(), "rebuild") {
		t.Errorf("check-data after the restored log ran:\n%s", r)
	}
}

// A restore missing one index file version is refused by check-data and
// by the server, each saying what to do; --allow-missing-index-files
// serves it anyway.
func TestDamagedRestoreRefused(t *testing.T) {
	live := filepath.Join(t.TempDir(), "live")
	a := testlog.Start(t, tlog.Config{DataDir: live, Logger: quiet()})
	logMirror(t, a, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz")
	a.Stop()
	restored := backup(t, live, BackupSet)
	versions, _ := filepath.Glob(filepath.Join(restored, tlog.IndexFilesDir, "*", "*"))
	if len(versions) != 2 {
		t.Fatalf("index-files/ holds %v, want 2 versions", versions)
	}
	if err := os.Remove(versions[0]); err != nil {
		t.Fatal(err)
	}
	lost := strings.TrimSuffix(filepath.Base(versions[0]), ".gz")
	r := checkData(t, restored)
	if !r.Failed() || !strings.Contains(r.String(), "FAIL    index files: 1 of 2 logged versions") || !strings.Contains(r.String(), lost) || !strings.Contains(r.String(), "restore index-files/ from the backup") {
		t.Errorf("check-data on a restore without version %s:\n%s", lost, r)
	}
	cp, _ := os.ReadFile(filepath.Join(restored, tlog.TreeDir, "checkpoint"))
	_, err := tlog.Open(context.Background(), tlog.Config{DataDir: restored, Logger: quiet()})
	if err == nil || !strings.Contains(err.Error(), "the bytes of 1 of the 2 logged index file versions looked at are missing") || !strings.Contains(err.Error(), lost) || !strings.Contains(err.Error(), "restore index-files/ from the backup") {
		t.Fatalf("the server started on a restore without an index file version: %v", err)
	}
	if now, _ := os.ReadFile(filepath.Join(restored, tlog.TreeDir, "checkpoint")); string(now) != string(cp) {
		t.Errorf("the refused start changed the checkpoint:\n%s\nwas\n%s", now, cp)
	}
	l := testlog.Start(t, tlog.Config{DataDir: restored, Logger: quiet(), AllowMissingIndexFiles: true})
	l.Stop()
}

// A tree copied without its hidden .state/ (cp -r tree/*, a backup tool
// skipping dot files) would make Tessera start the tree again from size 0:
// refused, and the checkpoint left as it was.
func TestRestoreWithoutTreeStateRefused(t *testing.T) {
	live := filepath.Join(t.TempDir(), "live")
	a := testlog.Start(t, tlog.Config{DataDir: live, Logger: quiet()})
	logMirror(t, a, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz")
	a.Stop()
	restored := backup(t, live, BackupSet)
	if err := os.RemoveAll(filepath.Join(restored, tlog.TreeDir, ".state")); err != nil {
		t.Fatal(err)
	}
	cp, _ := os.ReadFile(filepath.Join(restored, tlog.TreeDir, "checkpoint"))
	if r := checkData(t, restored); !r.Failed() || !strings.Contains(r.String(), "Tessera's state") || !strings.Contains(r.String(), "rollback") {
		t.Errorf("check-data on a tree without .state:\n%s", r)
	}
	_, err := tlog.Open(context.Background(), tlog.Config{DataDir: restored, Logger: quiet()})
	if err == nil || !strings.Contains(err.Error(), "rsync -a") {
		t.Fatalf("the server started on a tree without .state: %v", err)
	}
	if now, _ := os.ReadFile(filepath.Join(restored, tlog.TreeDir, "checkpoint")); string(now) != string(cp) {
		t.Errorf("the refused start changed the checkpoint:\n%s\nwas\n%s", now, cp)
	}
}

// What is derived is rebuilt on start: a lookup index of another log is
// moved aside and rebuilt; proofs missing under a lookup index that says
// they were written are written again.
func TestStartRebuildsDerivedState(t *testing.T) {
	live := filepath.Join(t.TempDir(), "live")
	a := testlog.Start(t, tlog.Config{DataDir: live, Logger: quiet()})
	logMirror(t, a, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", "authors/id/R/RJ/RJBS/Test-Fatal-0.017.tar.gz")
	waitProofs(t, live, 4)
	a.Stop()
	other := filepath.Join(t.TempDir(), "other")
	o := testlog.Start(t, tlog.Config{DataDir: other, Logger: quiet()})
	logMirror(t, o, "authors/id/H/HA/HAARG/Role-Tiny-2.002004.tar.gz")
	o.Stop()

	// The proofs lost, the lookup index kept.
	restored := backup(t, live, append(BackupSet, tlog.IndexFile))
	if r := checkData(t, restored); r.Failed() || !strings.Contains(r.String(), "rebuild proofs: 4 of 4 missing") {
		t.Errorf("check-data on a restore without proofs/:\n%s", r)
	}
	b := testlog.Start(t, tlog.Config{DataDir: restored, Logger: quiet()})
	waitProofs(t, restored, 4)
	b.Stop()

	// Another log's lookup index.
	restored = backup(t, live, BackupSet)
	copyTree(t, filepath.Join(other, tlog.IndexFile), filepath.Join(restored, tlog.IndexFile))
	if r := checkData(t, restored); r.Failed() || !strings.Contains(r.String(), "rebuild lookup index:") || !strings.Contains(r.String(), "not this tree's") {
		t.Errorf("check-data on a restore with another log's index.db:\n%s", r)
	}
	b = testlog.Start(t, tlog.Config{DataDir: restored, Logger: quiet()})
	recs, err := b.History("authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz")
	if err != nil || len(recs) != 1 {
		t.Errorf("lookup after the rebuild: %v %v", recs, err)
	}
	if recs, _ := b.History("authors/id/H/HA/HAARG/Role-Tiny-2.002004.tar.gz"); len(recs) != 0 {
		t.Errorf("the other log's entry is still looked up: %v", recs)
	}
	b.Stop()
	if aside, _ := filepath.Glob(filepath.Join(restored, tlog.IndexFile+".not-this-tree.*")); len(aside) != 1 {
		t.Errorf("the other log's index was not moved aside: %v", aside)
	}
}
