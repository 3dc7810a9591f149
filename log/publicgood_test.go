package log

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/CPAN-Security/cpan-tlog/client/sigstore"
	"github.com/CPAN-Security/cpan-tlog/internal/sigstoretest"
)

// TestLogRecordsPublicGoodIdentities (#38): the log, given
// sigstore/root-signing's trusted root, logs each real public-good bundle
// of testdata/sigstore-public-good after the file it signs (a CPAN path
// of the artifact's hash and size) and records the certificate's identity
// — issuer, SAN, repository, build config, and the Rekor index with the
// log it counts in — in the entry's lines. Each altered bundle, and the
// real v0.1 one sigstore-go refuses, is logged plain: the upload's reply
// names why, no sigstore line is written, and the file it claims to sign
// is left as it was.
func TestLogRecordsPublicGoodIdentities(t *testing.T) {
	cases := sigstoretest.PublicGoodCases(t)
	byRoot := map[string][]sigstoretest.PublicGoodCase{}
	for _, c := range cases {
		byRoot[c.TrustedRoot] = append(byRoot[c.TrustedRoot], c)
	}
	var good, refused int
	for rootFile, cases := range byRoot {
		v, err := sigstore.LoadTrustedRoot(rootFile)
		if err != nil {
			t.Fatal(err)
		}
		s := startServer(t, t.TempDir(), func(c *Config) { c.Sigstore = v })
		for i, c := range cases {
			file := fmt.Sprintf("authors/id/A/AU/AUTHOR/Case%02d-1.0.tar.gz", i)
			size := len(c.Artifact)
			if c.Artifact == nil {
				size = 1 << 20 // only the digest is here
			}
			fileIndex := s.mustAdd(fmt.Sprintf(`{"path":%q,"size":%d,"sha256":"%x","uploader":"AUTHOR","time":"2024-01-02T03:04:05Z"}`, file, size, c.Digest))
			sum := sha256.Sum256(c.Bundle)
			code, body := s.add(fmt.Sprintf(`{"path":%q,"size":%d,"sha256":"%x","uploader":"AUTHOR","time":"2024-01-02T03:04:06Z","bundle":%q}`,
				file+sigstore.BundleSuffix, len(c.Bundle), sum, base64.StdEncoding.EncodeToString(c.Bundle)))
			recs, err := s.log.History(file + sigstore.BundleSuffix)
			if code != 200 || err != nil || len(recs) != 1 {
				t.Errorf("%s: add %d %s; history %v %v", c.Name, code, body, recs, err)
				continue
			}
			leaf := string(recs[0].Leaf)
			if c.Fail {
				refused++
				if !strings.Contains(string(body), `"sigstore":"not verified: `) || !strings.Contains(string(body), "does not verify") && !strings.Contains(string(body), "not a Sigstore bundle") || recs[0].Entry.Sigstore != nil || strings.Contains(leaf, "\nsigstore-") {
					t.Errorf("%s (%s): %s\nlogged %s", c.Name, c.Why, body, leaf)
				}
				if fr, _ := s.log.History(file); len(fr) != 1 || fr[0].Index != fileIndex || fr[0].Entry.Sigstore != nil {
					t.Errorf("%s: the file it claims to sign changed: %+v", c.Name, fr)
				}
				continue
			}
			good++
			id := sigstoretest.ReadCertIdentity(t, c.Bundle)
			e := recs[0].Entry.Sigstore
			if !strings.Contains(string(body), "verified: "+id.SAN) || e == nil {
				t.Errorf("%s: %s", c.Name, body)
				continue
			}
			if e.Issuer != id.Issuer || e.SAN != id.SAN || e.SourceRepo != id.SourceRepo || e.BuildConfig != id.BuildConfig || e.ArtifactSHA256 != c.Digest || e.RekorIndex == nil || e.RekorLog == "" {
				t.Errorf("%s: recorded %+v, the certificate says %+v", c.Name, e, id)
				continue
			}
			for _, line := range []string{
				"sigstore-artifact-sha256 " + fmt.Sprintf("%x", c.Digest),
				"sigstore-issuer " + id.Issuer,
				"sigstore-san " + id.SAN,
				"sigstore-source-repo " + id.SourceRepo,
				"sigstore-build-config " + id.BuildConfig,
				fmt.Sprintf("sigstore-rekor-index %d", *e.RekorIndex),
				"sigstore-rekor-log " + e.RekorLog,
			} {
				if !strings.Contains(leaf, "\n"+line+"\n") {
					t.Errorf("%s: the entry lacks the line %q:\n%s", c.Name, line, leaf)
				}
			}
		}
	}
	if good < 6 || refused < 10 {
		t.Errorf("%d good and %d refused cases", good, refused)
	}
}
