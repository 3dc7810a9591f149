// Package ingest feeds the log from CPAN as it is today: Follower polls a
// mirror's RECENT files and logs each new upload or deletion; Import
// back-fills from a local CPAN tree. Both hash every file themselves and
// check it against its directory's CHECKSUMS; a file that disagrees is
// reported and not logged.
package ingest

import (
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client/sigstore"
	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// ErrChecksums means a file disagrees with its directory's CHECKSUMS.
var ErrChecksums = errors.New("file does not match CHECKSUMS")

// checkAgainst compares a file with its CHECKSUMS record, when there is one.
func checkAgainst(sums map[string]cpan.Checksum, p string, size uint64, sha [32]byte) error {
	c, ok := sums[path.Base(p)]
	if !ok || c.IsDir {
		return nil
	}
	if c.Size != nil && *c.Size != size {
		return fmt.Errorf("%w: %s is %d bytes, CHECKSUMS says %d", ErrChecksums, p, size, *c.Size)
	}
	if c.HasSHA256 && *c.SHA256 != sha {
		return fmt.Errorf("%w: %s has sha256 %x, CHECKSUMS says %x", ErrChecksums, p, sha, *c.SHA256)
	}
	return nil
}

// uploadEntry builds the entry for a file under authors/id/: the uploader
// is the author directory's PAUSE id.
func uploadEntry(p string, size uint64, sha [32]byte, when time.Time) (*entry.Entry, error) {
	id, err := cpan.ValidatePath(p)
	if err != nil {
		return nil, err
	}
	return &entry.Entry{Kind: entry.Upload, Path: p, Size: size, SHA256: sha, Uploader: id, Time: when.UTC().Truncate(time.Second)}, nil
}

// isChecksums reports whether p is a CHECKSUMS file, which PAUSE writes
// itself and rewrites constantly: it is not an upload.
func isChecksums(p string) bool { return path.Base(p) == "CHECKSUMS" }

// annotate verifies a .sigstore.json upload when the log has a trusted
// root; a bundle that fails is logged plain and reported. It reports
// whether the entry carries what it should: false only for a bundle that
// did not verify.
func annotate(l *tlog.Log, e *entry.Entry, content []byte, logger *slog.Logger) bool {
	if !strings.HasSuffix(e.Path, sigstore.BundleSuffix) || !l.VerifiesSigstore() {
		return true
	}
	if err := l.AnnotateSigstore(e, content); err != nil {
		logger.Warn("sigstore bundle did not verify; logging it as a plain upload", "path", e.Path, "err", err)
		return false
	}
	return true
}
