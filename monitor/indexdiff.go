package monitor

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// Index finding kinds: what changed between two logged versions of
// 02packages or 06perms, the metadata that chooses what gets installed.
const (
	KindIndexUnlogged       = "index-unlogged-file"   // security: a package points at a file the log does not have
	KindIndexOwnerChanged   = "index-owner-changed"   // a package moves to another author's file
	KindIndexVersionDown    = "index-version-down"    // a package points at a lower version than before
	KindIndexPackageRemoved = "index-package-removed" // a package left the index
	KindPermsChanged        = "perms-changed"         // a package's permissions in 06perms changed or were dropped
	// KindIndexUnavailable: neither the log nor the mirror gives the bytes
	// of a logged version, so it cannot be audited (security: the log
	// promises to keep them).
	KindIndexUnavailable = "index-version-unavailable"
	// KindIndexUnauditable: a logged version's bytes were obtained but
	// cannot be audited to their end (malformed, unsorted, larger than the
	// monitor reads, its Line-Count wrong): what was found before the
	// point it fails is reported with it, and it does not become the
	// version the next one is compared with. Security for 02packages,
	// where an unlogged file could hide past that point.
	KindIndexUnauditable = "index-version-unauditable"
)

// diffedIndexes are the index files the monitor diffs (the compressed
// ones clients fetch; the .txt twins carry the same content).
var diffedIndexes = map[string]bool{"modules/02packages.details.txt.gz": true, "modules/06perms.txt.gz": true}

// maxIndexDownload bounds a fetched index file; maxIndexFindings bounds
// the findings of one diff (a rewritten index would otherwise flood).
const (
	maxIndexDownload = 256 << 20
	maxIndexFindings = 1000
)

// maxIndexUncompressed bounds what a version un-gzips to (the real
// 02packages is about 40 MB): a version larger is unauditable, never
// read in part. A variable for the tests.
var maxIndexUncompressed int64 = 1 << 30

var bIndexQueue = []byte("indexqueue") // entry index → queued index version

type queuedIndex struct {
	Path   string
	Size   uint64
	SHA256 string
}

// queueIndex remembers, in the audit's transaction, an index version to
// diff once the round's entries are audited.
func (m *Monitor) queueIndex(tx *bolt.Tx, idx uint64, e *entry.Entry) error {
	if !diffedIndexes[e.Path] {
		return nil
	}
	return putJSON(tx, bIndexQueue, string(binary.BigEndian.AppendUint64(nil, idx)), queuedIndex{Path: e.Path, Size: e.Size, SHA256: hex.EncodeToString(e.SHA256[:])})
}

// diffIndexes fetches each queued index version from the log (which keeps
// every version's bytes) or else the mirror, checks it is the logged one,
// diffs it with the previous version, and records the findings. Every
// logged version is diffed, also one that lived shorter than a round: a
// version whose bytes neither gives is a finding, and the next one is
// diffed against the last one seen.
func (m *Monitor) diffIndexes(ctx context.Context) error {
	type item struct {
		key []byte
		idx uint64
		q   queuedIndex
	}
	var items []item
	err := m.st.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bIndexQueue).ForEach(func(k, v []byte) error {
			var q queuedIndex
			if getJSON(tx, bIndexQueue, string(k), &q) {
				items = append(items, item{key: slices.Clone(k), idx: binary.BigEndian.Uint64(k), q: q})
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	dir := filepath.Join(m.cfg.StateDir, "index")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, it := range items {
		if err := m.diffIndex(ctx, dir, it.key, it.idx, it.q); err != nil {
			return err
		}
	}
	return nil
}

// diffIndex audits one queued index version and takes it off the queue,
// or returns an error and leaves it queued (stopping, or the monitor's own
// disk or state failed).
func (m *Monitor) diffIndex(ctx context.Context, dir string, key []byte, idx uint64, q queuedIndex) error {
	// The version this one is compared with: its log index is the
	// evidence an index-diff finding carries beside this one's.
	var prevIdx *uint64
	m.st.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bMeta).Get(baselineKey(q.Path)); len(v) == 8 {
			n := binary.BigEndian.Uint64(v)
			prevIdx = &n
		}
		return nil
	})
	baselined := false
	done := func(findings ...Finding) error {
		return m.st.db.Update(func(tx *bolt.Tx) error {
			for i := range findings {
				findings[i].PrevIndex = prevIdx
			}
			if err := m.st.record(tx, findings); err != nil {
				return err
			}
			if baselined {
				if err := tx.Bucket(bMeta).Put(baselineKey(q.Path), binary.BigEndian.AppendUint64(nil, idx)); err != nil {
					return err
				}
			}
			return tx.Bucket(bIndexQueue).Delete(key)
		})
	}
	i := idx
	if q.Size > maxIndexDownload {
		return done(m.unauditableIndex(idx, q, fmt.Errorf("it is %d bytes, more than the %d this monitor downloads", q.Size, maxIndexDownload)))
	}
	tmp, err := m.fetchIndex(ctx, dir, q)
	if ctx.Err() != nil {
		return ctx.Err() // stopping: the version stays queued
	}
	if err != nil {
		return done(Finding{ID: fmt.Sprintf("%s:%d", KindIndexUnavailable, idx), Kind: KindIndexUnavailable, Security: true, Index: &i, Path: q.Path,
			Message: fmt.Sprintf("the bytes of %s version %d (sha256 %s) cannot be obtained, so it cannot be audited: %v", q.Path, idx, q.SHA256, err)})
	}
	defer os.Remove(tmp) // unless it became the baseline
	prev := filepath.Join(dir, url.PathEscape(q.Path))
	findings, err := diffIndexFiles(m.st.uploads, q.Path, idx, prev, tmp)
	if be := (*baselineError)(nil); errors.As(err, &be) && !isLocal(err) {
		// The stored previous version was audited when it came, so this
		// is damage on the monitor's disk: the version is still checked
		// for files the log does not have, on its own.
		m.cfg.Logger.Warn("the previous index version cannot be read; diffing this one on its own", "index", idx, "path", q.Path, "err", err)
		note := Finding{ID: fmt.Sprintf("%s:%d:baseline", KindIndexUnauditable, idx), Kind: KindIndexUnauditable, Index: &i, Path: q.Path,
			Message: fmt.Sprintf("%s version %d was checked on its own, not compared with the previous version, which this monitor stored and can no longer read (%v): packages that changed owner, went down or left the index in it are not reported", q.Path, idx, err)}
		findings, err = diffIndexFiles(m.st.uploads, q.Path, idx, "", tmp)
		findings = append(findings, note)
	}
	if isLocal(err) {
		return fmt.Errorf("diffing %s version %d: %w", q.Path, idx, err)
	}
	if err != nil {
		// What was found before the point it fails stands; the version
		// does not become the baseline.
		return done(append(findings, m.unauditableIndex(idx, q, err))...)
	}
	// Recorded before the rename: a crash between the two leaves the
	// older file as the baseline with this version's index, and the next
	// diff's evidence names this version, the one the log says came
	// before it.
	baselined = true
	if err := done(findings...); err != nil {
		return err
	}
	return os.Rename(tmp, prev)
}

// baselineKey is the bMeta key of the log index of the version of an
// index file that the next version is compared with.
func baselineKey(cpanPath string) []byte { return []byte("index-baseline:" + cpanPath) }

// unauditableIndex is the finding of a version that cannot be audited.
func (m *Monitor) unauditableIndex(idx uint64, q queuedIndex, err error) Finding {
	i := idx
	m.cfg.Logger.Warn("index version cannot be audited", "index", idx, "path", q.Path, "err", err)
	return Finding{ID: fmt.Sprintf("%s:%d", KindIndexUnauditable, idx), Kind: KindIndexUnauditable, Security: !strings.HasPrefix(q.Path, "modules/06perms"), Index: &i, Path: q.Path,
		Message: clip(fmt.Sprintf("%s version %d (sha256 %s) cannot be audited to its end: %v. Any findings listed for it are what was read before that point; the rest of it is not checked, and the next version is compared with the last one that was audited", q.Path, idx, q.SHA256, err), maxMessage)}
}

// fetchIndex downloads a queued version into dir, from the log's
// /index-files/<sha256> or else the mirror (URL or CPAN tree, which serves
// only the current version), and checks it is the logged version.
func (m *Monitor) fetchIndex(ctx context.Context, dir string, q queuedIndex) (string, error) {
	var errs []string
	for _, src := range []func() (io.ReadCloser, error){
		func() (io.ReadCloser, error) { return m.openFromLog(ctx, q) },
		func() (io.ReadCloser, error) { return m.openFromMirror(ctx, q) },
	} {
		body, err := src()
		if err == nil {
			var name string
			name, err = saveChecked(dir, body, q)
			body.Close()
			if err == nil {
				return name, nil
			}
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		errs = append(errs, err.Error())
	}
	return "", errors.New(strings.Join(errs, "; "))
}

// openFromLog opens the version's bytes as the log keeps them.
func (m *Monitor) openFromLog(ctx context.Context, q queuedIndex) (io.ReadCloser, error) {
	if m.logBase == "" {
		return nil, errors.New("the log: not an http(s) URL")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.logBase+"/index-files/"+q.SHA256, nil)
	if err != nil {
		return nil, err
	}
	resp, err := m.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the log: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("the log answered %s", resp.Status)
	}
	return resp.Body, nil
}

// openFromMirror opens the mirror's current file at the version's path.
func (m *Monitor) openFromMirror(ctx context.Context, q queuedIndex) (io.ReadCloser, error) {
	switch {
	case m.cfg.Mirror == "":
		return nil, errors.New("no --mirror to ask")
	case strings.HasPrefix(m.cfg.Mirror, "http://") || strings.HasPrefix(m.cfg.Mirror, "https://"):
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(m.cfg.Mirror, "/")+"/"+q.Path, nil)
		if err != nil {
			return nil, err
		}
		resp, err := m.http.Do(req)
		if err != nil {
			return nil, fmt.Errorf("the mirror: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("the mirror answered %s", resp.Status)
		}
		return resp.Body, nil
	default:
		return os.Open(filepath.Join(m.cfg.Mirror, filepath.FromSlash(q.Path)))
	}
}

// saveChecked writes body into a temporary file in dir, which it returns
// only if its bytes are the queued version's.
func saveChecked(dir string, body io.Reader, q queuedIndex) (string, error) {
	tmp, err := os.CreateTemp(dir, ".fetch-*")
	if err != nil {
		return "", err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(body, int64(min(q.Size, maxIndexDownload))+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil && (uint64(n) != q.Size || hex.EncodeToString(h.Sum(nil)) != q.SHA256) {
		err = fmt.Errorf("got %d bytes with another sha256 than the logged version's", n)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return tmp.Name(), nil
}

// localError is a failure of the monitor's own disk or state while it
// diffs: the version is not to blame, and stays queued.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

func isLocal(err error) bool {
	var l *localError
	return errors.As(err, &l)
}

// baselineError is a failure to read the stored previous version.
type baselineError struct{ err error }

func (e *baselineError) Error() string { return "the previous version: " + e.err.Error() }
func (e *baselineError) Unwrap() error { return e.err }

// localFile tags the errors of reading a stored file as local.
type localFile struct{ f *os.File }

func (l localFile) Read(b []byte) (int, error) {
	n, err := l.f.Read(b)
	if err != nil && err != io.EOF {
		err = &localError{err}
	}
	return n, err
}

// boundedReader fails once more than n bytes were read: a larger version
// is unauditable, not cut short. err says it did (see whole).
type boundedReader struct {
	r    io.Reader
	n    int64
	name string
	err  error
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if int64(len(p)) > b.n+1 {
		p = p[:b.n+1]
	}
	n, err := b.r.Read(p)
	if b.n -= int64(n); b.n < 0 {
		b.err = fmt.Errorf("%s un-gzips to more than %d bytes, more than this monitor reads", b.name, maxIndexUncompressed)
		return 0, b.err
	}
	return n, err
}

// openIndexFile opens a stored index version, un-gzipping .gz paths; it
// reads at most maxIndexUncompressed bytes of it and fails past them.
func openIndexFile(name, cpanPath string) (*boundedReader, func(), error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, &localError{err}
	}
	if !strings.HasSuffix(cpanPath, ".gz") {
		return &boundedReader{r: localFile{f}, n: maxIndexUncompressed, name: cpanPath}, func() { f.Close() }, nil
	}
	zr, err := gzip.NewReader(localFile{f})
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", cpanPath, err)
	}
	return &boundedReader{r: zr, n: maxIndexUncompressed, name: cpanPath}, func() { zr.Close(); f.Close() }, nil
}

// diffIndexFiles diffs two versions of an index file in one streaming pass
// (both are sorted by package name, as PAUSE writes them), so memory stays
// flat for a real-size 02packages. With no previous version it only checks
// that every file the index points at is logged.
func diffIndexFiles(logged *uploads, cpanPath string, idx uint64, prevName, newName string) ([]Finding, error) {
	var prev io.Reader
	var prevBounded *boundedReader
	if _, err := os.Stat(prevName); prevName != "" && err == nil {
		r, closeFn, err := openIndexFile(prevName, cpanPath)
		if err != nil {
			return nil, asBaseline(err)
		}
		defer closeFn()
		prev, prevBounded = r, r
	}
	cur, closeCur, err := openIndexFile(newName, cpanPath)
	if err != nil {
		return nil, err
	}
	defer closeCur()
	d := &indexDiff{logged: logged, path: cpanPath, idx: idx, curBound: cur, prevBound: prevBounded}
	if strings.HasPrefix(cpanPath, "modules/06perms") {
		err = d.perms(prev, cur)
	} else {
		err = d.packages(prev, cur)
	}
	if d.err != nil {
		err = errors.Join(err, &localError{d.err})
	}
	return d.findings, err
}

// asBaseline tags an error of reading the previous version (unless it is
// local).
func asBaseline(err error) error {
	if err == nil || isLocal(err) {
		return err
	}
	return &baselineError{err}
}

// whole hands out what next reads only while the version's reader is
// within its bound: a line the bound cut (which a reader of lines hands
// out before the error) is never taken for a line of the version, and the
// error says why it was cut.
func whole[T any](b *boundedReader, next func() (T, bool, error)) func() (T, bool, error) {
	return func() (T, bool, error) {
		v, ok, err := next()
		if b != nil && b.err != nil {
			var zero T
			return zero, false, b.err
		}
		return v, ok, err
	}
}

// baseline tags the errors of a previous version's stream.
func baseline[T any](next func() (T, bool, error)) func() (T, bool, error) {
	return func() (T, bool, error) {
		v, ok, err := next()
		return v, ok, asBaseline(err)
	}
}

type indexDiff struct {
	// curBound and prevBound read the versions (prevBound is nil without
	// a previous version).
	curBound, prevBound *boundedReader
	logged              *uploads
	err                 error // reading logged
	path                string
	idx                 uint64
	findings            []Finding
	dropped             int
	nAdded              int // packages new in this version (see added)
	// whom the findings being made concern (see about)
	aboutPkgs, authors, dists []string
}

func (d *indexDiff) add(kind string, security bool, id, format string, args ...any) {
	if len(d.findings) >= maxIndexFindings {
		d.dropped++
		return
	}
	i := d.idx
	d.findings = append(d.findings, Finding{ID: kind + ":" + d.path + ":" + id, Kind: kind, Security: security, Index: &i, Path: d.path, Message: fmt.Sprintf(format, args...),
		Authors: d.authors, Dists: d.dists, Packages: d.aboutPkgs})
}

// maxAddedPackages bounds the index-package-added findings of one
// version (a real day of CPAN adds a few hundred packages).
const maxAddedPackages = 10000

// added notes a package new in this version, for the subscribers who
// watch its namespace (see KindIndexPackageAdded).
func (d *indexDiff) added(p cpan.Package) {
	if d.nAdded++; d.nAdded > maxAddedPackages {
		return
	}
	d.about(p.Name, p.Path)
	i := d.idx
	d.findings = append(d.findings, Finding{ID: KindIndexPackageAdded + ":" + d.path + ":" + p.Name, Kind: KindIndexPackageAdded, Index: &i, Path: d.path,
		Message: fmt.Sprintf("%s is new in the index, in %s's %s (version %s)", p.Name, owner(p.Path), p.Path, p.Version),
		Authors: d.authors, Dists: d.dists, Packages: d.aboutPkgs, RouteOnly: true})
}

// about sets whom the next findings concern: a package, and the authors
// and distributions of the index paths (A/AU/AUTHOR/Dist-1.0.tar.gz) it
// had and has.
func (d *indexDiff) about(pkg string, paths ...string) {
	var authors, dists []string
	for _, p := range paths {
		authors = append(authors, owner(p))
		dists = append(dists, cpan.ParseDistInfo(cpan.AuthorsPrefix+p).Dist)
	}
	d.aboutPkgs, d.authors, d.dists = []string{pkg}, subjects(authors...), subjects(dists...)
}

// sortKey is PAUSE's order: case-insensitive, then exact.
func sortKey(name string) string { return strings.ToLower(name) + "\x00" + name }

type sortedPackages struct {
	r    *cpan.PackagesReader
	last string
}

// next returns the next package, ok=false at the end.
func (s *sortedPackages) next() (cpan.Package, bool, error) {
	if s == nil || s.r == nil {
		return cpan.Package{}, false, nil
	}
	p, err := s.r.Next()
	if err == io.EOF {
		return p, false, nil
	}
	if err != nil {
		return p, false, err
	}
	k := sortKey(p.Name)
	if k <= s.last {
		return p, false, fmt.Errorf("not sorted by package name at %s", p.Name)
	}
	s.last = k
	return p, true, nil
}

func (d *indexDiff) packages(prevR, curR io.Reader) error {
	var prev *sortedPackages
	if prevR != nil {
		r, err := cpan.NewPackagesReader(prevR)
		if err != nil {
			return asBaseline(err)
		}
		prev = &sortedPackages{r: r}
	}
	r, err := cpan.NewPackagesReader(curR)
	if err != nil {
		return err
	}
	cur := &sortedPackages{r: r}
	err = mergeJoin(baseline(whole(d.prevBound, prev.next)), whole(d.curBound, cur.next), func(p cpan.Package) string { return p.Name },
		func(o cpan.Package) {
			d.about(o.Name, o.Path)
			d.add(KindIndexPackageRemoved, false, o.Name+":"+o.Path, "%s left the index (it was %s %s); if that was not its author's doing, installs of it now fail or resolve elsewhere", o.Name, o.Path, o.Version)
		},
		func(n cpan.Package) {
			d.checkLogged(n)
			if prev != nil {
				d.added(n)
			}
		},
		func(o, n cpan.Package) {
			d.about(n.Name, o.Path, n.Path)
			if n.Path != o.Path {
				d.checkLogged(n)
				if owner(n.Path) != owner(o.Path) {
					d.add(KindIndexOwnerChanged, false, n.Name+":"+n.Path, "%s moved from %s's %s to %s's %s: installs of %s now fetch another author's file", n.Name, owner(o.Path), o.Path, owner(n.Path), n.Path, n.Name)
				}
			}
			if less, ok := perlVersionLess(n.Version, o.Version); ok && less {
				d.add(KindIndexVersionDown, false, n.Name+":"+n.Version+":"+n.Path, "%s went down from version %s (%s) to %s (%s): a downgrade is how an attack on an old vulnerable release looks", n.Name, o.Version, o.Path, n.Version, n.Path)
			}
		})
	d.summarise()
	return err
}

// mergeJoin walks two streams sorted by PAUSE's order of key in one pass,
// handing each key to onlyOld, onlyNew or both: memory stays flat
// whatever the streams' length.
func mergeJoin[T any](prev, cur func() (T, bool, error), key func(T) string, onlyOld, onlyNew func(T), both func(o, n T)) error {
	o, oOK, err := prev()
	if err != nil {
		return err
	}
	n, nOK, err := cur()
	if err != nil {
		return err
	}
	for oOK || nOK {
		switch {
		case nOK && (!oOK || sortKey(key(n)) < sortKey(key(o))):
			onlyNew(n)
			n, nOK, err = cur()
		case oOK && (!nOK || sortKey(key(o)) < sortKey(key(n))):
			onlyOld(o)
			o, oOK, err = prev()
		default:
			both(o, n)
			if o, oOK, err = prev(); err == nil {
				n, nOK, err = cur()
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (d *indexDiff) summarise() {
	if d.dropped > 0 {
		d.findings = append(d.findings, Finding{ID: fmt.Sprintf("index-findings-dropped:%s:%d", d.path, d.idx), Kind: KindIndexUnlogged, Security: true, Index: &d.idx, Path: d.path,
			Message: fmt.Sprintf("%d more findings in this version of %s were not listed (more than %d): look at it as a whole", d.dropped, d.path, maxIndexFindings)})
	}
}

// checkLogged reports a package pointing at a file the log has no live
// upload of: installing it would fetch a file nobody can verify.
func (d *indexDiff) checkLogged(p cpan.Package) {
	cp := p.CPANPath()
	rec, ok, err := d.logged.get(cp)
	if err != nil {
		d.err = err
		return
	}
	if ok && !rec.Deleted {
		return
	}
	d.about(p.Name, p.Path)
	d.add(KindIndexUnlogged, true, p.Name+":"+p.Path, "%s points at %s, which the log has no (undeleted) upload of: clients following this index would install a file nobody can verify", p.Name, cp)
}

// owner is the PAUSE id of the author directory A/AB/ID/... of a path.
func owner(p string) string {
	_, p, _ = strings.Cut(p, "/")
	_, p, _ = strings.Cut(p, "/")
	id, _, ok := strings.Cut(p, "/")
	if !ok {
		return ""
	}
	return id
}

func (d *indexDiff) perms(prevR, curR io.Reader) error {
	var prev *permGroups
	if prevR != nil {
		r, err := cpan.NewPermsReader(prevR)
		if err != nil {
			return asBaseline(err)
		}
		prev = &permGroups{r: r}
	}
	r, err := cpan.NewPermsReader(curR)
	if err != nil {
		return err
	}
	cur := &permGroups{r: r}
	if prev == nil {
		// Nothing to compare with yet, but the version is read to its end
		// before it becomes the one the next is compared with.
		for {
			_, ok, err := whole(d.curBound, cur.next)()
			if err != nil || !ok {
				return err
			}
		}
	}
	err = mergeJoin(baseline(whole(d.prevBound, prev.next)), whole(d.curBound, cur.next), func(g permGroup) string { return g.pkg },
		func(o permGroup) {
			d.aboutPerms(o)
			d.add(KindPermsChanged, false, o.pkg+":dropped", "%s lost every permission (it was %s)", o.pkg, o.text())
		},
		func(permGroup) {}, // a new package: its first permissions are ordinary
		func(o, n permGroup) {
			if o.text() != n.text() {
				d.aboutPerms(o, n)
				sum := sha256.Sum256([]byte(n.text()))
				d.add(KindPermsChanged, false, n.pkg+":"+hex.EncodeToString(sum[:8]), "permissions on %s changed from %s to %s: whoever has them can upload releases of it", n.pkg, o.text(), n.text())
			}
		})
	d.summarise()
	return err
}

// permGroups reads 06perms a package at a time.
type permGroups struct {
	r       *cpan.PermsReader
	pending *cpan.Perm
	last    string
}

type permGroup struct {
	pkg   string
	perms []string // "ID:perm", sorted
}

func (g permGroup) text() string { return strings.Join(g.perms, ",") }

// aboutPerms sets whom a permissions change concerns: the package and
// every PAUSE id that had or has a permission on it.
func (d *indexDiff) aboutPerms(groups ...permGroup) {
	var ids []string
	for _, g := range groups {
		for _, p := range g.perms {
			id, _, _ := strings.Cut(p, ":")
			ids = append(ids, id)
		}
	}
	d.aboutPkgs, d.authors, d.dists = []string{groups[0].pkg}, subjects(ids...), nil
}

// maxPermsPerPackage bounds one package's group (the real maximum is a
// few dozen co-maintainers).
const maxPermsPerPackage = 10000

func (p *permGroups) next() (permGroup, bool, error) {
	var g permGroup
	for {
		var perm cpan.Perm
		if p.pending != nil {
			perm, p.pending = *p.pending, nil
		} else {
			var err error
			perm, err = p.r.Next()
			if err == io.EOF {
				return g, g.pkg != "", nil
			}
			if err != nil {
				return g, false, err
			}
		}
		if g.pkg != "" && perm.Package != g.pkg {
			p.pending = &perm
			slices.Sort(g.perms)
			return g, true, nil
		}
		if g.pkg == "" {
			k := sortKey(perm.Package)
			if k <= p.last {
				return g, false, fmt.Errorf("06perms not sorted by package at %s", perm.Package)
			}
			p.last = k
			g.pkg = perm.Package
		}
		if len(g.perms) >= maxPermsPerPackage {
			return g, false, fmt.Errorf("more than %d permissions on %s", maxPermsPerPackage, g.pkg)
		}
		g.perms = append(g.perms, perm.ID+":"+perm.Perm)
	}
}

// perlVersionLess compares two Perl module versions as version.pm does
// for the common forms: decimal (1.02, 0.017) and dotted (v1.2.3, 1.2.3);
// "_" (a trial marker) is ignored. ok is false when either is undef or not
// a version, and nothing is claimed.
func perlVersionLess(a, b string) (less, ok bool) {
	va, okA := perlVersion(a)
	vb, okB := perlVersion(b)
	if !okA || !okB {
		return false, false
	}
	return slices.Compare(va, vb) < 0, true
}

func perlVersion(s string) ([]int, bool) {
	s = strings.ReplaceAll(s, "_", "")
	if s == "" || s == "undef" {
		return nil, false
	}
	dotted := strings.HasPrefix(s, "v") || strings.Count(s, ".") >= 2
	s = strings.TrimPrefix(s, "v")
	var out []int
	if dotted {
		for _, part := range strings.Split(s, ".") {
			n, err := strconv.Atoi(part)
			if err != nil || n < 0 {
				return nil, false
			}
			out = append(out, n)
		}
	} else {
		whole, frac, _ := strings.Cut(s, ".")
		n, err := strconv.Atoi(whole)
		if err != nil || n < 0 {
			return nil, false
		}
		out = append(out, n)
		for len(frac)%3 != 0 {
			frac += "0"
		}
		for i := 0; i < len(frac); i += 3 {
			n, err := strconv.Atoi(frac[i : i+3])
			if err != nil {
				return nil, false
			}
			out = append(out, n)
		}
	}
	for len(out) > 1 && out[len(out)-1] == 0 {
		out = out[:len(out)-1]
	}
	return out, true
}
