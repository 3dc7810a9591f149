package sigstore

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"

	"github.com/CPAN-Security/cpan-tlog/internal/sigstoretest"
)

func TestVerify(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ca.NewVirtualSigstore()
	artifact := []byte("Try-Tiny-0.31.tar.gz contents")
	sum := sha256.Sum256(artifact)
	const issuer = "https://token.actions.githubusercontent.com"
	good := sigstoretest.BundleFor(t, vs, "ether@example.org", issuer, artifact)
	v, err := LoadTrustedRoot(sigstoretest.TrustedRootFile(t, vs))
	if err != nil {
		t.Fatal(err)
	}
	s, err := v.Verify(good, sum, nil)
	if err != nil {
		t.Fatalf("valid bundle: %v", err)
	}
	if s.Issuer != issuer || s.SAN != "ether@example.org" || s.ArtifactSHA256 != sum || s.RekorIndex == nil {
		t.Errorf("identity %+v", s)
	}
	if _, err := v.Verify(good, sum, &Policy{Issuer: issuer, SAN: "ether@example.org"}); err != nil {
		t.Errorf("matching policy: %v", err)
	}
	for name, c := range map[string]struct {
		bundle []byte
		sum    [32]byte
		policy *Policy
		want   string
	}{
		"wrong artifact": {good, sha256.Sum256([]byte("other")), nil, "does not verify"},
		"untrusted root": {sigstoretest.BundleFor(t, other, "ether@example.org", issuer, artifact), sum, nil, "does not verify"},
		"wrong identity": {good, sum, &Policy{Issuer: issuer, SAN: "mallory@example.org"}, ErrPolicy.Error()},
		"wrong issuer":   {good, sum, &Policy{Issuer: "https://accounts.google.com", SAN: "ether@example.org"}, ErrPolicy.Error()},
		"wrong repo":     {good, sum, &Policy{Issuer: issuer, SAN: "ether@example.org", SourceRepo: "https://github.com/x/y"}, ErrPolicy.Error()},
		"not a bundle":   {[]byte(`{"mediaType":"x"}`), sum, nil, "not a Sigstore bundle"},
		"garbage":        {[]byte("garbage"), sum, nil, "not a Sigstore bundle"},
		"policy no SAN":  {good, sum, &Policy{Issuer: issuer}, "needs an issuer"},
	} {
		_, err := v.Verify(c.bundle, c.sum, c.policy)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, c.want)
		}
		if c.want == ErrPolicy.Error() && !errors.Is(err, ErrPolicy) {
			t.Errorf("%s: %v does not wrap ErrPolicy", name, err)
		}
	}
}

// TestPublicGoodFixture verifies a real bundle from the public-good
// Sigstore instance shipped in sigstore-go's testing data, with its trusted
// root: the same code path as production bundles.
func TestPublicGoodFixture(t *testing.T) {
	dir := filepath.Join(moduleDir(t, "github.com/sigstore/sigstore-go"), "pkg", "testing", "data")
	raw, err := os.ReadFile(filepath.Join(dir, "bundles", "othername.sigstore.json"))
	if err != nil {
		t.Skipf("fixture not available: %v", err)
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(raw); err != nil {
		t.Fatal(err)
	}
	sc, err := b.SignatureContent()
	if err != nil {
		t.Fatal(err)
	}
	ms, ok := sc.(*bundle.MessageSignature)
	if !ok {
		t.Skip("fixture is not a message signature")
	}
	var sum [32]byte
	copy(sum[:], ms.Digest())
	v, err := LoadTrustedRoot(filepath.Join(dir, "trusted-roots", "scaffolding.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := v.Verify(raw, sum, nil)
	if err != nil {
		t.Skipf("fixture does not verify offline with its root here: %v", err)
	}
	if s.Issuer == "" || s.SAN == "" {
		t.Errorf("identity %+v", s)
	}
	if ids := rekorLogIDs(t, filepath.Join(dir, "trusted-roots", "scaffolding.json")); s.RekorIndex == nil || !slices.Contains(ids, s.RekorLog) {
		t.Errorf("a real bundle's Rekor index %v recorded in log %q; want one of its trusted root's: %v", s.RekorIndex, s.RekorLog, ids)
	}
}
