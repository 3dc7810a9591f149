package prooftree

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/CPAN-Security/cpan-tlog/internal/atomicfile"
	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
)

// Publish copies the proof tree of the log in dataDir into a CPAN
// mirror's root (as tlog/proofs/...), for its rsync: the files the target
// lacks or holds with other bytes (a copy cut short, or a proof since
// rewritten), each written atomically, so it is idempotent and resumable.
// A damaged file in the log's own tree is not copied: it is reported (the
// server rewrites it when it starts or is asked for it), and the error
// says so once the rest is copied.
func Publish(dataDir, to string) (copied, kept int, err error) {
	src := filepath.Join(dataDir, Dir)
	if _, err := os.Stat(src); err != nil {
		return 0, 0, fmt.Errorf("no proof tree in %s (is it a cpan-tlog data directory whose server has run?): %w", dataDir, err)
	}
	var damaged []string
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".tlog-proof") {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !FileIntact(filepath.ToSlash(rel), b) {
			damaged = append(damaged, rel)
			return nil
		}
		dst := filepath.Join(to, rel)
		if have, err := os.ReadFile(dst); err == nil && bytes.Equal(have, b) {
			kept++
			return nil
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := atomicfile.Write(dst, b, 0o644); err != nil {
			return err
		}
		copied++
		return nil
	})
	if err == nil && len(damaged) > 0 {
		err = fmt.Errorf("%d proof files in %s are damaged and were not copied (first: %s); the server rewrites them (it checks every proof file when it starts, and any it is asked for): restart it or fetch them through it, then publish again", len(damaged), src, damaged[0])
	}
	return copied, kept, err
}

// Missing lists the files of the CPAN mirror at root whose proof the
// mirror does not publish (at root/tlog/proofs/, as Publish writes
// it): every file under authors/id/ but the CHECKSUMS files (PAUSE signs
// those; the log does not hold them), and each index file of
// cpan.IndexPaths the mirror has. For an index or documentation file, whose
// proof names its content, it is the proof of the bytes the mirror holds
// now: a proof of an older version does not count. A proof file that does
// not parse, or is of another path or content, is missing too. It returns
// CPAN paths, sorted; a client that verifies with the mirror's proofs only
// (the log down) refuses to go on at each.
func Missing(root string) ([]string, error) {
	var missing []string
	check := func(p, full string) error {
		var sha [32]byte // an upload's proof is named by its path alone
		if cpan.IsIndexPath(p) || cpan.MayOverwrite(p) {
			f, err := os.Open(full)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			h.Sum(sha[:0])
		}
		name := cpan.ProofPath(p, sha)
		if b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name))); err != nil || !FileIntact(name, b) {
			missing = append(missing, p)
		}
		return nil
	}
	base := filepath.Join(root, "authors", "id")
	err := filepath.WalkDir(base, func(full string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && full == base {
			return nil // no uploads: only the index files to look at
		}
		if err != nil || d.IsDir() || d.Name() == "CHECKSUMS" {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			// Served as the file it resolves to; a directory is walked by
			// whoever serves it, not here.
			if fi, err := os.Stat(full); err != nil || !fi.Mode().IsRegular() {
				return nil
			}
		} else if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(root, full)
		if err != nil {
			return err
		}
		return check(filepath.ToSlash(rel), full)
	})
	if err != nil {
		return nil, err
	}
	for _, p := range cpan.IndexPaths {
		full := filepath.Join(root, filepath.FromSlash(p))
		if _, err := os.Stat(full); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := check(p, full); err != nil {
			return nil, err
		}
	}
	sort.Strings(missing)
	return missing, nil
}
