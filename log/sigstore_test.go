package log

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/testing/ca"

	"github.com/CPAN-Security/cpan-tlog/client/sigstore"
	"github.com/CPAN-Security/cpan-tlog/internal/sigstoretest"
)

// TestAddSigstoreBundle logs a tarball and then its .sigstore.json with
// the bundle attached: a valid bundle records the identity, and bundles
// for another artifact or from an untrusted root are logged plain and
// reported.
func TestAddSigstoreBundle(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ca.NewVirtualSigstore()
	v, err := sigstore.LoadTrustedRoot(sigstoretest.TrustedRootFile(t, vs))
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, t.TempDir(), func(c *Config) { c.Sigstore = v })
	smp := samples(t)
	tarball := smp[0] // Try-Tiny
	s.mustAdd(tarball.request())
	content := func(x sample) []byte {
		b, _ := readSample(x.path)
		return b
	}
	const issuer = "https://token.actions.githubusercontent.com"
	addBundle := func(path string, bundle []byte) (int, string) {
		sum := sha256.Sum256(bundle)
		body := fmt.Sprintf(`{"path":%q,"size":%d,"sha256":"%x","uploader":"ETHER","time":"2024-01-02T03:04:06Z","bundle":%q}`, path, len(bundle), sum, base64.StdEncoding.EncodeToString(bundle))
		code, b := s.add(body)
		return code, string(b)
	}
	good := sigstoretest.BundleFor(t, vs, "ether@example.org", issuer, content(tarball))
	code, body := addBundle(tarball.path+".sigstore.json", good)
	if code != 200 || !strings.Contains(body, "verified: ether@example.org") {
		t.Fatalf("valid bundle: %d %s", code, body)
	}
	recs, _ := s.log.History(tarball.path + ".sigstore.json")
	if len(recs) != 1 || recs[0].Entry.Sigstore == nil || recs[0].Entry.Sigstore.SAN != "ether@example.org" || recs[0].Entry.Sigstore.ArtifactSHA256 != sha256.Sum256(content(tarball)) ||
		!strings.Contains(string(recs[0].Leaf), "\nsigstore-issuer "+issuer+"\n") {
		t.Errorf("logged entry: %+v\n%s", recs, recs[0].Leaf)
	}
	for name, c := range map[string]struct {
		target sample
		bundle []byte
		want   string
	}{
		"wrong artifact":  {smp[1], sigstoretest.BundleFor(t, vs, "a@example.org", issuer, []byte("something else")), "does not verify"},
		"untrusted root":  {smp[2], sigstoretest.BundleFor(t, other, "a@example.org", issuer, content(smp[2])), "does not verify"},
		"sibling unknown": {sample{path: "authors/id/N/NO/NOBODY/Nothing-1.0.tar.gz"}, good, "not logged"},
	} {
		if c.target.size > 0 {
			s.mustAdd(c.target.request())
		}
		code, body := addBundle(c.target.path+".sigstore.json", c.bundle)
		if code != 200 || !strings.Contains(body, "not verified") || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s", name, code, body)
			continue
		}
		recs, _ := s.log.History(c.target.path + ".sigstore.json")
		if len(recs) != 1 || recs[0].Entry.Sigstore != nil {
			t.Errorf("%s: not logged plain: %+v", name, recs)
		}
	}
	// The bundle field must be the file described.
	sum := sha256.Sum256([]byte("other"))
	body2 := fmt.Sprintf(`{"path":%q,"size":5,"sha256":"%x","uploader":"ETHER","time":"2024-01-02T03:04:06Z","bundle":%q}`, "authors/id/E/ET/ETHER/X.tar.gz.sigstore.json", sum, base64.StdEncoding.EncodeToString(good))
	if code, b := s.add(body2); code != 200 || !strings.Contains(string(b), "not the file described") {
		t.Errorf("mismatched bundle field: %d %s", code, b)
	}
}
