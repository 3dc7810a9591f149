// Package audit reads what a Perl project has installed (the install
// records cpanm and Carton leave in a local/ tree) and the CPAN security
// advisories (the CPANSA database as CPAN::Audit ships it), and says which
// advisories name a distribution's version, comparing versions as
// CPAN::Audit does (version.pm's rules). Checking the files against the
// log is the client's job (cpantlog audit).
//
// It promises: an advisory whose range or version it cannot compare is
// reported as one that may apply, never dropped.
package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
)

// ParseLocal reads the install records cpanm (and Carton) leave in a
// local/ tree: lib/perl5/*/.meta/*/install.json, each naming the pathname
// the distribution was installed from.
func ParseLocal(dir string) ([]cpan.SnapshotDist, error) {
	metas, err := filepath.Glob(filepath.Join(dir, "lib", "perl5", "*", ".meta", "*", "install.json"))
	if err != nil {
		return nil, err
	}
	if len(metas) == 0 {
		return nil, fmt.Errorf("%s holds no install records (lib/perl5/*/.meta/*/install.json): is it a local/ tree cpanm or Carton installed into?", dir)
	}
	var pins []cpan.SnapshotDist
	for _, m := range metas {
		b, err := readBounded(m, 1<<20)
		if err != nil {
			return nil, err
		}
		var rec struct {
			Pathname string `json:"pathname"`
			Name     string `json:"name"`
			Dist     string `json:"dist"`
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, fmt.Errorf("%s: %w", m, err)
		}
		if _, err := cpan.ValidatePath(cpan.AuthorsPrefix + rec.Pathname); err != nil {
			return nil, fmt.Errorf("%s: pathname %q: %v", m, rec.Pathname, err)
		}
		name := rec.Dist
		if name == "" {
			name = cpan.ParseDistInfo(rec.Pathname).DistVName
		}
		pins = append(pins, cpan.SnapshotDist{Name: name, Pathname: rec.Pathname})
	}
	return pins, nil
}

func readBounded(name string, limit int64) ([]byte, error) {
	// A named pipe or device would block the open or the read.
	if st, err := os.Stat(name); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = fmt.Errorf("%s is larger than %d bytes", name, limit)
	}
	return b, err
}

// Advisory is one CPANSA advisory.
type Advisory struct {
	ID               string   `json:"id"`
	Distribution     string   `json:"distribution"`
	AffectedVersions Ranges   `json:"affected_versions"`
	FixedVersions    Ranges   `json:"fixed_versions"`
	Severity         string   `json:"severity"`
	CVEs             []string `json:"cves"`
	Description      string   `json:"description"`
}

// Ranges are an advisory's version ranges: one (">=1.0,<1.5") or several,
// any of which may hold (CPANSA writes several as a list: MT's
// ">=7,<=7.9.4", ">=6,<=6.8.6"). CPAN::Audit 20230309 passes a list to
// its range check as one string, which never parses, so it misses every
// such advisory; here each range is checked.
type Ranges []string

// UnmarshalJSON takes a string, a list of strings, or null.
func (r *Ranges) UnmarshalJSON(b []byte) error {
	var one *string
	if err := json.Unmarshal(b, &one); err == nil {
		*r = nil
		if one != nil && *one != "" {
			*r = Ranges{*one}
		}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("version ranges: want a string or a list of strings: %w", err)
	}
	*r = many
	return nil
}

func (r Ranges) String() string { return strings.Join(r, " or ") }

// holds reports whether version is in any of the ranges; an error when a
// range or the version cannot be compared (and none held).
func (r Ranges) holds(version string) (bool, error) {
	var firstErr error
	for _, rng := range r {
		in, err := InRange(version, rng)
		if in {
			return true, nil
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return false, firstErr
}

// DB is the CPANSA database: advisories by distribution.
type DB struct {
	Dists map[string]struct {
		Advisories []Advisory `json:"advisories"`
	} `json:"dists"`
}

// MaxDBSize bounds the advisory database (CPAN::Audit's is about 3 MB).
const MaxDBSize = 64 << 20

// ParseDB reads the database as CPAN::Audit::DB->db encodes to JSON.
func ParseDB(b []byte) (*DB, error) {
	if len(b) > MaxDBSize {
		return nil, fmt.Errorf("advisory database: %d bytes, more than %d", len(b), MaxDBSize)
	}
	var db DB
	if err := json.Unmarshal(b, &db); err != nil {
		return nil, fmt.Errorf("advisory database: %w", err)
	}
	if len(db.Dists) == 0 {
		return nil, errors.New("advisory database: no distributions (is it CPAN::Audit::DB->db as JSON?)")
	}
	return &db, nil
}

// LoadInstalledDB asks the Perl on PATH for CPAN::Audit's database
// (Debian's libcpan-audit-perl, or CPAN::Audit from CPAN).
func LoadInstalledDB(ctx context.Context) (*DB, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "perl", "-MCPAN::Audit::DB", "-MJSON::PP", "-e", "print JSON::PP->new->canonical->encode(CPAN::Audit::DB->db)")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &limitedWriter{&out, MaxDBSize + 1}, &limitedWriter{&errb, 4096}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("could not read the CPAN security advisories from CPAN::Audit (install it: apt-get install libcpan-audit-perl, or cpanm CPAN::Audit; or pass --advisories FILE): %v %s", err, strings.TrimSpace(errb.String()))
	}
	return ParseDB(out.Bytes())
}

type limitedWriter struct {
	w *bytes.Buffer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.w.Len()+len(p) > l.n {
		return 0, errors.New("output too large")
	}
	return l.w.Write(p)
}

// Affecting returns the advisories whose affected range holds the
// version of d (its distribution and version as CPAN::DistnameInfo reads
// its pathname). A range or version that does not parse is returned too,
// with the error: the advisory could not be ruled out.
func (db *DB) Affecting(d cpan.SnapshotDist) (dist, version string, hits []Advisory, unsure []error) {
	info := cpan.ParseDistInfo(d.Pathname)
	for _, a := range db.Dists[info.Dist].Advisories {
		// As CPAN::Audit: affected, unless a fixed range says otherwise.
		in, err := a.AffectedVersions.holds(info.Version)
		if len(a.AffectedVersions) == 0 {
			// No affected range (CPANSA-XML-Twig-2016-9180: every
			// version): CPAN::Audit drops it; it cannot be ruled out.
			in, err = false, errors.New("the advisory names no affected versions: it may apply to every version")
			if fixed, ferr := a.FixedVersions.holds(info.Version); ferr == nil && fixed {
				err = nil
			}
		}
		if err == nil && in && len(a.FixedVersions) > 0 {
			if fixed, ferr := a.FixedVersions.holds(info.Version); ferr == nil && fixed {
				in = false
			}
		}
		switch {
		case err != nil:
			hits = append(hits, a)
			unsure = append(unsure, fmt.Errorf("%s: cannot compare version %q with %q: %v", a.ID, info.Version, a.AffectedVersions, err))
		case in:
			hits = append(hits, a)
		}
	}
	return info.Dist, info.Version, hits, unsure
}
