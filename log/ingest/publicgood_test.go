package ingest

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/client/sigstore"
	"github.com/CPAN-Security/cpan-tlog/internal/sigstoretest"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/monitor"
)

// TestImportPublicGoodBundlesWhateverTheOrder (#38, defects 1, 2 and 4
// with real bundles): a tree holding real public-good bundles
// (testdata/sigstore-public-good) is imported into a log that trusts
// sigstore/root-signing's root, three files a batch, and a monitor reads
// the log.
//
//   - Foo-1.0, its bundle and Foo-1.1 (no bundle) fall in one batch: the
//     bundle is logged right after Foo-1.0, before Foo-1.1, so the
//     monitor knows Foo is signed when Foo-1.1 comes and reports it
//     sigstore-identity-missing once the grace has passed (a later upload
//     moves log time past it).
//   - Bar-1.0's bundle is older than its tarball and ends a batch; the
//     tarball starts the next: the bundle is held and logged after the
//     tarball, with its identity.
//   - What the monitor hands a community monitor (monitor.Router) carries
//     those identities.
//   - Baz-1.0's bundle is a real bundle of other bytes: logged plain and
//     counted as a bundle that did not verify.
func TestImportPublicGoodBundlesWhateverTheOrder(t *testing.T) {
	v3 := sigstoretest.PublicGood(t, "happy-path-v0.3")
	v1 := sigstoretest.PublicGood(t, "happy-path-v0.1")
	bad := sigstoretest.PublicGood(t, "wrong-material_fail")
	v, err := sigstore.LoadTrustedRoot(v3.TrustedRoot)
	if err != nil {
		t.Fatal(err)
	}
	const (
		dir   = "authors/id/A/AU/AUTHOR/"
		foo10 = dir + "Foo-1.0.tar.gz"
		foo11 = dir + "Foo-1.1.tar.gz"
		bar   = dir + "Bar-1.0.tar.gz"
		baz   = dir + "Baz-1.0.tar.gz"
		b     = sigstore.BundleSuffix

		filler1 = "authors/id/O/OT/OTHER/One-1.tar.gz"
		filler2 = "authors/id/O/OT/OTHER/Two-1.tar.gz"
		later   = "authors/id/O/OT/OTHER/Later-1.tar.gz"
	)
	files := map[string][]byte{
		foo10: v3.Artifact, foo10 + b: v3.Bundle, foo11: []byte("Foo 1.1, unsigned"),
		bar: v1.Artifact, bar + b: v1.Bundle,
		baz: []byte("Baz 1.0, not what the bundle signs"), baz + b: bad.Bundle,
		filler1: []byte("1"), filler2: []byte("2"), later: []byte("later"),
	}
	t0 := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	mtime := map[string]time.Time{
		foo10: t0, foo10 + b: t0.Add(10 * time.Second), foo11: t0.Add(time.Hour),
		filler1: t0.Add(90 * time.Minute), filler2: t0.Add(91 * time.Minute),
		bar + b: t0.Add(2 * time.Hour), bar: t0.Add(2*time.Hour + 10*time.Second),
		baz: t0.Add(3 * time.Hour), baz + b: t0.Add(3 * time.Hour),
		later: t0.Add(monitor.SigstoreGrace + 2*time.Hour),
	}
	tree := t.TempDir()
	writeTree(t, tree, files, func(p string) time.Time { return mtime[p] })
	defer func(n int) { importBatch = n }(importBatch)
	importBatch = 3
	l, err := tlog.Open(context.Background(), tlog.Config{DataDir: t.TempDir(), Sigstore: v, CheckpointInterval: 100 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- tlog.Serve(ctx, l, ln) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	st, err := Import(context.Background(), l, tree, io.Discard, quiet)
	if err != nil || st.Logged != len(files) || st.Failed != 0 || st.Unsigned != 1 {
		t.Fatalf("import: %+v %v; want %d logged, none failed, 1 bundle that did not verify", st, err, len(files))
	}
	for _, p := range []string{foo10 + b, bar + b} {
		id := sigstoretest.ReadCertIdentity(t, files[p])
		es := logged(t, l, p)
		if len(es) != 1 || es[0].Sigstore == nil || es[0].Sigstore.SAN != id.SAN || es[0].Sigstore.Issuer != id.Issuer || es[0].Sigstore.SourceRepo != id.SourceRepo {
			t.Errorf("%s: logged %+v, want the certificate's identity %+v", p, es, id)
		}
	}
	if es := logged(t, l, baz+b); len(es) != 1 || es[0].Sigstore != nil {
		t.Errorf("a real bundle of other bytes: logged %+v, want no identity", es)
	}
	index := func(p string) uint64 {
		recs, err := l.History(p)
		if err != nil || len(recs) != 1 {
			t.Fatalf("%s: %v %v", p, recs, err)
		}
		return recs[0].Index
	}
	if order := []uint64{index(foo10), index(foo10 + b), index(foo11)}; !slices.IsSorted(order) {
		t.Errorf("Foo-1.0, its bundle, Foo-1.1 logged at %v: the unsigned release must follow the signed release's bundle", order)
	}
	if index(bar+b) < index(bar) {
		t.Errorf("Bar-1.0's bundle logged at %d, before its tarball at %d", index(bar+b), index(bar))
	}

	// The monitor, once a checkpoint covers everything.
	waitForCheckpoint(t, l, uint64(len(files)))
	p, err := client.ParsePolicy([]byte(fmt.Sprintf("log %s http://%s\nquorum none\n", l.VerifierKey(), ln.Addr())))
	if err != nil {
		t.Fatal(err)
	}
	routed := &recordingRouter{}
	m, err := monitor.New(monitor.Config{Policy: p, StateDir: t.TempDir(), Logger: quiet, Router: routed})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	fs, err := m.Deliver(context.Background(), monitor.WriterSink{W: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, f := range fs {
		switch f.Kind {
		case monitor.KindSigstoreMissing:
			missing = append(missing, f.Path)
		case monitor.KindSigstoreChanged:
			t.Errorf("a real identity reported changed: %+v", f)
		}
	}
	if !slices.Equal(missing, []string{foo11}) {
		t.Errorf("sigstore-identity-missing for %v, want only %s: %+v", missing, foo11, fs)
	}

	// What a community monitor is handed (monitor.Router): each real
	// bundle's upload names the file it signs and the certificate's
	// identity; the altered one names no identity; the missing identity's
	// finding names the author and the distribution.
	uploads := map[string]*monitor.Upload{}
	var routedMissing *monitor.Finding
	for _, ev := range routed.events {
		switch {
		case ev.Upload != nil:
			uploads[ev.Upload.Path] = ev.Upload
		case ev.Finding != nil && ev.Finding.Kind == monitor.KindSigstoreMissing:
			routedMissing = ev.Finding
		}
	}
	for _, p := range []string{foo10 + b, bar + b} {
		id := sigstoretest.ReadCertIdentity(t, files[p])
		u := uploads[p]
		want := monitor.Identity{Issuer: id.Issuer, SAN: id.SAN, SourceRepo: id.SourceRepo, BuildConfig: id.BuildConfig}
		if f := uploads[strings.TrimSuffix(p, b)]; f != nil {
			want.ArtifactSHA256 = f.SHA256 // the bundle signs the file as logged
		}
		if u == nil || u.Signs != strings.TrimSuffix(p, b) || u.Identity == nil || *u.Identity != want {
			t.Errorf("%s routed as %+v, want it to sign %s with the certificate's identity %+v", p, u, strings.TrimSuffix(p, b), id)
		}
	}
	if u := uploads[baz+b]; u == nil || u.Signs != baz || u.Identity != nil {
		t.Errorf("the altered bundle routed as %+v, want no identity", u)
	}
	if u := uploads[foo11]; u == nil || u.Identity != nil || u.Dist != "Foo" || u.Author != "AUTHOR" {
		t.Errorf("Foo-1.1 routed as %+v", u)
	}
	if f := routedMissing; f == nil || f.Path != foo11 || !slices.Contains(f.Authors, "AUTHOR") || !slices.Contains(f.Dists, "Foo") {
		t.Errorf("the missing identity routed as %+v, want it to name AUTHOR and Foo", f)
	}
}

// recordingRouter keeps every event the monitor routes.
type recordingRouter struct{ events []monitor.Event }

func (r *recordingRouter) Route(_ *bolt.Tx, events []monitor.Event) error {
	r.events = append(r.events, events...)
	return nil
}

// TestFollowerHoldsARealBundleListedBeforeItsFile (#38, defect 2): RECENT
// lists a real public-good bundle a poll before the file it signs; the
// bundle is held, then logged after the file with the certificate's
// identity.
func TestFollowerHoldsARealBundleListedBeforeItsFile(t *testing.T) {
	c := sigstoretest.PublicGood(t, "happy-path-intoto-in-dsse-v3")
	v, err := sigstore.LoadTrustedRoot(c.TrustedRoot)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tlog.Open(context.Background(), tlog.Config{DataDir: t.TempDir(), Sigstore: v, CheckpointInterval: 100 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Shutdown(context.Background())
	const file = "authors/id/A/AU/AUTHOR/Attested-1.0.tar.gz"
	m := newMirror(t)
	poll := func() {
		t.Helper()
		f := &Follower{Log: l, Mirror: m.srv.URL, Logger: quiet} // a new one each time: a restart
		if err := f.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	m.add(1, file+sigstore.BundleSuffix, c.Bundle)
	poll()
	if es := logged(t, l, file+sigstore.BundleSuffix); len(es) != 0 {
		t.Fatalf("a bundle whose file is not on the mirror yet: logged %+v, want it held", es)
	}
	m.add(2, file, c.Artifact)
	poll()
	id := sigstoretest.ReadCertIdentity(t, c.Bundle)
	es := logged(t, l, file+sigstore.BundleSuffix)
	if len(es) != 1 || es[0].Sigstore == nil || es[0].Sigstore.SAN != id.SAN || es[0].Sigstore.Issuer != id.Issuer || es[0].Sigstore.SourceRepo != id.SourceRepo || es[0].Sigstore.BuildConfig != id.BuildConfig {
		t.Errorf("the held real bundle: logged %+v, want the certificate's identity %+v", es, id)
	}
}

// waitForCheckpoint waits until the log's checkpoint covers size entries.
func waitForCheckpoint(t *testing.T, l *tlog.Log, size uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cp, err := l.Reader().ReadCheckpoint(context.Background())
		if err == nil {
			lines := strings.SplitN(string(cp), "\n", 3)
			if len(lines) > 1 {
				if n, err := strconv.ParseUint(lines[1], 10, 64); err == nil && n >= size {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint covering %d entries: %q %v", size, cp, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
