package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	tlog "github.com/CPAN-Security/cpan-tlog/log"
)

// TestSeveralLogsInPolicy: a policy carrying two logs, as during a
// log-key rotation (deploy/README.md), needs no --origin: a proof
// verifies against the log its checkpoint names, a proof from a log the
// policy does not name is refused naming it, and online 'verify' and
// 'proof' ask each log in the policy's order (the new log first) until
// one holds the file.
func TestSeveralLogsInPolicy(t *testing.T) {
	smp := samples(t)
	const oldOrigin, newOrigin, otherOrigin = "cpan-tlog.example.org/log", "cpan-tlog.example.org/log2", "elsewhere.example/log"
	old := startLogWith(t, tlog.Config{DataDir: t.TempDir(), Origin: oldOrigin})
	nu := startLogWith(t, tlog.Config{DataDir: t.TempDir(), Origin: newOrigin})
	other := startLogWith(t, tlog.Config{DataDir: t.TempDir(), Origin: otherOrigin})
	onlyOld, both, onlyNew, nowhere := smp[0], smp[1], smp[2], smp[3]
	for _, s := range []sampleFile{onlyOld, both} {
		old.add(t, s.path, s.content, "2024-01-02T03:04:05Z")
	}
	for _, s := range []sampleFile{both, onlyNew} {
		nu.add(t, s.path, s.content, "2024-01-02T03:04:05Z")
	}
	other.add(t, both.path, both.content, "2024-01-02T03:04:05Z")

	policy := writePolicy(t, fmt.Sprintf("log %s %s\nlog %s %s\nquorum none\n", nu.log.VerifierKey(), nu.url, old.log.VerifierKey(), old.url))
	// The old log gone from the network: its proofs must still verify offline.
	offline := writePolicy(t, fmt.Sprintf("log %s %s\nlog %s http://127.0.0.1:9\nquorum none\n", nu.log.VerifierKey(), nu.url, old.log.VerifierKey()))
	state := t.TempDir()
	common := []string{"--policy", policy, "--state", state, "--cache", ""}
	dir := t.TempDir()
	proofOf := func(tl *testLog, s sampleFile) string {
		t.Helper()
		pf := filepath.Join(dir, fmt.Sprintf("%p-%s.tlog-proof", tl, filepath.Base(s.path)))
		pol := writePolicy(t, fmt.Sprintf("log %s %s\nquorum none\n", tl.log.VerifierKey(), tl.url))
		if code, out := cli(t, "proof", s.path, "-o", pf, "--policy", pol, "--state", t.TempDir(), "--cache", ""); code != 0 {
			t.Fatalf("proof of %s: exit %d\n%s", s.path, code, out)
		}
		return pf
	}
	oldProof, otherProof := proofOf(old, onlyOld), proofOf(other, both)

	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"an old log's proof, offline, no --origin", []string{"verify", "--proof", oldProof, onlyOld.local, "--policy", offline, "--state", state}, 0, "log " + oldOrigin + ","},
		{"a third log's proof", []string{"verify", "--proof", otherProof, both.local, "--policy", offline, "--state", state}, 1, `"` + otherOrigin + `"`},
		{"a file in the new log only, online", append([]string{"verify", onlyNew.local}, common...), 0, "log " + newOrigin + ","},
		{"a file in both, online: the first log of the policy", append([]string{"verify", both.local}, common...), 0, "log " + newOrigin + ","},
		{"a file in the old log only, online", append([]string{"verify", onlyOld.local}, common...), 0, "log " + oldOrigin + ","},
		{"a file in no log", append([]string{"verify", nowhere.local}, common...), 1, "not in the log"},
		{"a file in no log, the old log unreachable", []string{"verify", nowhere.local, "--policy", offline, "--state", state, "--cache", ""}, 2, "could not reach the log"},
		{"a file in the new log, the old log unreachable", []string{"verify", onlyNew.local, "--policy", offline, "--state", state, "--cache", ""}, 0, "verified"},
		{"proof of a file in the old log only", append([]string{"proof", onlyOld.path, "-o", filepath.Join(dir, "p")}, common...), 0, "wrote"},
		{"proof of a file in no log", append([]string{"proof", nowhere.path, "-o", filepath.Join(dir, "q")}, common...), 1, "not in the log"},
		{"--origin still chooses", append([]string{"verify", onlyOld.local, "--origin", newOrigin}, common...), 1, "not in the log " + newOrigin},
		{"--origin, a proof", []string{"verify", "--proof", oldProof, onlyOld.local, "--origin", oldOrigin, "--policy", offline, "--state", state}, 0, "verified"},
		{"--log needs --origin", append([]string{"verify", onlyNew.local, "--log", nu.url}, common...), 2, "--origin"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out := cli(t, c.args...)
			if code != c.code || !strings.Contains(out, c.want) {
				t.Errorf("exit %d, want %d; output should contain %q:\n%s", code, c.code, c.want, out)
			}
		})
	}
}

// TestSeveralLogsPerl: cpantlog-verify-pl under a policy carrying two logs
// holds a proof from the second one to that log's tiles and trusted state,
// not to the first log's: it verified the proof against the first log's
// tiles, a false fork (exit 3).
func TestSeveralLogsPerl(t *testing.T) {
	if !perlAvailable(t) {
		t.Skip("perl with CryptX not installed")
	}
	smp := samples(t)
	first := startLogWith(t, tlog.Config{DataDir: t.TempDir(), Origin: "cpan-tlog.example.org/log2"})
	second := startLogWith(t, tlog.Config{DataDir: t.TempDir(), Origin: "cpan-tlog.example.org/log"})
	for _, s := range smp[:6] {
		first.add(t, s.path, s.content, "2025-01-02T03:04:05Z")
	}
	second.add(t, smp[0].path, smp[0].content, "2024-01-02T03:04:05Z")
	second.add(t, smp[1].path, smp[1].content, "2024-01-02T03:04:05Z")
	policy := writePolicy(t, fmt.Sprintf("log %s %s\nlog %s %s\nquorum none\n", first.log.VerifierKey(), first.url, second.log.VerifierKey(), second.url))
	state, dir := t.TempDir(), t.TempDir()
	perlVerify := func(s sampleFile) (int, string) {
		t.Helper()
		pf := filepath.Join(dir, filepath.Base(s.path)+".tlog-proof")
		if code, out := cli(t, "proof", s.path, "-o", pf, "--origin", "cpan-tlog.example.org/log", "--policy", policy, "--state", t.TempDir(), "--cache", ""); code != 0 {
			t.Fatalf("proof of %s: exit %d\n%s", s.path, code, out)
		}
		return runExit(t, exec.Command("perl", "../../client/perl/bin/cpantlog-verify-pl", "--state", state, "--policy", policy, "--proof", pf, "--path", s.path, s.local))
	}
	// The second log trusted at size 2, then grown to 3: its proof at
	// size 3 must be proven consistent with size 2 from its own tiles.
	if code, out := perlVerify(smp[1]); code != 0 {
		t.Fatalf("cpantlog-verify-pl, the second log's proof at size 2: exit %d\n%s", code, out)
	}
	second.add(t, smp[2].path, smp[2].content, "2024-01-02T03:04:05Z")
	if code, out := perlVerify(smp[2]); code != 0 || !strings.Contains(out, "log cpan-tlog.example.org/log,") {
		t.Errorf("cpantlog-verify-pl, the second log's proof at size 3: exit %d, want 0\n%s", code, out)
	}
	// A proof from a log the policy does not name: refused, naming it.
	third := startLogWith(t, tlog.Config{DataDir: t.TempDir(), Origin: "elsewhere.example/log"})
	third.add(t, smp[0].path, smp[0].content, "2024-01-02T03:04:05Z")
	pf := filepath.Join(dir, "third.tlog-proof")
	pol3 := writePolicy(t, fmt.Sprintf("log %s %s\nquorum none\n", third.log.VerifierKey(), third.url))
	if code, out := cli(t, "proof", smp[0].path, "-o", pf, "--policy", pol3, "--state", t.TempDir(), "--cache", ""); code != 0 {
		t.Fatalf("proof: exit %d\n%s", code, out)
	}
	if code, out := runExit(t, exec.Command("perl", "../../client/perl/bin/cpantlog-verify-pl", "--state", state, "--policy", policy, "--proof", pf, "--path", smp[0].path, smp[0].local)); code != 1 || !strings.Contains(out, "elsewhere.example/log") {
		t.Errorf("cpantlog-verify-pl, a third log's proof: exit %d, want 1\n%s", code, out)
	}
}

// TestSeveralLogsExec: 'cpantlog exec' (and 'proxy') under a policy
// carrying two logs asks the first with no --origin (it asked for one);
// --origin still chooses.
func TestSeveralLogsExec(t *testing.T) {
	needCpanm(t)
	e := newExecEnv(t)
	other := startLogWith(t, tlog.Config{DataDir: t.TempDir(), Origin: "cpan-tlog.example.org/log-old"})
	other.stop() // the old log, gone from the network
	e.policy = writePolicy(t, fmt.Sprintf("log %s %s\nlog %s http://127.0.0.1:9\nquorum none\n", e.tl.log.VerifierKey(), e.tl.url, other.log.VerifierKey()))
	lib := t.TempDir()
	if code, out := e.run(t, "cpanm", "-n", "-L", lib, "Test::Fatal"); code != 0 || !installed(lib, "Test/Fatal.pm") || !strings.Contains(out, okLine+testFatal) {
		t.Errorf("cpantlog exec -- cpanm Test::Fatal, two logs in the policy: exit %d\n%s", code, out)
	}
	lib = t.TempDir()
	args := append([]string{"exec", "--origin", "cpan-tlog.example.org/log-old", "--upstream", e.mirror, "--policy", e.policy, "--state", e.state, "--files", t.TempDir(), "--"}, "cpanm", "-n", "-L", lib, "Test::Fatal")
	if code, out := cli(t, args...); code != 2 || installed(lib, "Test/Fatal.pm") {
		t.Errorf("cpantlog exec --origin <the unreachable log>: exit %d, want 2\n%s", code, out)
	}
}

// TestSeveralLogsSnapshot: 'cpantlog snapshot' under a policy carrying
// two logs asks the first with no --origin (it asked for one).
func TestSeveralLogsSnapshot(t *testing.T) {
	smp := samples(t)
	tl := startLog(t, t.TempDir())
	for _, s := range smp {
		tl.add(t, s.path, s.content, "2024-01-02T03:04:05Z")
	}
	old := startLogWith(t, tlog.Config{DataDir: t.TempDir(), Origin: "cpan-tlog.example.org/log-old"})
	old.stop()
	policy := writePolicy(t, fmt.Sprintf("log %s %s\nlog %s http://127.0.0.1:9\nquorum none\n", tl.log.VerifierKey(), tl.url, old.log.VerifierKey()))
	var snap strings.Builder
	snap.WriteString("# carton snapshot format: version 1.0\nDISTRIBUTIONS\n")
	for _, s := range smp[:2] {
		dist := strings.TrimSuffix(filepath.Base(s.path), ".tar.gz")
		fmt.Fprintf(&snap, "  %s\n    pathname: %s\n    provides:\n      X%d 1\n    requirements:\n      ExtUtils::MakeMaker 0\n", dist, strings.TrimPrefix(s.path, "authors/id/"), len(dist))
	}
	snapFile := filepath.Join(t.TempDir(), "cpanfile.snapshot")
	os.WriteFile(snapFile, []byte(snap.String()), 0o644)
	root, _ := buildMirror(t, smp)
	if code, out := cli(t, "snapshot", snapFile, "--mirror", root, "--policy", policy, "--state", t.TempDir()); code != 0 || !strings.Contains(out, "2 of 2 distributions verified") {
		t.Errorf("snapshot, two logs in the policy: exit %d\n%s", code, out)
	}
}
