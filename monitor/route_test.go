package monitor

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/client"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// recordingRouter keeps what it is routed, in a bucket of the monitor's
// state (so what an aborted transaction routed is gone with it), and
// fails the calls it is told to.
type recordingRouter struct {
	fail int // how many calls fail before the others succeed
}

var bRouted = []byte("test-routed")

func (r *recordingRouter) Route(tx *bolt.Tx, events []Event) error {
	if r.fail > 0 {
		r.fail--
		return errors.New("router failed")
	}
	b, err := tx.CreateBucketIfNotExists(bRouted)
	if err != nil {
		return err
	}
	for _, ev := range events {
		seq, _ := b.NextSequence()
		v := ev.Upload
		if ev.Finding != nil {
			if err := putJSON(tx, bRouted, fmt.Sprintf("%08d", seq), map[string]*Finding{"finding": ev.Finding}); err != nil {
				return err
			}
			continue
		}
		if err := putJSON(tx, bRouted, fmt.Sprintf("%08d", seq), map[string]*Upload{"upload": v}); err != nil {
			return err
		}
	}
	return nil
}

func routed(t *testing.T, m *Monitor) (uploads []Upload, findings []Finding) {
	t.Helper()
	err := m.DB().View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bRouted)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			var ev struct {
				Upload  *Upload
				Finding *Finding
			}
			if !getJSON(tx, bRouted, string(k), &ev) {
				return fmt.Errorf("routed %s does not decode", k)
			}
			if ev.Upload != nil {
				uploads = append(uploads, *ev.Upload)
			} else {
				findings = append(findings, *ev.Finding)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return uploads, findings
}

// TestRouterGetsEachUploadOnceWithTheBatch: every upload and deletion
// reaches the router once, with what the log recorded (a bundle's signed
// path and identity); a router that fails aborts the batch, which is
// audited and routed again whole; findings say whom they concern.
func TestRouterGetsEachUploadOnceWithTheBatch(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	sig := &entry.Sigstore{Issuer: "https://token.actions.githubusercontent.com", SAN: "https://github.com/abc/foo/.github/workflows/release.yml@refs/tags/v1.0",
		SourceRepo: "https://github.com/abc/foo", BuildConfig: ".github/workflows/release.yml", ArtifactSHA256: sha256.Sum256([]byte("foo 1.0"))}
	del, err := (&entry.Entry{Kind: entry.Delete, Path: "authors/id/A/AB/ABC/Foo-0.9.tar.gz", Time: t0}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	leaves := [][]byte{
		mkUpload(t, "authors/id/A/AB/ABC/Foo-0.9.tar.gz", "ABC", "foo 0.9", t0, nil),
		mkUpload(t, "authors/id/A/AB/ABC/Foo-1.0.tar.gz", "ABC", "foo 1.0", t0, nil),
		mkUpload(t, "authors/id/A/AB/ABC/Foo-1.0.tar.gz.sigstore.json", "ABC", "{bundle}", t0, sig),
		mkUpload(t, "authors/id/A/AB/ABC/Evil-1.0.tar.gz", "XYZ", "evil", t0, nil),
		del,
	}
	logURL, _, vkey, _ := craftedLog(t, leaves, nil, "")
	p, err := client.ParsePolicy([]byte(fmt.Sprintf("log %s %s\nquorum none\n", vkey, logURL)))
	if err != nil {
		t.Fatal(err)
	}
	router := &recordingRouter{fail: 1}
	m, err := New(Config{Policy: p, StateDir: t.TempDir(), Logger: quiet, Router: router})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Sync(context.Background()); err == nil {
		t.Fatal("a round whose router failed succeeded")
	}
	if n, _ := m.Audited(); n != 0 {
		t.Fatalf("the failed batch moved the audit to %d", n)
	}
	if err := m.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	ups, fs := routed(t, m)
	want := []Upload{
		{Index: 0, Time: t0, Kind: UploadAdd, Path: "authors/id/A/AB/ABC/Foo-0.9.tar.gz", SHA256: sum("foo 0.9"), Size: 7, Uploader: "ABC", Author: "ABC", Dist: "Foo", Version: "0.9"},
		{Index: 1, Time: t0, Kind: UploadAdd, Path: "authors/id/A/AB/ABC/Foo-1.0.tar.gz", SHA256: sum("foo 1.0"), Size: 7, Uploader: "ABC", Author: "ABC", Dist: "Foo", Version: "1.0"},
		{Index: 2, Time: t0, Kind: UploadAdd, Path: "authors/id/A/AB/ABC/Foo-1.0.tar.gz.sigstore.json", SHA256: sum("{bundle}"), Size: 8, Uploader: "ABC", Author: "ABC", Dist: "Foo", Version: "1.0",
			Signs: "authors/id/A/AB/ABC/Foo-1.0.tar.gz", Identity: &Identity{Issuer: sig.Issuer, SAN: sig.SAN, SourceRepo: sig.SourceRepo, BuildConfig: sig.BuildConfig, ArtifactSHA256: sum("foo 1.0")}},
		{Index: 3, Time: t0, Kind: UploadAdd, Path: "authors/id/A/AB/ABC/Evil-1.0.tar.gz", SHA256: sum("evil"), Size: 4, Uploader: "XYZ", Author: "ABC", Dist: "Evil", Version: "1.0"},
		{Index: 4, Time: t0, Kind: UploadDelete, Path: "authors/id/A/AB/ABC/Foo-0.9.tar.gz", Author: "ABC", Dist: "Foo", Version: "0.9"},
	}
	if d := cmp.Diff(want, ups); d != "" {
		t.Errorf("routed uploads (-want +got):\n%s", d)
	}
	if len(fs) != 1 || fs[0].Kind != KindUploaderMismatch || !slices.Equal(fs[0].Authors, []string{"ABC", "XYZ"}) || !slices.Equal(fs[0].Dists, []string{"Evil"}) {
		t.Errorf("routed findings: %+v", fs)
	}
	// The operator's outbox has the finding once, as before.
	if got, err := m.Deliver(context.Background()); err != nil || len(got) != 1 {
		t.Errorf("outbox: %v %v", got, err)
	}
	// Nothing is routed twice.
	if err := m.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ups2, fs2 := routed(t, m); len(ups2) != len(ups) || len(fs2) != len(fs) {
		t.Errorf("an idle round routed again: %d uploads, %d findings", len(ups2)-len(ups), len(fs2)-len(fs))
	}
}

func sum(s string) string {
	return fmt.Sprintf("%x", sha256.Sum256([]byte(s)))
}

// TestRoutedOwnerChangeNamesBothOwnersAndVersions: a package moved to
// another author's file concerns both authors, and carries the log
// indexes of the two index versions compared.
func TestRoutedOwnerChangeNamesBothOwnersAndVersions(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	skey, vkey, _ := note.GenerateKey(rand.Reader, tlog.DefaultOrigin)
	signer, _ := note.NewSigner(skey)
	logURL, dir, _, _ := craftedLog(t, [][]byte{
		mkUpload(t, "authors/id/B/BO/BOB/Foo-1.0.tar.gz", "BOB", "foo 1.0", t0, nil),
		mkUpload(t, "authors/id/A/AL/ALICE/Foo-Evil-1.0.tar.gz", "ALICE", "evil", t0, nil),
	}, signer, "")
	const pk = "modules/02packages.details.txt.gz"
	p, err := client.ParsePolicy([]byte(fmt.Sprintf("log %s %s\nquorum none\n", vkey, logURL)))
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	mirror := t.TempDir()
	os.MkdirAll(filepath.Join(mirror, "modules"), 0o755)
	for i, lines := range [][]string{{"Foo::Bar 1.0 B/BO/BOB/Foo-1.0.tar.gz"}, {"Foo::Bar 1.1 A/AL/ALICE/Foo-Evil-1.0.tar.gz", "Foo::Bar::Evil 0.1 A/AL/ALICE/Foo-Evil-1.0.tar.gz"}} {
		b := gz(packagesText(lines...))
		os.WriteFile(filepath.Join(mirror, filepath.FromSlash(pk)), b, 0o644)
		appendLeaves(t, dir, signer, [][]byte{mkIndex(t, pk, b, t0.Add(time.Duration(i+1)*time.Hour))})
		m, err := New(Config{Policy: p, StateDir: state, Mirror: mirror, Logger: quiet, Router: &recordingRouter{}})
		if err != nil {
			t.Fatal(err)
		}
		err = m.Sync(context.Background())
		_, fs := routed(t, m)
		outbox, derr := m.Deliver(context.Background())
		m.Close()
		if derr != nil {
			t.Fatal(derr)
		}
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if len(fs) != 0 {
				t.Fatalf("first version routed %+v", fs)
			}
			continue
		}
		// A package new in the version is routed (someone registered it
		// in a namespace a subscriber may watch), but not filed for the
		// operator: new packages are ordinary.
		if len(fs) != 2 || fs[0].Kind != KindIndexOwnerChanged || fs[1].Kind != KindIndexPackageAdded {
			t.Fatalf("routed findings: %+v", fs)
		}
		if a := fs[1]; !slices.Equal(a.Packages, []string{"Foo::Bar::Evil"}) || !slices.Equal(a.Authors, []string{"ALICE"}) || a.Index == nil || *a.Index != 3 {
			t.Errorf("the new package: %+v", a)
		}
		if len(outbox) != 1 || outbox[0].Kind != KindIndexOwnerChanged {
			t.Errorf("the operator's outbox: %+v", outbox)
		}
		f := fs[0]
		if !slices.Equal(f.Authors, []string{"ALICE", "BOB"}) || !slices.Equal(f.Packages, []string{"Foo::Bar"}) || !slices.Equal(f.Dists, []string{"Foo", "Foo-Evil"}) {
			t.Errorf("whom: authors %v packages %v dists %v", f.Authors, f.Packages, f.Dists)
		}
		if f.Index == nil || *f.Index != 3 || f.PrevIndex == nil || *f.PrevIndex != 2 {
			t.Errorf("evidence: index %v prev %v, want 3 and 2", f.Index, f.PrevIndex)
		}
	}
}
