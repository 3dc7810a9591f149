package sigstoretest

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
)

// PublicGoodIssuer and PublicGoodSAN are the identity every good
// sigstore-conformance case was signed with (its README says so).
const (
	PublicGoodIssuer = "https://token.actions.githubusercontent.com"
	PublicGoodSAN    = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
	PublicGoodRepo   = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon"
)

// PublicGoodCase is one case of testdata/sigstore-public-good: real
// bundles a public Sigstore instance issued (see SOURCE.md there).
type PublicGoodCase struct {
	Name        string // the directory, as sigstore-conformance names it
	Bundle      []byte
	Artifact    []byte   // what the bundle signs (a.txt unless the case has its own); nil when only its digest is here
	Digest      [32]byte // the artifact's SHA-256
	TrustedRoot string   // the case's trusted_root.json, else the production one
	Fail        bool     // a case a verifier must refuse: altered ("_fail") or refused ("_refused")
	Refused     bool     // a real, unaltered bundle sigstore-go v1.3.0 refuses ("_refused")
	Why         string   // the case's README
}

// PublicGoodDir is testdata/sigstore-public-good, wherever the test runs.
func PublicGoodDir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot find the repository")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "sigstore-public-good")
}

// PublicGoodCases reads every case, sorted by name.
func PublicGoodCases(t testing.TB) []PublicGoodCase {
	t.Helper()
	dir := PublicGoodDir(t)
	def, err := os.ReadFile(filepath.Join(dir, "a.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []PublicGoodCase
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		d := filepath.Join(dir, e.Name())
		c := PublicGoodCase{Name: e.Name(), Artifact: def, TrustedRoot: filepath.Join(dir, "trusted_root.json"), Fail: strings.HasSuffix(e.Name(), "_fail"), Refused: strings.HasSuffix(e.Name(), "_refused")}
		c.Fail = c.Fail || c.Refused
		if c.Bundle, err = os.ReadFile(filepath.Join(d, "bundle.sigstore.json")); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(d, "artifact")); err == nil {
			c.Artifact = b
		}
		c.Digest = sha256.Sum256(c.Artifact)
		if h, err := os.ReadFile(filepath.Join(d, "digest")); err == nil {
			c.Artifact = nil
			if n, err := hex.Decode(c.Digest[:], bytes.TrimSpace(h)); err != nil || n != 32 {
				t.Fatalf("%s/digest: %v", e.Name(), err)
			}
		}
		if _, err := os.Stat(filepath.Join(d, "trusted_root.json")); err == nil {
			c.TrustedRoot = filepath.Join(d, "trusted_root.json")
		}
		why, _ := os.ReadFile(filepath.Join(d, "README"))
		c.Why = strings.TrimSpace(string(why))
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if len(out) < 10 {
		t.Fatalf("%s holds %d cases", dir, len(out))
	}
	return out
}

// PublicGood returns one case by name.
func PublicGood(t testing.TB, name string) PublicGoodCase {
	t.Helper()
	for _, c := range PublicGoodCases(t) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no public-good case %q", name)
	return PublicGoodCase{}
}

// CertIdentity is the identity in a bundle's signing certificate.
type CertIdentity struct{ Issuer, SAN, SourceRepo, BuildConfig string }

// Fulcio's certificate extensions (github.com/sigstore/fulcio
// docs/oid-info.md).
var (
	oidIssuerV1    = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	oidIssuerV2    = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}
	oidSourceRepo  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 12}
	oidBuildConfig = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 18}
)

// ReadCertIdentity reads the identity from a bundle's leaf certificate
// with encoding/json and crypto/x509 alone, not sigstore-go, so that a
// test compares what the log records with the certificate itself.
func ReadCertIdentity(t testing.TB, bundle []byte) CertIdentity {
	t.Helper()
	type raw struct {
		RawBytes string `json:"rawBytes"`
	}
	var b struct {
		VerificationMaterial struct {
			Chain *struct {
				Certificates []raw `json:"certificates"`
			} `json:"x509CertificateChain"`
			Certificate *raw `json:"certificate"`
		} `json:"verificationMaterial"`
	}
	if err := json.Unmarshal(bundle, &b); err != nil {
		t.Fatal(err)
	}
	var der string
	switch vm := b.VerificationMaterial; {
	case vm.Certificate != nil:
		der = vm.Certificate.RawBytes
	case vm.Chain != nil && len(vm.Chain.Certificates) > 0:
		der = vm.Chain.Certificates[0].RawBytes
	default:
		t.Fatal("the bundle carries no certificate")
	}
	d, err := base64.StdEncoding.DecodeString(der)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(d)
	if err != nil {
		t.Fatal(err)
	}
	var id CertIdentity
	switch {
	case len(cert.URIs) > 0:
		id.SAN = cert.URIs[0].String()
	case len(cert.EmailAddresses) > 0:
		id.SAN = cert.EmailAddresses[0]
	}
	for _, e := range cert.Extensions {
		var s string
		switch {
		case e.Id.Equal(oidIssuerV1):
			if id.Issuer == "" {
				id.Issuer = string(e.Value) // v1: the raw bytes
			}
		case e.Id.Equal(oidIssuerV2):
			if _, err := asn1.Unmarshal(e.Value, &s); err == nil {
				id.Issuer = s
			}
		case e.Id.Equal(oidSourceRepo):
			if _, err := asn1.Unmarshal(e.Value, &s); err == nil {
				id.SourceRepo = s
			}
		case e.Id.Equal(oidBuildConfig):
			if _, err := asn1.Unmarshal(e.Value, &s); err == nil {
				id.BuildConfig = s
			}
		}
	}
	if id.Issuer == "" || id.SAN == "" {
		t.Fatalf("certificate without an issuer or a SAN: %+v", id)
	}
	return id
}
