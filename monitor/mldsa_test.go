package monitor

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
)

// TestMonitorCountsMLDSA44Cosignature: a real log cosigned by a real
// witness keyed ML-DSA-44 (pq) and one keyed Ed25519 (w1), and a policy
// that needs both. The monitor trusts the log's checkpoint and audits the
// entries; served through a front that flips pq's cosignature, the
// checkpoint is not trusted (checkpoint-untrusted, naming witness pq) and
// nothing is audited from it.
func TestMonitorCountsMLDSA44Cosignature(t *testing.T) {
	tl, policyText := testlog.StartMLDSA44Pair(t)
	smp := samples(t)
	for _, s := range smp[:3] {
		tl.Add(t, s.path, s.content, "2024-01-02T03:04:05Z", true)
	}

	round := func(logURL string) (run, uint64) {
		t.Helper()
		p, err := client.ParsePolicy([]byte(policyText(logURL)))
		if err != nil {
			t.Fatal(err)
		}
		m, err := New(Config{Policy: p, StateDir: t.TempDir(), NoWitnessPeers: true, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		err = m.Sync(context.Background())
		fs, derr := m.Deliver(context.Background(), WriterSink{W: io.Discard})
		if derr != nil {
			t.Fatal(derr)
		}
		return run{findings: fs, err: err}, m.trustedSize()
	}
	if r, size := round(tl.URL); r.err != nil || len(r.findings) != 0 || size != 3 {
		t.Fatalf("the log cosigned by w1 and pq: %v, findings %q, trusted size %d; want no finding and size 3", r.err, r.kinds(), size)
	}

	front := testlog.FlippingFront(t, tl.URL, "pq.example")
	r, size := round(front)
	if r.kinds() != KindCheckpointUntrusted || size != 0 || !strings.Contains(r.findings[0].Message, "witness pq") {
		t.Errorf("pq's cosignature flipped: %v, findings %q (%v), trusted size %d; want %s naming witness pq and nothing trusted", r.err, r.kinds(), r.findings, size, KindCheckpointUntrusted)
	}
}
