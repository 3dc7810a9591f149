package log

import (
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/tessera"
	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/client"
)

// quorumKeys are four witnesses' keys: K1..K4 in a policy template stand
// for their cosignature/v1 verifier keys.
type quorumKeys struct {
	vkeys   []string
	signers []note.Signer
	log     note.Signer
}

func newQuorumKeys(t testing.TB) *quorumKeys {
	k := &quorumKeys{}
	for i := range 4 {
		skey, vkey, err := note.GenerateKey(rand.Reader, fmt.Sprintf("w%d.example", i+1))
		if err != nil {
			t.Fatal(err)
		}
		s, err := fnote.NewSignerForCosignatureV1(skey)
		if err != nil {
			t.Fatal(err)
		}
		cv, err := fnote.VKeyToCosignatureV1(vkey)
		if err != nil {
			t.Fatal(err)
		}
		k.vkeys, k.signers = append(k.vkeys, cv), append(k.signers, s)
	}
	skey, _, err := note.GenerateKey(rand.Reader, DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	if k.log, err = note.NewSigner(skey); err != nil {
		t.Fatal(err)
	}
	return k
}

func (k *quorumKeys) policy(template string) []byte {
	r := strings.NewReplacer("K1", k.vkeys[0], "K2", k.vkeys[1], "K3", k.vkeys[2], "K4", k.vkeys[3])
	return []byte(r.Replace(template))
}

// agree checks, for every subset of the four witnesses cosigning, that
// the diagnosis's quorum (possible without the others) says what
// Tessera's WitnessGroup says of a checkpoint they cosigned. It returns
// false when Tessera or the log's Open would refuse the policy.
func (k *quorumKeys) agree(t testing.TB, policy []byte) bool {
	wg, err := tessera.NewWitnessGroupFromPolicy(policy)
	if err != nil || client.CheckDuplicateKeys(policy) != nil {
		return false
	}
	w, err := newWitnessWatch(policy, DefaultOrigin, "vkey", false, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("Tessera accepts the policy, the diagnosis does not: %v\n%s", err, policy)
	}
	names := map[string]int{} // witness name → key index
	for _, s := range w.order {
		for i, vk := range k.vkeys {
			if strings.Contains(string(policy), s.name+" "+vk) {
				names[s.name] = i
			}
		}
	}
	text := "localhost/cpan-tlog\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
	for mask := range 16 {
		signers := []note.Signer{k.log}
		for i := range 4 {
			if mask&(1<<i) != 0 {
				signers = append(signers, k.signers[i])
			}
		}
		cp, err := note.Sign(&note.Note{Text: text}, signers...)
		if err != nil {
			t.Fatal(err)
		}
		want := wg.Satisfied(cp)
		got := w.quorum == nil || w.quorum.possible(func(s *witnessState) bool {
			i, ok := names[s.name]
			return !ok || mask&(1<<i) == 0
		})
		if got != want {
			t.Fatalf("cosigned by %04b: the diagnosis says the quorum is %v, Tessera %v\n%s", mask, got, want, policy)
		}
	}
	return true
}

// TestWitnessQuorumAgreesWithTessera: the diagnosis evaluates the
// policy's quorum as Tessera does, for every subset of witnesses.
func TestWitnessQuorumAgreesWithTessera(t *testing.T) {
	k := newQuorumKeys(t)
	for _, p := range []string{
		"witness w1 K1 http://127.0.0.1:1\nquorum w1\n",
		"witness w1 K1 http://127.0.0.1:1\nwitness w2 K2 http://127.0.0.1:2/\ngroup g any w1 w2\nquorum g\n",
		"witness w1 K1 http://127.0.0.1:1\nwitness w2 K2 http://127.0.0.1:2\ngroup g all w1 w2\nquorum g\n",
		"witness w1 K1 http://a:1\nwitness w2 K2 http://b:2\nwitness w3 K3 http://c:3/x\ngroup g 2 w1 w2 w3\nquorum g\n",
		"witness w1 K1 http://a:1\nwitness w2 K2 http://b:2\nwitness w3 K3 http://c:3\nwitness w4 K4 http://d:4\ngroup a any w1 w2\ngroup b all w3 w4\ngroup top 2 a b w1\nquorum top\n",
		"witness w1 K1 http://a:1\nquorum none\n",
		"witness w1 K1 http://a:1\ngroup g 0\nquorum g\n",
		"quorum w1\nwitness w1 K1 http://a:1 # the quorum line before\nquorum none\nquorum w1\n",
		"log localhost/cpan-tlog+00000000+AAAA http://log\nwitness w1 K1 http://a:1\ngroup g 01 w1\nquorum g\n",
	} {
		if !k.agree(t, k.policy(p)) {
			t.Errorf("Tessera or Open refuses the test's policy:\n%s", p)
		}
	}
}

// FuzzWitnessQuorum: for any policy Tessera and the log accept (K1..K4
// standing for real witness keys), the diagnosis reads it and agrees
// with Tessera on every subset of cosigners.
func FuzzWitnessQuorum(f *testing.F) {
	f.Add("witness w1 K1 http://127.0.0.1:1\nwitness w2 K2 http://127.0.0.1:2\ngroup g any w1 w2\nquorum g\n")
	f.Add("witness w1 K1 http://a:1\nwitness w2 K2 http://b:2\nwitness w3 K3 http://c:3\nwitness w4 K4 http://d:4\ngroup a any w1 w2\ngroup b all w3 w4\ngroup top 2 a b w1\nquorum top\n")
	f.Add("quorum w1\nwitness w1 K1 http://a:1\n")
	k := newQuorumKeys(f)
	f.Fuzz(func(t *testing.T, template string) {
		if len(template) > 4096 {
			return
		}
		k.agree(t, k.policy(template))
	})
}
