package log

import (
	"bytes"
	"context"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client/tlogproof"
	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	"github.com/CPAN-Security/cpan-tlog/log/prooftree"
)

// startWithProofs starts a log in a new data directory, adds the first n
// samples and writes proof passes until the last sample's proof is there.
func startWithProofs(t *testing.T, n int) (dir string, s *server, smp []sample) {
	t.Helper()
	dir = t.TempDir()
	s = startServer(t, dir)
	smp = samples(t)[:n]
	for _, x := range smp {
		s.mustAdd(x.request())
	}
	last := filepath.Join(dir, ProofsDir, filepath.FromSlash(smp[n-1].proofPath(t)))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		s.log.WriteProofs(context.Background())
		if _, err := os.Stat(last); err == nil {
			return dir, s, smp
		}
		if time.Now().After(deadline) {
			t.Fatal("no proof for the last entry")
		}
	}
}

// proofPath is where the proof tree keeps the sample's proof.
func (x sample) proofPath(t testing.TB) string {
	t.Helper()
	b, err := hex.DecodeString(x.sha256)
	if err != nil || len(b) != 32 {
		t.Fatalf("sample digest %q", x.sha256)
	}
	return cpan.ProofPath(x.path, [32]byte(b))
}

// TestProofTreeRepairsAfterCrash: proof files are synced once per pass, so
// a crash may leave one empty while the pass is not recorded done; the next
// pass writes it again and leaves the intact ones alone.
func TestProofTreeRepairsAfterCrash(t *testing.T) {
	dir, s, smp := startWithProofs(t, 3)
	name := func(x sample) string { return filepath.Join(dir, ProofsDir, filepath.FromSlash(x.proofPath(t))) }
	// The crash: one file empty, the pass not recorded.
	if err := os.WriteFile(name(smp[1]), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.log.index.PutMeta(prooftree.CoveredKey(""), []byte("0")); err != nil {
		t.Fatal(err)
	}
	n, err := s.log.WriteProofs(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("WriteProofs after the crash wrote %d files (%v), want 1", n, err)
	}
	for i, x := range smp {
		b, err := os.ReadFile(name(x))
		if err != nil {
			t.Fatal(err)
		}
		p, err := tlogproof.Parse(b)
		if err != nil || p.Index != uint64(i) {
			t.Errorf("proof of %s: index %v, %v", x.path, p, err)
		}
	}
}

// TestProofTreeYieldsToAdds: while an add is in flight the proof writer
// writes nothing; it catches up once adds pause.
func TestProofTreeYieldsToAdds(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	s.log.inflight <- struct{}{} // an add in flight all along
	for _, x := range samples(t)[:2] {
		s.mustAdd(x.request())
	}
	s.checkpoint(2)
	proofs := func() int {
		n := 0
		filepath.WalkDir(filepath.Join(dir, ProofsDir), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".tlog-proof") {
				n++
			}
			return nil
		})
		return n
	}
	time.Sleep(500 * time.Millisecond) // five passes of the writer
	if n := proofs(); n != 0 {
		t.Fatalf("%d proofs written while an add was in flight, want none", n)
	}
	<-s.log.inflight
	for deadline := time.Now().Add(10 * time.Second); proofs() != 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d proofs after adds paused, want 2", proofs())
		}
	}
}

// TestDamagedProofIsRepairedAndRepublished: a proof file cut short after
// its pass was recorded is never served (nor as immutable), is written
// again by the next pass once found (when served, or by the sweep at
// start), and publish-proofs replaces a mirror's copy that differs.
func TestDamagedProofIsRepairedAndRepublished(t *testing.T) {
	dir, s, smp := startWithProofs(t, 3)
	name := func(x sample) string { return filepath.Join(dir, ProofsDir, filepath.FromSlash(x.proofPath(t))) }
	mirror := t.TempDir()
	if _, _, err := prooftree.Publish(dir, mirror); err != nil {
		t.Fatal(err)
	}
	good := mustReadFile(t, name(smp[0]))
	cut := func(x sample) {
		b := mustReadFile(t, name(x))
		if err := os.WriteFile(name(x), b[:len(b)/2], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Damaged after the pass was recorded.
	cut(smp[0])
	if _, _, err := prooftree.Publish(dir, t.TempDir()); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("publish-proofs of a tree with a damaged file: %v, want an error naming it", err)
	}
	resp, err := http.Get(s.url + "/" + smp[0].proofPath(t))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("a damaged proof was served: %d %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	if n, err := s.log.WriteProofs(context.Background()); err != nil || n != 1 {
		t.Fatalf("WriteProofs after a damaged proof was asked for: %d written, %v; want 1", n, err)
	}
	if p, err := tlogproof.Parse(mustReadFile(t, name(smp[0]))); err != nil || p.Index != 0 || !bytes.Equal(p.Extra, mustParseProof(t, good).Extra) {
		t.Errorf("the damaged proof was not written again: %v %v", p, err)
	}
	// Found by the sweep, never asked for.
	cut(smp[2])
	if _, damaged := s.log.proofs.Sweep(context.Background()); damaged != 1 {
		t.Errorf("sweep found %d damaged files, want 1", damaged)
	}
	if n, err := s.log.WriteProofs(context.Background()); err != nil || n != 1 {
		t.Fatalf("WriteProofs after the sweep: %d written, %v; want 1", n, err)
	}
	// A mirror's cut copy is replaced.
	mcopy := filepath.Join(mirror, filepath.FromSlash(smp[1].proofPath(t)))
	os.WriteFile(mcopy, []byte("cut"), 0o644)
	copied, _, err := prooftree.Publish(dir, mirror)
	if err != nil || copied < 1 {
		t.Fatalf("publish-proofs: %d copied, %v", copied, err)
	}
	if b := mustReadFile(t, mcopy); string(b) != string(mustReadFile(t, name(smp[1]))) {
		t.Error("the mirror's cut copy was not replaced")
	}
}

func mustReadFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustParseProof(t *testing.T, b []byte) *tlogproof.Proof {
	t.Helper()
	p, err := tlogproof.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
