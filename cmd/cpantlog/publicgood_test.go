package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/CPAN-Security/cpan-tlog/client/sigstore"
	"github.com/CPAN-Security/cpan-tlog/internal/sigstoretest"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
)

// TestVerifyIdentityPublicGood (#38): cpantlog verify --identity-* on a
// real public-good bundle (sigstore-conformance's v0.3 happy path, signing
// a.txt) logged next to the file it signs, checked against
// sigstore/root-signing's trusted root: the certificate's identity is
// accepted and printed; another SAN, issuer or repository exits 1 naming
// the difference; --identity-repo alone is a usage error (2).
func TestVerifyIdentityPublicGood(t *testing.T) {
	c := sigstoretest.PublicGood(t, "happy-path-v0.3")
	sv, err := sigstore.LoadTrustedRoot(c.TrustedRoot)
	if err != nil {
		t.Fatal(err)
	}
	tl := startLogWith(t, tlog.Config{DataDir: t.TempDir(), Sigstore: sv})
	const path = "authors/id/A/AU/AUTHOR/Foo-1.0.tar.gz"
	local := filepath.Join(t.TempDir(), filepath.FromSlash(path))
	os.MkdirAll(filepath.Dir(local), 0o755)
	if err := os.WriteFile(local, c.Artifact, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(local+sigstore.BundleSuffix, c.Bundle, 0o644); err != nil {
		t.Fatal(err)
	}
	tl.add(t, path, c.Artifact, "2024-01-02T03:04:05Z")
	tl.add(t, path+sigstore.BundleSuffix, c.Bundle, "2024-01-02T03:04:06Z")
	policy := writePolicy(t, fmt.Sprintf("log %s %s\nquorum none\n", tl.log.VerifierKey(), tl.url))
	common := []string{"verify", local, "--policy", policy, "--state", t.TempDir(), "--sigstore-trusted-root", c.TrustedRoot}
	const iss, san, repo = sigstoretest.PublicGoodIssuer, sigstoretest.PublicGoodSAN, sigstoretest.PublicGoodRepo

	code, out := cli(t, append(common, "--identity-issuer", iss, "--identity-san", san, "--identity-repo", repo)...)
	if code != 0 || !strings.Contains(out, "signed by "+san+" (issuer "+iss+"), repository "+repo) {
		t.Fatalf("the certificate's identity: exit %d\n%s", code, out)
	}
	evil := strings.Replace(san, "refs/heads/main", "refs/heads/evil", 1)
	for name, tc := range map[string]struct {
		flags []string
		want  string
	}{
		"other SAN":    {[]string{"--identity-issuer", iss, "--identity-san", evil}, "refs/heads/evil"},
		"other issuer": {[]string{"--identity-issuer", "https://accounts.google.com", "--identity-san", san}, "accounts.google.com"},
		"other repo":   {[]string{"--identity-issuer", iss, "--identity-san", san, "--identity-repo", "https://github.com/ether/Try-Tiny"}, `source repository "` + repo + `", want "https://github.com/ether/Try-Tiny"`},
	} {
		code, out := cli(t, append(common, tc.flags...)...)
		if code != 1 || !strings.Contains(out, "does not match the policy") || !strings.Contains(out, tc.want) {
			t.Errorf("%s: exit %d, want 1 naming %q\n%s", name, code, tc.want, out)
		}
	}
	if code, out := cli(t, append(common, "--identity-repo", repo)...); code != 2 || !strings.Contains(out, "needs --identity-issuer and --identity-san") {
		t.Errorf("--identity-repo alone: exit %d, want 2\n%s", code, out)
	}

	// An altered real bundle (another artifact's): logged, but it does
	// not verify, whatever identity is asked for.
	bad := sigstoretest.PublicGood(t, "message-digest-mismatch_fail")
	other := filepath.Join(filepath.Dir(local), "Bar-1.0.tar.gz")
	os.WriteFile(other, bad.Artifact, 0o644)
	os.WriteFile(other+sigstore.BundleSuffix, bad.Bundle, 0o644)
	tl.add(t, "authors/id/A/AU/AUTHOR/Bar-1.0.tar.gz", bad.Artifact, "2024-01-02T03:04:07Z")
	tl.add(t, "authors/id/A/AU/AUTHOR/Bar-1.0.tar.gz"+sigstore.BundleSuffix, bad.Bundle, "2024-01-02T03:04:08Z")
	common[1] = other
	if code, out := cli(t, append(common, "--identity-issuer", iss, "--identity-san", san)...); code != 1 || !strings.Contains(out, "does not verify") {
		t.Errorf("an altered bundle: exit %d, want 1 saying it does not verify\n%s", code, out)
	}
}
