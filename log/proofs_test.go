package log

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client/tlogproof"
	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
)

// TestProofTreeRepairsAfterCrash: proof files are synced once per pass, so
// a crash may leave one empty while the pass is not recorded done; the next
// pass writes it again and leaves the intact ones alone.
func TestProofTreeRepairsAfterCrash(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	smp := samples(t)[:3]
	for _, x := range smp {
		s.mustAdd(x.request())
	}
	name := func(x sample) string {
		b, err := hex.DecodeString(x.sha256)
		if err != nil || len(b) != 32 {
			t.Fatalf("sample digest %q", x.sha256)
		}
		return filepath.Join(dir, ProofsDir, filepath.FromSlash(cpan.ProofPath(x.path, [32]byte(b))))
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		s.log.WriteProofs(context.Background())
		if _, err := os.Stat(name(smp[len(smp)-1])); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no proof for the last entry")
		}
	}
	// The crash: one file empty, the pass not recorded.
	if err := os.WriteFile(name(smp[1]), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.log.index.PutMeta(metaProofs, []byte("0")); err != nil {
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
