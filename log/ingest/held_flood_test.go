package ingest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/testing/ca"

	"github.com/CPAN-Security/cpan-tlog/client/sigstore"
	"github.com/CPAN-Security/cpan-tlog/internal/sigstoretest"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
)

// TestFollowerHeldBundleFlood: a hostile mirror's RECENT lists many
// Sigstore bundles whose files never come. Each one was held by reading
// and rewriting the whole held list in the index, with no bound until
// the end of the poll: quadratic time in the bundles listed (a RECENT file
// may be 256 MiB). The list held stays within maxHeld while the poll runs.
func TestFollowerHeldBundleFlood(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	v, err := sigstore.LoadTrustedRoot(sigstoretest.TrustedRootFile(t, vs))
	if err != nil {
		t.Fatal(err)
	}
	l, err := tlog.Open(context.Background(), tlog.Config{DataDir: t.TempDir(), Sigstore: v, CheckpointInterval: 100 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Shutdown(context.Background())
	m := newMirror(t)
	const n = maxHeld + 200
	for i := range n {
		m.add(i, fmt.Sprintf("authors/id/E/EV/EVIL/Never-%d.tar.gz.sigstore.json", i), []byte("{}"))
	}
	f := &Follower{Log: l, Mirror: m.srv.URL, Logger: quiet}
	most := 0
	f.heldHook = func(hs []heldBundle) { most = max(most, len(hs)) }
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if most > maxHeld {
		t.Errorf("%d bundles held at once during the poll, more than maxHeld %d", most, maxHeld)
	}
	hs, err := f.held()
	if err != nil || len(hs) > maxHeld {
		t.Errorf("held after the poll: %d, %v", len(hs), err)
	}
	t.Logf("%d bundles in %v", n, time.Since(start))
}
