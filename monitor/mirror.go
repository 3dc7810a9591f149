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
	"sort"
	"strings"

	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
)

// Mirror finding kinds.
const (
	KindMirrorUnlogged = "mirror-unlogged" // the mirror serves a file the log never recorded
	KindMirrorMismatch = "mirror-mismatch" // the mirror's file or CHECKSUMS differs from the log: security
	KindMirrorMissing  = "mirror-missing"  // a logged, undeleted upload is not on the mirror
)

// maxMirrorFile bounds a file downloaded or hashed from a mirror.
const maxMirrorFile = 1 << 30

// AuditMirror brings the audit up to date, then compares a CPAN mirror
// with the log: a local tree (every file under authors/id is hashed, and
// every CHECKSUMS file is checked) or an HTTP mirror (the CHECKSUMS file of
// every directory the log has uploads in). Findings go to the outbox.
func (m *Monitor) AuditMirror(ctx context.Context, loc string) error {
	if err := m.Sync(ctx); err != nil {
		return fmt.Errorf("bring the audit up to date first: %w", err)
	}
	logged, err := m.loggedUploads()
	if err != nil {
		return err
	}
	var seen map[string]bool
	var findings []Finding
	if strings.HasPrefix(loc, "http://") || strings.HasPrefix(loc, "https://") {
		seen, findings, err = m.auditHTTPMirror(ctx, strings.TrimSuffix(loc, "/"), logged)
	} else {
		seen, findings, err = m.auditLocalMirror(loc, logged)
	}
	if err != nil {
		return err
	}
	paths := make([]string, 0, len(logged))
	for p := range logged {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if !seen[p] {
			u := logged[p]
			findings = append(findings, mirrorFinding(KindMirrorMissing, false, p, u.SHA256[:], "%s is logged (index %d) but the mirror %s does not have it", p, u.Index, loc))
		}
	}
	return m.st.recordNow(findings...)
}

func mirrorFinding(kind string, security bool, p string, sum []byte, format string, args ...any) Finding {
	return Finding{ID: fmt.Sprintf("%s:%s:%x", kind, p, sum), Kind: kind, Security: security, Path: p, Message: fmt.Sprintf(format, args...)}
}

// loggedUploads returns every path whose latest entry is an upload.
func (m *Monitor) loggedUploads() (map[string]upload, error) {
	out := map[string]upload{}
	err := m.st.uploads.each(func(p string, rec upload) error {
		if !rec.Deleted {
			out[p] = rec
		}
		return nil
	})
	return out, err
}

// compare checks one mirror file (or CHECKSUMS claim) against the log.
func compare(logged map[string]upload, p string, size uint64, sum [32]byte, source, loc string) *Finding {
	u, ok := logged[p]
	switch {
	case !ok:
		f := mirrorFinding(KindMirrorUnlogged, false, p, sum[:], "the mirror %s serves %s (%s), which the log never recorded: do not install it", loc, p, source)
		return &f
	case u.SHA256 != sum || u.Size != size:
		// A documentation file may legitimately lag behind its latest upload.
		f := mirrorFinding(KindMirrorMismatch, !cpan.MayOverwrite(p), p, sum[:], "the mirror %s serves %s with sha256 %s and %d bytes (%s), the log recorded sha256 %s and %d bytes (index %d)",
			loc, p, hex.EncodeToString(sum[:]), size, source, hex.EncodeToString(u.SHA256[:]), u.Size, u.Index)
		return &f
	}
	return nil
}

func (m *Monitor) auditLocalMirror(root string, logged map[string]upload) (map[string]bool, []Finding, error) {
	base := filepath.Join(root, "authors", "id")
	if _, err := os.Stat(base); err != nil {
		return nil, nil, fmt.Errorf("%s is not a CPAN mirror: %w", root, err)
	}
	seen := map[string]bool{}
	var findings []Finding
	n := 0
	err := filepath.WalkDir(base, func(fp string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(root, fp)
		p := filepath.ToSlash(rel)
		if d.Name() == "CHECKSUMS" {
			fs, err := checkChecksums(p, fp, logged, root)
			findings = append(findings, fs...)
			return err
		}
		if _, err := cpan.ValidatePath(p); err != nil {
			return nil // not an upload path (e.g. a mirror's own files)
		}
		size, sum, err := hashFile(fp)
		if err != nil {
			return err
		}
		seen[p] = true
		if f := compare(logged, p, size, sum, "file", root); f != nil {
			findings = append(findings, *f)
		}
		if n++; n%1000 == 0 {
			fmt.Fprintf(m.cfg.Progress, "audit-mirror: %d files checked\n", n)
		}
		return nil
	})
	return seen, findings, err
}

func checkChecksums(p, fp string, logged map[string]upload, loc string) ([]Finding, error) {
	b, err := os.ReadFile(fp)
	if err != nil {
		return nil, err
	}
	return checksumsFindings(path.Dir(p), b, logged, loc), nil
}

// checksumsFindings compares what a directory's CHECKSUMS claims with the log.
func checksumsFindings(dir string, b []byte, logged map[string]upload, loc string) []Finding {
	files, _, err := cpan.ParseChecksums(b)
	if err != nil {
		f := mirrorFinding(KindMirrorMismatch, false, dir+"/CHECKSUMS", nil, "the mirror %s serves an unreadable %s/CHECKSUMS: %v", loc, dir, err)
		return []Finding{f}
	}
	var out []Finding
	for name, c := range files {
		if c.IsDir || !c.HasSHA256 || c.Size == nil {
			continue
		}
		if f := compare(logged, dir+"/"+name, *c.Size, *c.SHA256, "per its CHECKSUMS", loc); f != nil {
			out = append(out, *f)
		}
	}
	return out
}

func hashFile(fp string) (uint64, [32]byte, error) {
	var sum [32]byte
	f, err := os.Open(fp)
	if err != nil {
		return 0, sum, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, maxMirrorFile))
	copy(sum[:], h.Sum(nil))
	return uint64(n), sum, err
}

// auditHTTPMirror fetches the CHECKSUMS of every directory holding logged
// uploads and compares them with the log.
func (m *Monitor) auditHTTPMirror(ctx context.Context, base string, logged map[string]upload) (map[string]bool, []Finding, error) {
	dirs := map[string]bool{}
	for p := range logged {
		dirs[path.Dir(p)] = true
	}
	seen := map[string]bool{}
	var findings []Finding
	for dir := range dirs {
		b, err := m.get(ctx, base+"/"+dir+"/CHECKSUMS", cpan.MaxChecksumsSize)
		if errors.Is(err, errNotFound) {
			continue // every logged file there is reported missing below
		}
		if err != nil {
			return nil, nil, err
		}
		findings = append(findings, checksumsFindings(dir, b, logged, base)...)
		files, _, err := cpan.ParseChecksums(b)
		if err != nil {
			continue
		}
		for name, c := range files {
			if !c.IsDir {
				seen[dir+"/"+name] = true
			}
		}
	}
	return seen, findings, nil
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
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err == nil && int64(len(b)) > limit {
		return nil, fmt.Errorf("GET %s: larger than %d bytes", u, limit)
	}
	return b, err
}
