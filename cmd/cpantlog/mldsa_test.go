package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/witness"
)

// TestMLDSA44EndToEnd: a real log whose checkpoints a real witness keyed
// ML-DSA-44 (pq) and one keyed Ed25519 (w1) cosign, under "group both 2
// w1 pq" (the log reads the same policy). Its proofs are accepted by
// cpantlog verify (online and offline) and the proxy; the Perl verifier,
// which cannot check ML-DSA-44, says "could not check" (2) and why; and
// with pq's cosignature flipped, in a proof or by a tampering front
// before the log, each Go verifier refuses.
func TestMLDSA44EndToEnd(t *testing.T) {
	smp := samples(t)
	logDir, logVKey := newLogKey(t)
	w1 := startWitness(t, "w1.example", logVKey)
	pq := testlog.StartWitnessWith(t, "pq.example", logVKey, witness.MLDSA44)
	if !strings.Contains(pq.VKey, "+B") { // base64 of 0x06...
		t.Fatalf("pq's vkey %q... is not type 0x06", pq.VKey[:30])
	}
	policyText := func(logURL string) string {
		return fmt.Sprintf("log %s %s\nwitness w1 %s %s\nwitness pq %s %s\ngroup both 2 w1 pq\nquorum both\n",
			logVKey, logURL, w1.vkey, w1.url, pq.VKey, pq.URL)
	}
	lg := startLogWith(t, tlog.Config{DataDir: logDir, WitnessPolicy: []byte(policyText("http://127.0.0.1:1"))})
	policy := writePolicy(t, policyText(lg.url))
	s := smp[0]
	lg.add(t, s.path, s.content, "2024-01-02T03:04:05Z")
	cp := fetch(t, lg.url+"/checkpoint")
	if !bytes.Contains(cp, []byte("\u2014 w1.example ")) || !bytes.Contains(cp, []byte("\u2014 pq.example ")) {
		t.Fatalf("the published checkpoint lacks a cosignature:\n%s", cp)
	}

	// cpantlog verify, online.
	if code, out := cli(t, "verify", s.local, "--policy", policy, "--state", t.TempDir()); code != 0 || !strings.Contains(out, "cosigned by: w1, pq") {
		t.Fatalf("cpantlog verify online: exit %d\n%s", code, out)
	}
	// Offline, from the log's tlog-proof.
	proofFile := filepath.Join(t.TempDir(), "p.tlog-proof")
	if code, out := cli(t, "proof", s.path, "-o", proofFile, "--policy", policy, "--state", t.TempDir()); code != 0 {
		t.Fatalf("cpantlog proof: %d %s", code, out)
	}
	if code, out := cli(t, "verify", "--proof", proofFile, "--path", s.path, s.local, "--policy", policy, "--state", t.TempDir()); code != 0 {
		t.Fatalf("cpantlog verify --proof: exit %d\n%s", code, out)
	}
	flippedProof := filepath.Join(t.TempDir(), "flipped.tlog-proof")
	if err := os.WriteFile(flippedProof, testlog.FlipSignature(mustRead(t, proofFile), "pq.example"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := cli(t, "verify", "--proof", flippedProof, "--path", s.path, s.local, "--policy", policy, "--state", t.TempDir()); code != 1 || !strings.Contains(out, "witness pq") {
		t.Errorf("cpantlog verify --proof with pq's cosignature flipped: exit %d, want 1 naming witness pq\n%s", code, out)
	}

	// Online, through a front that flips pq's cosignature.
	front := testlog.FlippingFront(t, lg.url, "pq.example")
	if b := fetch(t, front+"/checkpoint"); bytes.Equal(b, cp) || len(b) != len(cp) {
		t.Fatal("the tampering front does not flip pq's cosignature")
	}
	frontPolicy := writePolicy(t, policyText(front))
	if code, out := cli(t, "verify", s.local, "--policy", frontPolicy, "--state", t.TempDir()); code != 1 || !strings.Contains(out, "witness pq") {
		t.Errorf("cpantlog verify online, pq's cosignature flipped: exit %d, want 1 naming witness pq\n%s", code, out)
	}

	// The proxy: a mirror serving the file, with the log's proof beside
	// it (the proof verifies, no log asked), or none (the log is asked).
	withProof, bare := t.TempDir(), t.TempDir()
	layMirror(t, withProof, s.path, s.content, mustRead(t, proofFile))
	layMirror(t, bare, s.path, s.content, nil)
	for _, c := range []struct {
		name, policy, mirror string
		want                 int
	}{
		{"the mirror's proof", writePolicy(t, policyText("http://127.0.0.1:1")), withProof, 200},
		{"the log's proof", policy, bare, 200},
		{"the log's proof, pq's cosignature flipped", frontPolicy, bare, 403},
	} {
		purl, plogs := startProxy(t, c.policy, c.mirror)
		resp, body := get(t, purl+"/"+s.path, nil)
		if resp.StatusCode != c.want || (c.want == 200 && !bytes.Equal(body, s.content)) {
			t.Errorf("proxy, %s: %d, want %d\n%s\n%s", c.name, resp.StatusCode, c.want, body, plogs)
		}
	}

	// The Perl verifier cannot check ML-DSA-44: could not check, and says
	// which tool can.
	if !perlAvailable(t) {
		return
	}
	for _, proof := range []string{proofFile, flippedProof} {
		cmd := exec.Command("perl", "../../client/perl/bin/cpantlog-verify-pl", "--policy", policy, "--proof", proof, "--path", s.path, "--offline", s.local)
		cmd.Env = append(os.Environ(), "CPANTLOG_STATE="+t.TempDir())
		code, out := runExit(t, cmd)
		if code != 2 || !strings.Contains(out, perlCannotCheckMLDSA) || !strings.Contains(out, "witness pq") || !strings.Contains(out, "cpantlog verify") {
			t.Errorf("cpantlog-verify-pl %s: exit %d, want 2 saying it cannot check pq's ML-DSA-44 cosignature and naming cpantlog verify\n%s", filepath.Base(proof), code, out)
		}
	}
}
