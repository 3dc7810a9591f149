package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/testing/ca"

	"github.com/CPAN-Security/cpan-tlog/client/sigstore"
	"github.com/CPAN-Security/cpan-tlog/internal/sigstoretest"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
)

// TestVerifyIdentity (sigstore.VerifyLogged): the client re-verifies a tarball's Sigstore bundle
// itself against an identity policy.
func TestVerifyIdentity(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	rootFile := sigstoretest.TrustedRootFile(t, vs)
	sv, _ := sigstore.LoadTrustedRoot(rootFile)
	tl := startLogWith(t, tlog.Config{DataDir: t.TempDir(), Sigstore: sv})
	smp := samples(t)
	tt := smp[0]
	const issuer = "https://token.actions.githubusercontent.com"
	bundle := sigstoretest.BundleFor(t, vs, "ether@example.org", issuer, tt.content)
	tl.add(t, tt.path, tt.content, "2024-01-02T03:04:05Z")
	tl.add(t, tt.path+".sigstore.json", bundle, "2024-01-02T03:04:06Z")
	os.WriteFile(tt.local+".sigstore.json", bundle, 0o644)
	policy := writePolicy(t, fmt.Sprintf("log %s %s\nquorum none\n", tl.log.VerifierKey(), tl.url))
	common := []string{"--policy", policy, "--state", t.TempDir(), "--sigstore-trusted-root", rootFile, "--identity-issuer", issuer}

	code, out := cli(t, append([]string{"verify", tt.local, "--identity-san", "ether@example.org"}, common...)...)
	if code != 0 || !strings.Contains(out, "signed by ether@example.org") {
		t.Fatalf("matching identity: exit %d\n%s", code, out)
	}
	code, out = cli(t, append([]string{"verify", tt.local, "--identity-san", "mallory@example.org"}, common...)...)
	if code != 1 || !strings.Contains(out, "does not match the policy") {
		t.Errorf("other identity: exit %d\n%s", code, out)
	}
	// A bundle the log never saw is refused, even if it verifies.
	other := sigstoretest.BundleFor(t, vs, "ether@example.org", issuer, tt.content)
	ob := filepath.Join(t.TempDir(), "other.sigstore.json")
	os.WriteFile(ob, other, 0o644)
	code, out = cli(t, append([]string{"verify", tt.local, "--identity-san", "ether@example.org", "--bundle", ob}, common...)...)
	if code != 1 || !strings.Contains(out, "bundle itself") {
		t.Errorf("unlogged bundle: exit %d\n%s", code, out)
	}
	if code, out := cli(t, "verify", tt.local, "--policy", policy, "--state", t.TempDir(), "--identity-issuer", issuer, "--identity-san", "x@example.org"); code != 2 || !strings.Contains(out, "--sigstore-trusted-root") {
		t.Errorf("identity without a trusted root: exit %d\n%s", code, out)
	}
	// An incomplete identity policy is a usage error (exit 2), said before
	// the file is verified: it was exit 1, "not verified", after it.
	for _, flags := range [][]string{
		{"--identity-repo", "https://github.com/ether/Try-Tiny"},
		{"--identity-san", "ether@example.org"},
	} {
		args := append([]string{"verify", tt.local, "--policy", policy, "--state", t.TempDir(), "--sigstore-trusted-root", rootFile}, flags...)
		if code, out := cli(t, args...); code != 2 || !strings.Contains(out, "needs --identity-issuer and --identity-san") || strings.Contains(out, "verified") {
			t.Errorf("%v alone: exit %d, want 2 naming what is missing, before any verification\n%s", flags, code, out)
		}
	}
}
