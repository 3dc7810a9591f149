package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	"github.com/CPAN-Security/cpan-tlog/internal/minicpan"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/log/ingest"
	"github.com/CPAN-Security/cpan-tlog/log/prooftree"
)

// TestProofsTravelWithTheTarballs: the samples are logged with a witness,
// the proof tree is published into a mirror beside the tarballs, and the
// log is stopped. The Perl verifier verifies every sample from the
// mirror's proofs, and cpanm installs through cpantlog exec with no log at
// all; a tampered tarball fails in both.
func TestProofsTravelWithTheTarballs(t *testing.T) {
	smp := samples(t)
	logDir, logVKey := newLogKey(t)
	w1 := startWitness(t, "w1.example", logVKey)
	policyFor := func(logURL string) string {
		return fmt.Sprintf("log %s %s\nwitness w1 %s %s\ngroup g any w1\nquorum g\n", logVKey, logURL, w1.vkey, w1.url)
	}
	lg := startLogWith(t, tlog.Config{DataDir: logDir, WitnessPolicy: []byte(policyFor("http://127.0.0.1:1"))})
	for _, s := range smp {
		lg.add(t, s.path, s.content, "2024-01-02T03:04:05Z")
	}
	lg.add(t, packagesPath, packagesIndex(packages), time.Now().UTC().Format(time.RFC3339))
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		lg.log.WriteProofs(context.Background())
		_, err := os.Stat(filepath.Join(logDir, tlog.ProofsDir, filepath.FromSlash(cpan.ProofPath(packagesPath, sha256.Sum256(packagesIndex(packages))))))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the proof tree did not cover every entry")
		}
	}
	// The log serves the same tree.
	if b := fetch(t, lg.url+"/"+cpan.ProofPath(smp[0].path, sha256.Sum256(smp[0].content))); !bytes.HasPrefix(b, []byte("c2sp.org/tlog-proof@v1\n")) {
		t.Fatalf("GET the proof from the log: %q", b)
	}
	root, mirror := buildMirror(t, smp)
	copied, kept, err := prooftree.Publish(logDir, root)
	if err != nil || copied != len(smp)+1 || kept != 0 {
		t.Fatalf("publish-proofs: %d copied, %d kept, %v", copied, kept, err)
	}
	if copied, kept, err = prooftree.Publish(logDir, root); err != nil || copied != 0 || kept != len(smp)+1 {
		t.Fatalf("publish-proofs again (idempotent): %d copied, %d kept, %v", copied, kept, err)
	}
	policy := writePolicy(t, policyFor(lg.url))
	lg.stop() // from here on there is no log to ask

	perl := perlAvailable(t)
	t.Setenv("CPANTLOG_STATE", t.TempDir()) // the Perl verifier's trusted state
	perlVerify := func(p string) (int, string) {
		cmd := exec.Command("perl", "../../client/perl/bin/cpantlog-verify-pl", "--policy", policy,
			"--proof", filepath.Join(root, filepath.FromSlash(cpan.ProofPath(p, sha256.Sum256(mustRead(t, filepath.Join(root, p)))))), filepath.Join(root, p))
		return runExit(t, cmd)
	}
	if perl {
		for _, s := range smp {
			if code, out := perlVerify(s.path); code != 0 || !strings.Contains(out, "cosigned by: w1") {
				t.Errorf("Perl verifier on %s: exit %d\n%s", s.path, code, out)
			}
		}
	}
	if _, err := exec.LookPath("cpanm"); err == nil {
		t.Setenv("HOME", t.TempDir())
		t.Setenv("PERL_CPANM_HOME", t.TempDir())
		lib := t.TempDir()
		code, out := cli(t, "exec", "--upstream", mirror, "--policy", policy, "--state", t.TempDir(), "--files", "", "--", "cpanm", "-n", "-L", lib, "Test::Fatal")
		if code != 0 || !installed(lib, "Test/Fatal.pm") || !strings.Contains(out, okLine+testFatal) {
			t.Errorf("cpantlog exec -- cpanm with the log down, proofs from the mirror: exit %d\n%s", code, out)
		}
	}

	// A tampered tarball fails in both.
	tf := filepath.Join(root, testFatal)
	good := mustRead(t, tf)
	bad := bytes.Clone(good)
	bad[len(bad)/2] ^= 1
	os.WriteFile(tf, bad, 0o644)
	if perl {
		// The proof is published under the genuine file's name; the
		// tampered one is checked against it.
		cmd := exec.Command("perl", "../../client/perl/bin/cpantlog-verify-pl", "--policy", policy,
			"--proof", filepath.Join(root, filepath.FromSlash(cpan.ProofPath(testFatal, sha256.Sum256(good)))), tf)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "does not match the log") {
			t.Errorf("Perl verifier on a tampered tarball: %v\n%s", err, out)
		}
	}
	if _, err := exec.LookPath("cpanm"); err == nil {
		lib := t.TempDir()
		code, out := cli(t, "exec", "--upstream", mirror, "--policy", policy, "--state", t.TempDir(), "--files", "", "--", "cpanm", "-n", "-L", lib, "Test::Fatal")
		if code == 0 || installed(lib, "Test/Fatal.pm") || !strings.Contains(out, refusedLine+testFatal) || !strings.Contains(out, "does not match the log") {
			t.Errorf("tampered tarball, log down: exit %d\n%s", code, out)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestProofsFollowThePolicy: proofs written before the log had a witness
// (a back-fill with 'import', checkpoints signed by the log alone) are
// rewritten once a witness is configured, against a checkpoint the new
// policy accepts, so every proof in the tree verifies under it, and
// publish-proofs copies the changed files to the mirror.
func TestProofsFollowThePolicy(t *testing.T) {
	logDir, logVKey := newLogKey(t)
	tree, err := minicpan.Build("../../testdata", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var smp []sampleFile
	for _, f := range tree.Uploads {
		smp = append(smp, sampleFile{path: f.Path, local: filepath.Join(tree.Root, filepath.FromSlash(f.Path)), content: f.Content})
	}
	lg := startLog(t, logDir)
	if _, err := ingest.Import(context.Background(), lg.log, tree.Root, io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	proofName := func(s sampleFile) string {
		return filepath.Join(logDir, tlog.ProofsDir, filepath.FromSlash(cpan.ProofPath(s.path, sha256.Sum256(s.content))))
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		lg.log.WriteProofs(context.Background())
		if _, err := os.Stat(proofName(smp[len(smp)-1])); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no proofs written")
		}
	}
	mirror := t.TempDir()
	if copied, _, err := prooftree.Publish(logDir, mirror); err != nil || copied < len(smp) {
		t.Fatalf("publish-proofs: %d %v", copied, err)
	}
	lg.stop()

	w1 := startWitness(t, "w1.example", logVKey)
	policy := fmt.Sprintf("log %s\nwitness w1 %s %s\nquorum w1\n", logVKey, w1.vkey, w1.url)
	lg = startLogWith(t, tlog.Config{DataDir: logDir, WitnessPolicy: []byte(policy), CheckpointInterval: time.Second})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		lg.log.WriteProofs(context.Background())
		if bytes.Contains(mustRead(t, proofName(smp[0])), []byte("\u2014 w1.example ")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the proofs still lack the new witness's cosignature:\n%s", mustRead(t, proofName(smp[0])))
		}
	}
	policyFile := writePolicy(t, policy)
	for _, s := range smp {
		if code, out := cli(t, "verify", "--proof", proofName(s), "--path", s.path, s.local, "--policy", policyFile, "--state", t.TempDir()); code != 0 || !strings.Contains(out, "cosigned by: w1") {
			t.Errorf("%s's proof under the witness policy: exit %d\n%s", s.path, code, out)
		}
	}
	if copied, _, err := prooftree.Publish(logDir, mirror); err != nil || copied < len(smp) {
		t.Errorf("publish-proofs after the rewrite: %d copied, %v; want at least %d", copied, err, len(smp))
	}
}
