package main

import (
	"fmt"
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
