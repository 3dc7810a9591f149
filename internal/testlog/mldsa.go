package testlog

import (
	"fmt"
	"testing"

	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/witness"
)

// StartMLDSA44Pair starts a log whose checkpoints a real witness keyed
// Ed25519 (w1) and a real witness keyed ML-DSA-44 (pq) cosign, under
// "group both 2 w1 pq". policy(logURL) is that policy with the log at
// logURL, as a client or monitor reads it.
func StartMLDSA44Pair(t testing.TB) (l *Log, policy func(logURL string) string) {
	t.Helper()
	dir := t.TempDir()
	logVKey, err := tlog.Keygen(dir, tlog.DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	w1 := StartWitness(t, "w1.example", logVKey)
	pq := StartWitnessWith(t, "pq.example", logVKey, witness.MLDSA44)
	policy = func(logURL string) string {
		return fmt.Sprintf("log %s %s\nwitness w1 %s %s\nwitness pq %s %s\ngroup both 2 w1 pq\nquorum both\n",
			logVKey, logURL, w1.VKey, w1.URL, pq.VKey, pq.URL)
	}
	return Start(t, tlog.Config{DataDir: dir, WitnessPolicy: []byte(policy("http://127.0.0.1:1"))}), policy
}
