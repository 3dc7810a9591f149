// Package sigstore verifies the Sigstore bundles CPAN authors upload next
// to their releases (Foo-1.0.tar.gz.sigstore.json, from cosign sign-blob)
// with sigstore-go, offline, against a trusted root file, and turns the
// verified certificate into the identity lines of a cpan-tlog entry.
//
// The log uses it to annotate a bundle's upload; the client uses it to
// check a bundle itself, with an identity policy, instead of trusting the
// log's annotation.
package sigstore

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// BundleSuffix names a bundle after the file it signs.
const BundleSuffix = ".sigstore.json"

// MaxBundleSize bounds a bundle; real ones are a few KiB.
const MaxBundleSize = 1 << 20

// Verifier checks bundles against one trusted root.
type Verifier struct {
	trusted root.TrustedMaterial
}

// NewVerifier uses trusted material directly (tests use a virtual Sigstore).
func NewVerifier(tm root.TrustedMaterial) *Verifier { return &Verifier{trusted: tm} }

// LoadTrustedRoot reads a trusted_root.json (Sigstore's TUF target, or
// `cosign trusted-root create` output). Nothing is fetched: refresh the
// file out of band (see README) to follow key rotations.
func LoadTrustedRoot(path string) (*Verifier, error) {
	tr, err := root.NewTrustedRootFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("sigstore trusted root %s: %w", path, err)
	}
	return &Verifier{trusted: tr}, nil
}

// Policy is the identity a client demands; empty fields match anything,
// but Issuer and one of SAN or SANRegexp are required.
type Policy struct {
	Issuer     string
	SAN        string
	SANRegexp  string
	SourceRepo string // the certificate's source repository URI, when set
}

// ErrPolicy means the bundle verified but its identity is not the one the
// policy demands.
var ErrPolicy = errors.New("sigstore identity does not match the policy")

// Verify checks that bundleJSON is a valid Sigstore bundle over the
// artifact with this SHA-256, logged in a trusted Rekor, from a trusted
// Fulcio certificate, and, with a policy, that its identity matches. It
// returns the identity for the entry's sigstore-* lines.
func (v *Verifier) Verify(bundleJSON []byte, artifactSHA256 [32]byte, p *Policy) (*entry.Sigstore, error) {
	if len(bundleJSON) > MaxBundleSize {
		return nil, fmt.Errorf("bundle of %d bytes is larger than %d", len(bundleJSON), MaxBundleSize)
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(bundleJSON); err != nil {
		return nil, fmt.Errorf("not a Sigstore bundle: %w", err)
	}
	sv, err := verify.NewVerifier(v.trusted, verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1))
	if err != nil {
		return nil, err
	}
	identity := verify.WithoutIdentitiesUnsafe()
	if p != nil {
		if p.Issuer == "" || (p.SAN == "" && p.SANRegexp == "") {
			return nil, errors.New("an identity policy needs an issuer and a SAN (or SAN regexp)")
		}
		id, err := verify.NewShortCertificateIdentity(p.Issuer, "", p.SAN, p.SANRegexp)
		if err != nil {
			return nil, err
		}
		identity = verify.WithCertificateIdentity(id)
	}
	res, err := sv.Verify(&b, verify.NewPolicy(verify.WithArtifactDigest("sha256", artifactSHA256[:]), identity))
	if err != nil {
		if p != nil && isIdentityError(err) {
			return nil, fmt.Errorf("%w: %v", ErrPolicy, err)
		}
		return nil, fmt.Errorf("sigstore bundle does not verify: %w", err)
	}
	if res.Signature == nil || res.Signature.Certificate == nil {
		return nil, errors.New("bundle is signed with a key, not a Fulcio certificate: no identity to record")
	}
	c := res.Signature.Certificate
	if p != nil && p.SourceRepo != "" && c.Extensions.SourceRepositoryURI != p.SourceRepo {
		return nil, fmt.Errorf("%w: source repository %q, want %q", ErrPolicy, c.Extensions.SourceRepositoryURI, p.SourceRepo)
	}
	s := &entry.Sigstore{
		ArtifactSHA256: artifactSHA256,
		Issuer:         c.Extensions.Issuer,
		SAN:            c.SubjectAlternativeName,
		SourceRepo:     c.Extensions.SourceRepositoryURI,
		BuildConfig:    c.Extensions.BuildConfigURI,
	}
	if tles, err := b.TlogEntries(); err == nil && len(tles) > 0 {
		i := uint64(tles[0].LogIndex())
		s.RekorIndex = &i
		// Which log the index counts in: the entry's log key ID, which
		// verification matched against the trusted root's Rekor logs.
		if id := tles[0].LogKeyID(); id != "" {
			s.RekorLog = hex.EncodeToString([]byte(id))
		}
	}
	return s, nil
}

func isIdentityError(err error) bool {
	var e *verify.ErrNoMatchingCertificateIdentity
	return errors.As(err, &e)
}

// VerifyLogged checks the Sigstore bundle of file itself, instead of
// trusting the log's annotation: when lv is online, the bundle file must be
// logged too (at file's path plus BundleSuffix); then it must verify
// against the trusted root, sign file's SHA-256, and carry the identity the
// policy demands. (It lives here, not in client, so that what imports
// client without checking bundles, the monitor, does not carry Sigstore.)
func (v *Verifier) VerifyLogged(ctx context.Context, lv *client.Verifier, file client.File, bundle []byte, p *Policy) (*entry.Sigstore, error) {
	if lv.Fetcher != nil {
		bf, _ := client.HashReader(bytes.NewReader(bundle), file.Path+BundleSuffix)
		if _, err := lv.VerifyFile(ctx, bf); err != nil {
			return nil, fmt.Errorf("the Sigstore bundle itself: %w", err)
		}
	}
	s, err := v.Verify(bundle, file.SHA256, p)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", client.ErrNotVerified, file.Path, err)
	}
	return s, nil
}
