package monitor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
)

// Mirror finding kinds.
const (
	KindMirrorUnlogged = "mirror-unlogged" // the mirror serves a file the log never recorded
	KindMirrorMismatch = "mirror-mismatch" // the mirror's file or CHECKSUMS differs from the log: security
	KindMirrorMissing  = "mirror-missing"  // a logged, undeleted upload is not on the mirror
	// KindMirrorUnauditable: something the mirror serves (or would, to a
	// web server following symlinks) cannot be read or judged: an
	// unreadable or oversized file or CHECKSUMS, a dangling symlink, a
	// directory it cannot list. Security: a tampered file could hide
	// there. Reported by every run that meets it (its ID names the run).
	KindMirrorUnauditable = "mirror-unauditable"
)

// maxMirrorFile bounds a file hashed from a mirror: larger, it is
// reported, not hashed in part. A variable for the tests.
var maxMirrorFile int64 = 1 << 30

// mirrorFlush is how many findings an audit of a mirror holds before it
// records them.
const mirrorFlush = 1000

// maxMirrorGroup is how many findings of a kind one directory of a mirror
// (or the list of missing uploads) reports one by one: past it, one
// finding says how many more there are.
const maxMirrorGroup = 1000

// maxMirrorChecksums bounds a CHECKSUMS file the audit reads: the largest
// author directories have a few thousand files, a few MB, and parsing one
// costs several times its size (cpan.MaxChecksumsSize, 32 MiB, would take
// the audit past its memory bound). A larger one is mirror-unauditable.
const maxMirrorChecksums = 8 << 20

// maxDirVisits bounds how often one directory is walked through symlinks
// (a tree of symlinks to one directory would otherwise be walked
// exponentially often).
const maxDirVisits = 4

// mirrorAudit is one comparison of a mirror with the log. It looks each
// file up in the uploads table, not in a copy of it, and remembers which
// logged uploads the mirror has in a bit per slot of the table: its
// memory is one bit per slot, whatever the mirror holds.
type mirrorAudit struct {
	m       *Monitor
	u       *uploads
	loc     string
	run     string // names this run in the IDs of what it cannot audit
	seen    []uint64
	pending []Finding
	// group is where the findings being reported are (a directory, or
	// the missing uploads); counts and dropped are its findings by kind.
	group   string
	counts  map[string]int
	dropped map[string]*droppedFindings
}

type droppedFindings struct {
	n        int
	security bool
}

// AuditMirror brings the audit up to date, then compares a CPAN mirror
// with the log: a local tree (every file under authors/id is hashed, and
// every CHECKSUMS file is checked; a symlink is judged by the bytes it
// resolves to, as a web server would serve them) or an HTTP mirror (the
// CHECKSUMS file of every directory the log has uploads in). Findings go
// to the outbox; what the mirror has that cannot be audited is a finding
// too.
func (m *Monitor) AuditMirror(ctx context.Context, loc string) error {
	if err := m.Sync(ctx); err != nil {
		return fmt.Errorf("bring the audit up to date first: %w", err)
	}
	u := m.st.uploads
	a := &mirrorAudit{m: m, u: u, loc: loc, run: time.Now().UTC().Format("20060102T150405.000000000Z"), seen: make([]uint64, (u.slots.len()+63)/64)}
	var err error
	if strings.HasPrefix(loc, "http://") || strings.HasPrefix(loc, "https://") {
		err = a.auditHTTP(ctx, strings.TrimSuffix(loc, "/"))
	} else {
		err = a.auditLocal(ctx, loc)
	}
	if err != nil {
		// What was found before stands.
		return errors.Join(err, a.flush())
	}
	a.startGroup("the uploads the mirror does not have")
	err = u.each(func(p string, rec upload) error {
		if rec.Deleted {
			return nil
		}
		slot, _, ok, err := a.logged(p)
		if err != nil || !ok || a.seen[slot/64]&(1<<(slot%64)) != 0 {
			return err
		}
		return a.add(mirrorFinding(KindMirrorMissing, false, p, rec.SHA256[:], "%s is logged (index %d) but the mirror %s does not have it", p, rec.Index, loc))
	})
	if err == nil {
		err = a.endGroup()
	}
	return errors.Join(err, a.flush())
}

// startGroup starts counting the findings of a group (see maxMirrorGroup).
func (a *mirrorAudit) startGroup(name string) {
	a.group, a.counts, a.dropped = name, map[string]int{}, map[string]*droppedFindings{}
}

// endGroup reports, for each kind, the findings of the group past
// maxMirrorGroup in one finding (reported by every run: they are not
// recorded one by one).
func (a *mirrorAudit) endGroup() error {
	kinds := make([]string, 0, len(a.dropped))
	for k := range a.dropped {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		d := a.dropped[k]
		f := Finding{ID: fmt.Sprintf("%s:%s:more:%s", k, a.group, a.run), Kind: k, Security: d.security,
			Message: clip(fmt.Sprintf("the mirror %s: %d more %s findings in %s are not listed one by one (more than %d): look at it as a whole", a.loc, d.n, k, a.group, maxMirrorGroup), maxMessage)}
		a.pending = append(a.pending, f)
	}
	a.group, a.counts, a.dropped = "", nil, nil
	if len(a.pending) >= mirrorFlush {
		return a.flush()
	}
	return nil
}

func mirrorFinding(kind string, security bool, p string, sum []byte, format string, args ...any) Finding {
	return Finding{ID: fmt.Sprintf("%s:%s:%x", kind, p, sum), Kind: kind, Security: security, Path: p, Message: clip(fmt.Sprintf(format, args...), maxMessage)}
}

// unauditable reports something of the mirror at p that cannot be audited.
func (a *mirrorAudit) unauditable(p string, format string, args ...any) error {
	return a.add(Finding{ID: fmt.Sprintf("%s:%s:%s", KindMirrorUnauditable, p, a.run), Kind: KindMirrorUnauditable, Security: true, Path: p,
		Message: clip(fmt.Sprintf("the mirror %s: %s cannot be audited: ", a.loc, p)+fmt.Sprintf(format, args...), maxMessage)})
}

func (a *mirrorAudit) add(f Finding) error {
	if a.counts != nil {
		if a.counts[f.Kind]++; a.counts[f.Kind] > maxMirrorGroup {
			d := a.dropped[f.Kind]
			if d == nil {
				d = &droppedFindings{}
				a.dropped[f.Kind] = d
			}
			d.n++
			d.security = d.security || f.Security
			return nil
		}
	}
	a.pending = append(a.pending, f)
	if len(a.pending) >= mirrorFlush {
		return a.flush()
	}
	return nil
}

func (a *mirrorAudit) flush() error {
	err := a.m.st.recordNow(a.pending...)
	a.pending = a.pending[:0]
	return err
}

// logged returns the latest record of p, if it is an upload, and its slot.
func (a *mirrorAudit) logged(p string) (int, upload, bool, error) {
	slot, _, _, rec, found, err := a.u.probe(p, hashPath(a.u.seed, p))
	if err != nil || !found || rec.Deleted {
		return 0, upload{}, false, err
	}
	return slot, rec, true, nil
}

// compare checks one mirror file (or CHECKSUMS claim) against the log;
// has says the mirror has the file (a file it serves, or listed in the
// CHECKSUMS of an HTTP mirror).
func (a *mirrorAudit) compare(p string, size uint64, sum [32]byte, source string, has bool) error {
	slot, u, ok, err := a.logged(p)
	switch {
	case err != nil:
		return err
	case !ok:
		return a.add(mirrorFinding(KindMirrorUnlogged, false, p, sum[:], "the mirror %s serves %s (%s), which the log never recorded: do not install it", a.loc, p, source))
	}
	if has {
		a.seen[slot/64] |= 1 << (slot % 64)
	}
	if u.SHA256 != sum || u.Size != size {
		// A documentation file may legitimately lag behind its latest upload.
		return a.add(mirrorFinding(KindMirrorMismatch, !cpan.MayOverwrite(p), p, sum[:], "the mirror %s serves %s with sha256 %s and %d bytes (%s), the log recorded sha256 %s and %d bytes (index %d)",
			a.loc, p, hex.EncodeToString(sum[:]), size, source, hex.EncodeToString(u.SHA256[:]), u.Size, u.Index))
	}
	return nil
}

// auditLocal hashes every file under root/authors/id, following symlinks
// as a web server serving the tree would, and checks every CHECKSUMS.
func (a *mirrorAudit) auditLocal(ctx context.Context, root string) error {
	base := filepath.Join(root, "authors", "id")
	real, err := filepath.EvalSymlinks(base)
	if err != nil {
		return fmt.Errorf("%s is not a CPAN mirror: %w", root, err)
	}
	if st, err := os.Stat(real); err != nil || !st.IsDir() {
		return fmt.Errorf("%s is not a CPAN mirror: %s is not a directory", root, base)
	}
	w := &mirrorWalk{a: a, ctx: ctx, root: root, visits: map[string]int{}}
	return w.dir("authors/id", real, nil)
}

// mirrorWalk walks a local mirror, following symlinks.
type mirrorWalk struct {
	a      *mirrorAudit
	ctx    context.Context
	root   string
	visits map[string]int // real directory → times walked
	n      int
}

// dir walks the directory at p (from the mirror's root), whose real path
// is real; stack holds the real paths of the directories above it.
func (w *mirrorWalk) dir(p, real string, stack []string) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if slices.Contains(stack, real) {
		return w.a.unauditable(p, "it is a symlink to a directory above it (%s): a web server following symlinks serves it at ever longer paths, which are not audited", real)
	}
	if w.visits[real] >= maxDirVisits {
		return w.a.unauditable(p, "it is one of more than %d paths to the directory %s through symlinks: the files under it at this path are not audited", maxDirVisits, real)
	}
	w.visits[real]++
	entries, err := os.ReadDir(filepath.Join(w.root, filepath.FromSlash(p)))
	if err != nil {
		// What it did list is audited.
		if uerr := w.a.unauditable(p, "the directory cannot be listed: %v", err); uerr != nil {
			return uerr
		}
	}
	stack = append(stack, real)
	// The directory's files first, as one group of findings, then its
	// subdirectories.
	type subdir struct{ p, real string }
	var subdirs []subdir
	w.a.startGroup(p)
	for _, d := range entries {
		fp := path.Join(p, d.Name())
		full := filepath.Join(w.root, filepath.FromSlash(fp))
		t := d.Type()
		if t&fs.ModeSymlink != 0 {
			// Judged by what it resolves to, as a web server serves it.
			st, err := os.Stat(full)
			if err != nil {
				if err := w.a.unauditable(fp, "it is a symlink that does not resolve: %v", err); err != nil {
					return err
				}
				continue
			}
			t = st.Mode().Type()
			if st.IsDir() {
				target, err := filepath.EvalSymlinks(full)
				if err != nil {
					if err := w.a.unauditable(fp, "it is a symlink that does not resolve: %v", err); err != nil {
						return err
					}
					continue
				}
				subdirs = append(subdirs, subdir{fp, target})
				continue
			}
		}
		switch {
		case t.IsDir():
			subdirs = append(subdirs, subdir{fp, filepath.Join(real, d.Name())})
		case t.IsRegular():
			if err := w.file(fp, full, d.Name()); err != nil {
				return err
			}
		}
		// Anything else (a device, a FIFO, a socket) is not served.
	}
	if err := w.a.endGroup(); err != nil {
		return err
	}
	for _, d := range subdirs {
		if err := w.dir(d.p, d.real, stack); err != nil {
			return err
		}
	}
	return nil
}

// file audits one regular file (or symlink to one) of the mirror.
func (w *mirrorWalk) file(p, full, name string) error {
	a := w.a
	if name == "CHECKSUMS" {
		b, err := readBounded(full, maxMirrorChecksums)
		if err != nil {
			return a.unauditable(p, "%v", err)
		}
		return a.checksums(path.Dir(p), b, false)
	}
	if _, err := cpan.ValidatePath(p); err != nil {
		return nil // not an upload path (e.g. a mirror's own files)
	}
	size, sum, err := hashFile(full)
	if err != nil {
		return a.unauditable(p, "%v", err)
	}
	if err := a.compare(p, size, sum, "file", true); err != nil {
		return err
	}
	if w.n++; w.n%1000 == 0 {
		fmt.Fprintf(a.m.cfg.Progress, "audit-mirror: %d files checked\n", w.n)
	}
	return nil
}

// readBounded reads a regular file of at most limit bytes, refusing a
// larger one before reading more than limit+1 bytes of it.
func readBounded(name string, limit int64) ([]byte, error) {
	f, err := openRegular(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// A regular file says its size: a larger one is not read at all.
	if st, err := f.Stat(); err != nil || st.Size() > limit {
		return nil, errors.Join(err, fmt.Errorf("it is larger than %d bytes", limit))
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("it is larger than %d bytes", limit)
	}
	return b, nil
}

// openRegular opens a file, following symlinks, only if it is a regular
// file (a FIFO would block the audit).
func openRegular(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("it is not a regular file (%s)", st.Mode().Type())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checksums compares what a directory's CHECKSUMS claims with the log;
// has: the mirror is taken to have the files it lists (an HTTP mirror,
// whose files are not listed otherwise).
func (a *mirrorAudit) checksums(dir string, b []byte, has bool) error {
	files, _, err := cpan.ParseChecksums(b)
	if err != nil {
		return a.unauditable(dir+"/CHECKSUMS", "it is not a CHECKSUMS file this audit can read: %v", err)
	}
	for name, c := range files {
		if c.IsDir {
			continue
		}
		p := dir + "/" + name
		if !c.HasSHA256 || c.Size == nil {
			// Nothing to compare, but the mirror has it.
			if has {
				if slot, _, ok, err := a.logged(p); err != nil {
					return err
				} else if ok {
					a.seen[slot/64] |= 1 << (slot % 64)
				}
			}
			continue
		}
		if err := a.compare(p, *c.Size, *c.SHA256, "per its CHECKSUMS", has); err != nil {
			return err
		}
	}
	return nil
}

func hashFile(fp string) (uint64, [32]byte, error) {
	var sum [32]byte
	f, err := openRegular(fp)
	if err != nil {
		return 0, sum, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, maxMirrorFile+1))
	if err != nil {
		return 0, sum, err
	}
	if n > maxMirrorFile {
		return 0, sum, fmt.Errorf("it is larger than %d bytes, more than this audit hashes", maxMirrorFile)
	}
	copy(sum[:], h.Sum(nil))
	return uint64(n), sum, nil
}

// auditHTTP fetches the CHECKSUMS of every directory holding logged
// uploads and compares them with the log.
func (a *mirrorAudit) auditHTTP(ctx context.Context, base string) error {
	dirs := map[string]bool{}
	err := a.u.each(func(p string, rec upload) error {
		if !rec.Deleted {
			dirs[path.Dir(p)] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	for dir := range dirs {
		b, err := a.m.get(ctx, base+"/"+dir+"/CHECKSUMS", maxMirrorChecksums)
		switch {
		case errors.Is(err, errNotFound):
			continue // every logged file there is reported missing
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			if err := a.unauditable(dir+"/CHECKSUMS", "%v", err); err != nil {
				return err
			}
			continue
		}
		a.startGroup(dir)
		if err := a.checksums(dir, b, true); err != nil {
			return err
		}
		if err := a.endGroup(); err != nil {
			return err
		}
	}
	return nil
}

var errNotFound = errors.New("not found")

// get fetches a URL, bounded; a 404 is errNotFound.
func (m *Monitor) get(ctx context.Context, u string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := m.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, errNotFound
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("GET %s: larger than %d bytes (%d)", u, limit, resp.ContentLength)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err == nil && int64(len(b)) > limit {
		return nil, fmt.Errorf("GET %s: larger than %d bytes", u, limit)
	}
	return b, err
}
