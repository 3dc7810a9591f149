package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/internal/cli"
	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/log/prooftree"
)

// TestSampleMirrorTwiceHasEveryProof: sample-mirror run twice over the
// same mirror, against a running log with a witness, leaves a mirror in
// which every file (under authors/id/ but CHECKSUMS, which the log does not
// hold, and the index files, the second run's 02packages included) has a
// proof under tlog/proofs/ that verifies offline with the policy. The first
// run's proofs counted for the second's files, so the second left the proof
// of the old 02packages and none of the new one. Then, with the log down,
// carton-tlog installs from the mirror (when carton and perl with CryptX
// are installed).
func TestSampleMirrorTwiceHasEveryProof(t *testing.T) {
	dataDir := t.TempDir()
	logVKey, err := tlog.Keygen(dataDir, tlog.DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	w := testlog.StartWitness(t, "w1.example", logVKey)
	policyText := fmt.Sprintf("log %s %%s\nwitness w1 %s %s\nquorum w1\n", logVKey, w.VKey, w.URL)
	lg := testlog.Start(t, tlog.Config{DataDir: dataDir, WitnessPolicy: []byte(fmt.Sprintf(policyText, ""))})
	mirror := filepath.Join(t.TempDir(), "cpan-mirror")
	index := filepath.Join(mirror, "modules", "02packages.details.txt.gz")
	var versions [][32]byte
	for run := range 2 {
		if run > 0 {
			// 02packages says when it was written, to the second: the second
			// run's is another version.
			time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(1100 * time.Millisecond)))
		}
		if err := sampleMirror([]string{"--from", "../../testdata", "--to", mirror, "--log", lg.URL, "--data", dataDir, "--wait", "30s"}); err != nil {
			t.Fatalf("sample-mirror run %d: %v", run+1, err)
		}
		b, err := os.ReadFile(index)
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, sha256.Sum256(b))
	}
	if versions[0] == versions[1] {
		t.Fatal("both runs wrote the same 02packages: the test shows nothing")
	}

	// Every file of the mirror, verified with its proof alone.
	policyFile := filepath.Join(t.TempDir(), "policy")
	os.WriteFile(policyFile, []byte(fmt.Sprintf(policyText, lg.URL)), 0o644)
	lg.Stop() // from here on there is no log to ask
	p, err := client.ParsePolicy([]byte(fmt.Sprintf(policyText, lg.URL)))
	if err != nil {
		t.Fatal(err)
	}
	st, err := client.OpenState(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v, err := client.NewVerifier(p, "", "", st, "")
	if err != nil {
		t.Fatal(err)
	}
	v.Fetcher = nil // offline
	var files []string
	filepath.WalkDir(filepath.Join(mirror, "authors"), func(full string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "CHECKSUMS" {
			return err
		}
		rel, _ := filepath.Rel(mirror, full)
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	files = append(files, "modules/02packages.details.txt.gz")
	if len(files) < 10 {
		t.Fatalf("the mirror holds only %q", files)
	}
	for _, f := range files {
		file, err := client.HashFile(filepath.Join(mirror, filepath.FromSlash(f)), f)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(mirror, filepath.FromSlash(cpan.ProofPath(f, file.SHA256))))
		if err != nil {
			t.Errorf("%s has no proof on the mirror: %v", f, err)
			continue
		}
		if _, err := v.VerifyMirrorProof(raw, file, time.Hour); err != nil {
			t.Errorf("%s: its proof on the mirror does not verify: %v", f, err)
		}
	}
	if missing, err := prooftree.Missing(mirror); err != nil || len(missing) != 0 {
		t.Errorf("MissingProofs = %q, %v; want none", missing, err)
	}

	// The Perl side, with the log down.
	defer publishProofsSaysWhatIsMissing(t, dataDir, mirror)
	if _, err := exec.LookPath("carton"); err != nil {
		t.Log("carton not installed (Debian: carton): only the Go side is checked")
		return
	}
	if err := exec.Command("perl", "-MCrypt::PK::Ed25519", "-e1").Run(); err != nil {
		t.Log("perl with CryptX not installed: only the Go side is checked")
		return
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "cpanfile"), []byte("requires 'Test::Fatal';\n"), 0o644)
	script, _ := filepath.Abs("../../client/perl/bin/carton-tlog")
	cmd := exec.Command("perl", script, "--mirror", mirror, "install")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CPANTLOG_POLICY="+policyFile, "HOME="+t.TempDir(), "PERL_CARTON_PATH=", "PERL_CPANM_OPT=", "http_proxy=", "HTTP_PROXY=")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	if _, serr := os.Stat(filepath.Join(dir, "local", "lib", "perl5", "Test", "Fatal.pm")); err != nil || serr != nil {
		t.Errorf("carton-tlog --mirror install Test::Fatal with the log down after two sample-mirror runs: %v\n%s", err, lastLines(string(out), 30))
	}
}

// publishProofsSaysWhatIsMissing: publish-proofs over a mirror that has
// since got a 02packages the log has no proof of names it and exits 1.
func publishProofsSaysWhatIsMissing(t *testing.T, dataDir, mirror string) {
	t.Helper()
	os.WriteFile(filepath.Join(mirror, "modules", "02packages.details.txt.gz"), []byte("an index the log never saw"), 0o644)
	err := publishProofs([]string{"--data", dataDir, "--to", mirror})
	if cli.ExitCode(err, 1) != 1 || !strings.Contains(fmt.Sprint(err), "1 file of the mirror has no proof in it yet (modules/02packages.details.txt.gz)") {
		t.Errorf("publish-proofs with a 02packages the log has no proof of: %v (exit %d), want exit 1 naming it", err, cli.ExitCode(err, 1))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
