package sigstore

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/CPAN-Security/cpan-tlog/internal/sigstoretest"
)

// publicGoodRefusals says why sigstore-go v1.3.0 refuses each altered
// case of testdata/sigstore-public-good (and the real v0.1 bundle without
// a checkpoint): each refusal must name its reason.
var publicGoodRefusals = map[string]string{
	"bundle-from-wrong-instance_fail":          "not enough verified log entries",
	"bundle-with-root-cert_fail":               "inclusion proof missing required checkpoint",
	"checkpoint-wrong-roothash_fail":           "proof root hash does not match signed tree head",
	"dsse-invalid-sig_fail":                    "transparency log signature does not match",
	"dsse-mismatch-envelope_fail":              "transparency log signature does not match",
	"dsse-mismatch-sig_fail":                   "transparency log signature does not match",
	"inclusion-proof-corrupted-hash_fail":      "does not match expected root",
	"incorrect-public-key_fail":                "invalid signature",
	"invalid-checkpoint-signature_fail":        "signature on checkpoint did not verify",
	"invalid-inclusion-proof_fail":             "inclusion proof missing required checkpoint",
	"message-digest-mismatch_fail":             "does not match artifact",
	"rekor2-dsse-mismatch-sig_fail":            "does not match expected root",
	"set-invalid-signature_fail":               "not enough verified log entries",
	"signature-mismatch_fail":                  "transparency log signature does not match",
	"wrong-hashedrekord-entry_fail":            "transparency log signature does not match",
	"wrong-material_fail":                      "artifact does not match digest",
	"python-3.12.5-v0.1-no-checkpoint_refused": "inclusion proof missing required checkpoint",
}

// TestPublicGoodBundles (#38): real bundles from the public-good Sigstore
// (sigstore-conformance v0.1, v0.2, v0.3, DSSE in-toto, Rekor v2) verify
// against sigstore/root-signing's trusted root, and the identity recorded
// is the one in the certificate (read with crypto/x509, not sigstore-go);
// each altered case is refused with its reason.
func TestPublicGoodBundles(t *testing.T) {
	var good int
	for _, c := range sigstoretest.PublicGoodCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			v, err := LoadTrustedRoot(c.TrustedRoot)
			if err != nil {
				t.Fatal(err)
			}
			s, err := v.Verify(c.Bundle, c.Digest, nil)
			if c.Fail {
				want, ok := publicGoodRefusals[c.Name]
				if !ok {
					t.Fatalf("no expected refusal for %s (%s): add one", c.Name, c.Why)
				}
				if err == nil || s != nil || !strings.Contains(err.Error(), want) {
					t.Errorf("refused with %v (identity %+v), want an error naming %q (%s)", err, s, want, c.Why)
				}
				return
			}
			if err != nil {
				t.Fatalf("a good public-good bundle: %v", err)
			}
			good++
			want := sigstoretest.ReadCertIdentity(t, c.Bundle)
			got := sigstoretest.CertIdentity{Issuer: s.Issuer, SAN: s.SAN, SourceRepo: s.SourceRepo, BuildConfig: s.BuildConfig}
			if got != want || want.Issuer != sigstoretest.PublicGoodIssuer || want.SAN != sigstoretest.PublicGoodSAN || want.SourceRepo != sigstoretest.PublicGoodRepo {
				t.Errorf("recorded identity %+v, certificate says %+v", got, want)
			}
			if s.ArtifactSHA256 != c.Digest || s.RekorIndex == nil || !slices.Contains(rekorLogIDs(t, c.TrustedRoot), s.RekorLog) {
				t.Errorf("artifact %x (want %x), Rekor index %v in log %q (want one of %v)", s.ArtifactSHA256, c.Digest, s.RekorIndex, s.RekorLog, rekorLogIDs(t, c.TrustedRoot))
			}
			// Which log (#38, defect 3): the bundle's own log ID, which the
			// trusted root names as Rekor v1 or as a Rekor v2 shard.
			index, logID := bundleLogEntry(t, c.Bundle)
			url := rekorLogURLs(t, c.TrustedRoot)[s.RekorLog]
			wantV2 := strings.HasPrefix(c.Name, "rekor2-")
			if s.RekorIndex != nil && *s.RekorIndex != index || s.RekorLog != logID || strings.Contains(url, "://log20") != wantV2 {
				t.Errorf("recorded index %v in log %s (%s); the bundle says %d in %s; a Rekor v2 shard: %v", s.RekorIndex, s.RekorLog, url, index, logID, wantV2)
			}
		})
	}
	if good < 6 {
		t.Errorf("%d good cases verified, want the v0.1, v0.2, v0.3, new media type, DSSE and Rekor v2 ones", good)
	}
}

// bundleLogEntry reads the first transparency log entry's index and log
// ID (hex) from a bundle's JSON.
func bundleLogEntry(t *testing.T, bundle []byte) (uint64, string) {
	t.Helper()
	var b struct {
		VerificationMaterial struct {
			TlogEntries []struct {
				LogIndex string `json:"logIndex"`
				LogID    struct {
					KeyID string `json:"keyId"`
				} `json:"logId"`
			} `json:"tlogEntries"`
		} `json:"verificationMaterial"`
	}
	if err := json.Unmarshal(bundle, &b); err != nil || len(b.VerificationMaterial.TlogEntries) == 0 {
		t.Fatalf("bundle's log entries: %v", err)
	}
	e := b.VerificationMaterial.TlogEntries[0]
	i, err := strconv.ParseUint(e.LogIndex, 10, 64)
	id, err2 := base64.StdEncoding.DecodeString(e.LogID.KeyID)
	if err != nil || err2 != nil {
		t.Fatalf("bundle's log entry %+v: %v %v", e, err, err2)
	}
	return i, hex.EncodeToString(id)
}

// rekorLogURLs maps a trusted_root.json's Rekor log IDs (hex) to their URLs.
func rekorLogURLs(t *testing.T, file string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var tr struct {
		Tlogs []struct {
			BaseURL string `json:"baseUrl"`
			LogID   struct {
				KeyID string `json:"keyId"`
			} `json:"logId"`
		} `json:"tlogs"`
	}
	if err := json.Unmarshal(raw, &tr); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range tr.Tlogs {
		id, _ := base64.StdEncoding.DecodeString(l.LogID.KeyID)
		out[hex.EncodeToString(id)] = l.BaseURL
	}
	return out
}

// TestPublicGoodPolicy: an identity policy on a real bundle takes the
// certificate's identity and refuses another one naming what differs.
func TestPublicGoodPolicy(t *testing.T) {
	c := sigstoretest.PublicGood(t, "happy-path-v0.3")
	v, err := LoadTrustedRoot(c.TrustedRoot)
	if err != nil {
		t.Fatal(err)
	}
	const iss, san, repo = sigstoretest.PublicGoodIssuer, sigstoretest.PublicGoodSAN, sigstoretest.PublicGoodRepo
	if _, err := v.Verify(c.Bundle, c.Digest, &Policy{Issuer: iss, SAN: san, SourceRepo: repo}); err != nil {
		t.Errorf("the certificate's identity: %v", err)
	}
	if _, err := v.Verify(c.Bundle, c.Digest, &Policy{Issuer: iss, SANRegexp: `^https://github\.com/sigstore-conformance/`}); err != nil {
		t.Errorf("a SAN regexp matching it: %v", err)
	}
	for name, c2 := range map[string]struct {
		p    Policy
		want string
	}{
		"other SAN":    {Policy{Issuer: iss, SAN: strings.Replace(san, "refs/heads/main", "refs/heads/evil", 1)}, "refs/heads/evil"},
		"other issuer": {Policy{Issuer: "https://accounts.google.com", SAN: san}, "accounts.google.com"},
		"other repo":   {Policy{Issuer: iss, SAN: san, SourceRepo: "https://github.com/ether/Try-Tiny"}, `source repository "` + repo + `", want "https://github.com/ether/Try-Tiny"`},
	} {
		_, err := v.Verify(c.Bundle, c.Digest, &c2.p)
		if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), c2.want) {
			t.Errorf("%s: %v, want ErrPolicy naming %q", name, err, c2.want)
		}
	}
}
