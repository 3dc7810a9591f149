package sigstore

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/testing/ca"

	"github.com/CPAN-Security/cpan-tlog/internal/sigstoretest"
)

// TestRecordsWhichRekorLog (#38): the identity recorded names the Rekor
// log its index counts in (sigstore-rekor-log), as the trusted root lists
// that log: an index alone does not say whether it is Rekor v1's or a v2
// shard's.
func TestRecordsWhichRekorLog(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	rootFile := sigstoretest.TrustedRootFile(t, vs)
	v, err := LoadTrustedRoot(rootFile)
	if err != nil {
		t.Fatal(err)
	}
	artifact := []byte("Try-Tiny-0.31.tar.gz")
	s, err := v.Verify(sigstoretest.BundleFor(t, vs, "ether@example.org", "https://issuer.example", artifact), sha256.Sum256(artifact), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.RekorIndex == nil || s.RekorLog == "" || s.RekorLog != rekorLogIDs(t, rootFile)[0] {
		t.Errorf("recorded Rekor index %v in log %q; want the trusted root's Rekor log %v", s.RekorIndex, s.RekorLog, rekorLogIDs(t, rootFile))
	}
}

// rekorLogIDs reads the key IDs of a trusted_root.json's Rekor logs, in hex.
func rekorLogIDs(t *testing.T, file string) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Clean(file))
	if err != nil {
		t.Fatal(err)
	}
	var tr struct {
		Tlogs []struct {
			LogID struct {
				KeyID string `json:"keyId"`
			} `json:"logId"`
		} `json:"tlogs"`
	}
	if err := json.Unmarshal(raw, &tr); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range tr.Tlogs {
		id, err := base64.StdEncoding.DecodeString(l.LogID.KeyID)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, hex.EncodeToString(id))
	}
	if len(out) == 0 {
		t.Fatal("the trusted root lists no Rekor log")
	}
	return out
}
