// Package sigstoretest makes Sigstore bundles and trusted roots offline,
// with sigstore-go's virtual Sigstore, for tests. Only tests import it.
package sigstoretest

import (
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"google.golang.org/protobuf/encoding/protojson"
)

// BundleFor signs artifact as identity/issuer with a virtual Sigstore and
// returns the .sigstore.json bytes cosign sign-blob would write.
func BundleFor(t testing.TB, vs *ca.VirtualSigstore, identity, issuer string, artifact []byte) []byte {
	t.Helper()
	e, err := vs.Sign(identity, issuer, artifact)
	if err != nil {
		t.Fatal(err)
	}
	vc, _ := e.VerificationContent()
	sc, _ := e.SignatureContent()
	ms := sc.(*bundle.MessageSignature)
	tles, _ := e.TlogEntries()
	tss, _ := e.Timestamps()
	tle := tles[0].TransparencyLogEntry()
	// Bundles from v0.2 on carry an inclusion proof with a checkpoint.
	ip, err := vs.GetInclusionProof(tle.CanonicalizedBody)
	if err != nil {
		t.Fatal(err)
	}
	var hashes [][]byte
	for _, h := range ip.Hashes {
		b, _ := hex.DecodeString(h)
		hashes = append(hashes, b)
	}
	rootHash, _ := hex.DecodeString(*ip.RootHash)
	tle.InclusionProof = &protorekor.InclusionProof{LogIndex: *ip.LogIndex, RootHash: rootHash, TreeSize: *ip.TreeSize, Hashes: hashes,
		Checkpoint: &protorekor.Checkpoint{Envelope: *ip.Checkpoint}}
	tle.LogIndex = *ip.LogIndex
	// The generated entry keeps its signed entry timestamp private: sign
	// the same payload again with the virtual Rekor key.
	logID, _ := vs.RekorLogID()
	set, err := vs.RekorSignPayload(tlog.RekorPayload{Body: base64.StdEncoding.EncodeToString(tle.CanonicalizedBody), IntegratedTime: tle.IntegratedTime, LogIndex: tle.LogIndex, LogID: logID})
	if err != nil {
		t.Fatal(err)
	}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
	tle.KindVersion = &protorekor.KindVersion{Kind: "hashedrekord", Version: "0.0.1"}
	var rfc []*protocommon.RFC3161SignedTimestamp
	for _, ts := range tss {
		rfc = append(rfc, &protocommon.RFC3161SignedTimestamp{SignedTimestamp: ts})
	}
	pb := &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:                   &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: vc.(*bundle.Certificate).Certificate().Raw}},
			TlogEntries:               []*protorekor.TransparencyLogEntry{tle},
			TimestampVerificationData: &protobundle.TimestampVerificationData{Rfc3161Timestamps: rfc},
		},
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: ms.Digest()},
			Signature:     ms.Signature(),
		}},
	}
	b, err := protojson.Marshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TrustedRootFile writes the virtual Sigstore's trusted root as a
// trusted_root.json, as an operator would be given.
func TrustedRootFile(t testing.TB, vs *ca.VirtualSigstore) string {
	t.Helper()
	// The virtual Sigstore keys its logs by hex ID but stores the hex text
	// as the ID; a trusted_root.json holds the raw ID bytes.
	rawIDs := func(m map[string]*root.TransparencyLog) map[string]*root.TransparencyLog {
		out := map[string]*root.TransparencyLog{}
		for k, l := range m {
			c := *l
			c.ID, _ = hex.DecodeString(k)
			out[k] = &c
		}
		return out
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vs.FulcioCertificateAuthorities(), rawIDs(vs.CTLogs()), vs.TimestampingAuthorities(), rawIDs(vs.RekorLogs()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
