package log

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// TestOpenRefusesDuplicateWitnessKey: C2SP tlog-policy allows one witness
// line per public key. Tessera's parser accepts two, and the log would
// then publish checkpoints "group 2"-cosigned by one witness; Open refuses
// the policy at start, naming both lines, before it writes anything.
func TestOpenRefusesDuplicateWitnessKey(t *testing.T) {
	_, wvkey, err := note.GenerateKey(rand.Reader, "w1.example")
	if err != nil {
		t.Fatal(err)
	}
	cv, err := fnote.VKeyToCosignatureV1(wvkey)
	if err != nil {
		t.Fatal(err)
	}
	policy := fmt.Sprintf("witness w1 %s http://127.0.0.1:1\nwitness w1b %s http://127.0.0.1:2\ngroup g 2 w1 w1b\nquorum g\n", cv, cv)
	dir := filepath.Join(t.TempDir(), "data")
	_, err = Open(context.Background(), Config{DataDir: dir, WitnessPolicy: []byte(policy)})
	if err == nil || !strings.Contains(err.Error(), `policy line 2`) || !strings.Contains(err.Error(), `same public key as witness "w1" on line 1`) {
		t.Fatalf("Open: %v, want the duplicate key refused naming lines 1 and 2", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the data directory was created (%v): a refused policy must change nothing", err)
	}
}

// TestOpenAcceptsMLDSA44Witness: a policy whose quorum needs an ML-DSA-44
// witness (key type 0x06, C2SP tlog-cosignature) and an Ed25519 one opens
// (Tessera's parser and the client's read it alike; TestMLDSA44EndToEnd
// shows the log publishing checkpoints both cosigned).
func TestOpenAcceptsMLDSA44Witness(t *testing.T) {
	_, edVKey, err := note.GenerateKey(rand.Reader, "w1.example")
	if err != nil {
		t.Fatal(err)
	}
	cv, err := fnote.VKeyToCosignatureV1(edVKey)
	if err != nil {
		t.Fatal(err)
	}
	_, pqVKey, err := fnote.GenerateMLDSAKey("pq.example")
	if err != nil {
		t.Fatal(err)
	}
	policy := fmt.Sprintf("witness w1 %s http://127.0.0.1:1\nwitness pq %s http://127.0.0.1:2\ngroup g 2 w1 pq\nquorum g\n", cv, pqVKey)
	l, err := Open(context.Background(), Config{DataDir: filepath.Join(t.TempDir(), "data"), WitnessPolicy: []byte(policy)})
	if err != nil {
		t.Fatalf("Open with an ML-DSA-44 witness: %v", err)
	}
	if err := l.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}
