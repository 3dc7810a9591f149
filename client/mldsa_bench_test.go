package client

import (
	"testing"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// BenchmarkCosignature: the cost of one witness cosignature on a
// checkpoint, made and checked as the witness and every Go verifier do
// (transparency-dev/formats), Ed25519 (cosignature/v1, type 0x04) against
// ML-DSA-44 (type 0x06); and the size of a checkpoint signed by the log
// and one witness of each kind. BENCHMARKS.md has the figures.
//
//	go test ./client -run '^$' -bench Cosignature -benchtime 2s
func BenchmarkCosignature(b *testing.B) {
	k := newMLDSAKeys(b)
	msg := flog.Checkpoint{Origin: "localhost/cpan-tlog", Size: 123456789, Hash: rootOf(7, "")}.Marshal() // the root need not be the size's
	p := k.policy(b, "both")
	for _, c := range []struct {
		name   string
		signer note.Signer
		v      note.Verifier
	}{
		{"Ed25519", k.witnessSigners[0], p.Witnesses[0].Verifier},
		{"ML-DSA-44", k.pqSigner, p.Witnesses[1].Verifier},
	} {
		sig, err := c.signer.Sign(msg)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name+"/sign", func(b *testing.B) {
			for b.Loop() {
				if _, err := c.signer.Sign(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/verify", func(b *testing.B) {
			for b.Loop() {
				if !c.v.Verify(msg, sig) {
					b.Fatal("does not verify")
				}
			}
			// The signature line: "— name base64(key ID || signature)\n".
			n, _ := note.Sign(&note.Note{Text: string(msg)}, c.signer)
			b.ReportMetric(float64(len(n)-len(msg)-1), "line-bytes")
		})
	}
	// A checkpoint of a large tree, signed by the log and the witnesses.
	signed := func(signers ...note.Signer) []byte {
		n, err := note.Sign(&note.Note{Text: string(msg)}, append([]note.Signer{k.logSigner}, signers...)...)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	b.Run("checkpoint-log+Ed25519+ML-DSA-44", func(b *testing.B) {
		cp := signed(k.witnessSigners[0], k.pqSigner)
		for b.Loop() {
			if _, err := p.VerifyCheckpoint(cp); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(cp)), "bytes")
	})
	b.Run("checkpoint-log+2xEd25519", func(b *testing.B) {
		cp := signed(k.witnessSigners[0], k.witnessSigners[1])
		p2 := k.keys.policy(b, "both")
		for b.Loop() {
			if _, err := p2.VerifyCheckpoint(cp); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(cp)), "bytes")
	})
}

// BenchmarkCosignatureRatio makes and checks one cosignature of each kind
// per iteration, interleaved, timing each: on a shared, loaded machine the
// ratios stay meaningful where separate benchmarks drift apart.
//
//	go test ./client -run '^$' -bench CosignatureRatio -benchtime 3000x
func BenchmarkCosignatureRatio(b *testing.B) {
	k := newMLDSAKeys(b)
	msg := flog.Checkpoint{Origin: "localhost/cpan-tlog", Size: 123456789, Hash: rootOf(7, "")}.Marshal()
	p := k.policy(b, "both")
	ed, pq := p.Witnesses[0].Verifier, p.Witnesses[1].Verifier
	var t [4]time.Duration // Ed25519 sign, verify; ML-DSA-44 sign, verify
	timed := func(i int, f func() bool) {
		start := time.Now()
		if !f() {
			b.Fatal("failed")
		}
		t[i] += time.Since(start)
	}
	for b.Loop() {
		var edSig, pqSig []byte
		timed(0, func() bool { s, err := k.witnessSigners[0].Sign(msg); edSig = s; return err == nil })
		timed(2, func() bool { s, err := k.pqSigner.Sign(msg); pqSig = s; return err == nil })
		timed(1, func() bool { return ed.Verify(msg, edSig) })
		timed(3, func() bool { return pq.Verify(msg, pqSig) })
	}
	n := float64(b.N)
	b.ReportMetric(float64(t[0].Nanoseconds())/n, "ed25519-sign-ns")
	b.ReportMetric(float64(t[1].Nanoseconds())/n, "ed25519-verify-ns")
	b.ReportMetric(float64(t[2].Nanoseconds())/n, "mldsa44-sign-ns")
	b.ReportMetric(float64(t[3].Nanoseconds())/n, "mldsa44-verify-ns")
	b.ReportMetric(float64(t[2])/float64(t[0]), "sign-ratio")
	b.ReportMetric(float64(t[3])/float64(t[1]), "verify-ratio")
}
