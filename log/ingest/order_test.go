package ingest

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"

	"github.com/CPAN-Security/cpan-tlog/client/sigstore"
	"github.com/CPAN-Security/cpan-tlog/internal/sigstoretest"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
)

func TestBundlesAfterTheirFiles(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"a", "a.sigstore.json", "b"}, []string{"a", "a.sigstore.json", "b"}},
		{[]string{"a.sigstore.json", "a", "b"}, []string{"a", "a.sigstore.json", "b"}},
		{[]string{"a.sigstore.json", "b.sigstore.json", "c", "b", "a"}, []string{"c", "b", "b.sigstore.json", "a", "a.sigstore.json"}},
		{[]string{"x.sigstore.json", "y"}, []string{"x.sigstore.json", "y"}}, // its file is not in the tree
	} {
		var files []localFile
		for _, p := range tc.in {
			files = append(files, localFile{path: p})
		}
		var got []string
		for _, f := range bundlesAfterTheirFiles(files) {
			got = append(got, f.path)
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("%v (-want +got):\n%s", tc.in, d)
		}
	}
}

// TestImportRecordsIdentitiesWhateverTheOrder (#38): the identity a log
// records does not depend on the order in which files arrive. A bundle
// older than its tarball is checked once the tarball is logged (it was
// logged plain, its identity lost); a release without a bundle that
// follows a signed release in one batch is logged after that release's
// bundle (all bundles went last, so a monitor learnt the distribution was
// signed only after the unsigned release and never reported it); a bundle
// that does not verify is counted (import said "0 failed").
func TestImportRecordsIdentitiesWhateverTheOrder(t *testing.T) {
	vs, v := virtualSigstore(t)
	const (
		foo10 = "authors/id/A/AU/AUTHOR/Foo-1.0.tar.gz"
		foo11 = "authors/id/A/AU/AUTHOR/Foo-1.1.tar.gz"
		baz   = "authors/id/A/AU/AUTHOR/Baz-1.0.tar.gz"
		qux   = "authors/id/A/AU/AUTHOR/Qux-1.0.tar.gz"
		b     = ".sigstore.json"

		filler1 = "authors/id/O/OT/OTHER/One-1.tar.gz"
		filler2 = "authors/id/O/OT/OTHER/Two-1.tar.gz"
	)
	const issuer = "https://issuer.example"
	files := map[string][]byte{
		foo10: []byte("Foo 1.0"), foo10 + b: sigstoretest.BundleFor(t, vs, "author@example.org", issuer, []byte("Foo 1.0")),
		foo11: []byte("Foo 1.1"),
		baz:   []byte("Baz 1.0"), baz + b: sigstoretest.BundleFor(t, vs, "author@example.org", issuer, []byte("Baz 1.0")),
		qux: []byte("Qux 1.0"), qux + b: sigstoretest.BundleFor(t, vs, "author@example.org", issuer, []byte("not Qux")),
		filler1: []byte("1"), filler2: []byte("2"),
	}
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	mtime := map[string]time.Time{
		foo10: t0, foo10 + b: t0.Add(10 * time.Second), foo11: t0.Add(time.Hour),
		filler1: t0.Add(90 * time.Minute), filler2: t0.Add(91 * time.Minute),
		baz + b: t0.Add(2 * time.Hour), baz: t0.Add(2*time.Hour + 10*time.Second), // the bundle first, as RECENT listed Beacon-3.1's
		qux: t0.Add(3 * time.Hour), qux + b: t0.Add(3 * time.Hour),
	}
	tree := t.TempDir()
	writeTree(t, tree, files, func(p string) time.Time { return mtime[p] })
	// Three files a batch: Foo-1.0, its bundle and Foo-1.1 in the first;
	// Baz's bundle ends the second and its tarball starts the third.
	defer func(n int) { importBatch = n }(importBatch)
	importBatch = 3
	l, err := tlog.Open(context.Background(), tlog.Config{DataDir: t.TempDir(), Sigstore: v, CheckpointInterval: 100 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Shutdown(context.Background())
	st, err := Import(context.Background(), l, tree, io.Discard, quiet)
	if err != nil || st.Logged != 9 || st.Failed != 0 || st.Unsigned != 1 {
		t.Fatalf("import: %+v %v; want 9 logged, none failed, 1 bundle that did not verify", st, err)
	}
	if es := logged(t, l, baz+b); len(es) != 1 || es[0].Sigstore == nil || es[0].Sigstore.SAN != "author@example.org" || es[0].Sigstore.RekorLog == "" {
		t.Errorf("a bundle older than its tarball: logged %+v, want its identity recorded", es)
	}
	if es := logged(t, l, qux+b); len(es) != 1 || es[0].Sigstore != nil {
		t.Errorf("a bundle of other bytes: logged %+v, want no identity", es)
	}
	index := func(p string) uint64 {
		recs, err := l.History(p)
		if err != nil || len(recs) != 1 {
			t.Fatalf("%s: %v %v", p, recs, err)
		}
		return recs[0].Index
	}
	order := []uint64{index(foo10), index(foo10 + b), index(foo11)}
	if !slices.IsSorted(order) {
		t.Errorf("Foo-1.0, its bundle, Foo-1.1 logged at %v: the unsigned release must follow the signed release's bundle", order)
	}
}

// TestFollowerHoldsABundleListedBeforeItsFile (#38): RECENT listing a
// bundle before its tarball — in one poll, or the tarball only at a later
// poll, after a restart — still records the bundle's identity: the
// bundle is held, durably, and logged after its file. A bundle whose file
// never comes is logged plain once the wait is over.
func TestFollowerHoldsABundleListedBeforeItsFile(t *testing.T) {
	vs, v := virtualSigstore(t)
	smp := samples(t)
	const issuer = "https://issuer.example"
	const (
		sub  = "authors/id/H/HA/HAARG/Role-Tiny-2.002004.tar.gz"
		tt   = "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz"
		lone = "authors/id/E/ET/ETHER/Never-1.0.tar.gz"
		b    = ".sigstore.json"
	)
	l, err := tlog.Open(context.Background(), tlog.Config{DataDir: t.TempDir(), Sigstore: v, CheckpointInterval: 100 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Shutdown(context.Background())
	m := newMirror(t)
	poll := func() {
		t.Helper()
		f := &Follower{Log: l, Mirror: m.srv.URL, Logger: quiet} // a new one each time: a restart
		if err := f.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	signedBy := func(p string) string {
		t.Helper()
		es := logged(t, l, p)
		switch {
		case len(es) == 0:
			return "not logged"
		case es[0].Sigstore == nil:
			return "plain"
		}
		return es[0].Sigstore.SAN
	}

	// One poll, the bundle first.
	m.add(1, sub+b, sigstoretest.BundleFor(t, vs, "haarg@example.org", issuer, smp[sub]))
	m.add(2, sub, smp[sub])
	// The next poll will list only Try-Tiny's bundle; its tarball comes later.
	m.add(3, tt+b, sigstoretest.BundleFor(t, vs, "ether@example.org", issuer, smp[tt]))
	poll()
	if got := signedBy(sub + b); got != "haarg@example.org" {
		t.Errorf("a bundle listed before its tarball in one poll: %s, want its identity", got)
	}
	if got := signedBy(tt + b); got != "not logged" {
		t.Errorf("a bundle whose tarball is not on the mirror yet: %s, want it held", got)
	}
	m.add(4, tt, smp[tt])
	poll()
	if got := signedBy(tt + b); got != "ether@example.org" {
		t.Errorf("a bundle held across polls and a restart: %s, want its identity", got)
	}
	if ri, bi := logged(t, l, tt), logged(t, l, tt+b); len(ri) != 1 || len(bi) != 1 {
		t.Fatalf("Try-Tiny and its bundle logged %d and %d times", len(ri), len(bi))
	}

	// A bundle whose file never comes is logged plain after the wait.
	m.add(5, lone+b, sigstoretest.BundleFor(t, vs, "ether@example.org", issuer, []byte("never")))
	poll()
	if got := signedBy(lone + b); got != "not logged" {
		t.Errorf("a lone bundle within the wait: %s, want it held", got)
	}
	defer func(d time.Duration) { heldGrace = d }(heldGrace)
	heldGrace = 0
	poll()
	if got := signedBy(lone + b); got != "plain" {
		t.Errorf("a lone bundle after the wait: %s, want it logged plain", got)
	}
}

// virtualSigstore is a virtual Sigstore instance and a verifier that
// trusts it, as an operator's --sigstore-trusted-root would.
func virtualSigstore(t *testing.T) (*ca.VirtualSigstore, *sigstore.Verifier) {
	t.Helper()
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	v, err := sigstore.LoadTrustedRoot(sigstoretest.TrustedRootFile(t, vs))
	if err != nil {
		t.Fatal(err)
	}
	return vs, v
}
