package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/client/audit"
	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
)

func auditCmd(args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("audit", "audit [--mirror URL|DIR] [--advisories FILE|none] cpanfile.snapshot|local/\n\n"+
		"Check what a project pins or installed against the log and the CPAN security advisories:\n"+
		"each distribution of a Carton cpanfile.snapshot, or installed in a local/ tree by cpanm or\n"+
		"Carton, is read from the mirror and verified (logged, bytes as logged), as\n"+
		"'cpantlog snapshot' does; then each CPANSA advisory (CPAN::Audit's database) naming its\n"+
		"version is listed.\n\n"+
		"Exit status: 0 all verified, no advisory; 1 a distribution not verified, or an advisory;\n"+
		"2 could not check (files, the log or the advisories unavailable); 3 security error.", stderr,
		"cpantlog audit cpanfile.snapshot",
		"cpantlog audit --mirror vendor/cache cpanfile.snapshot",
		"cpantlog audit --advisories none local/")
	mirror := fs.String("mirror", "", "where the tarballs are: a CPAN mirror URL or a local tree (default: vendor/cache or local/cache beside the snapshot or local/ tree, else https://cpan.metacpan.org)")
	jobs := fs.Int("jobs", 8, "verifications in parallel")
	advisories := fs.String("advisories", "", "the CPANSA database as JSON (CPAN::Audit::DB->db), or 'none' to skip advisories (default: CPAN::Audit's, through perl; Debian: libcpan-audit-perl)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return errors.New("want exactly one cpanfile.snapshot or local/ directory")
	}
	var dists []cpan.SnapshotDist
	project := filepath.Dir(pos[0])
	if isDir(pos[0]) {
		project = filepath.Dir(filepath.Clean(pos[0]))
		if dists, err = audit.ParseLocal(pos[0]); err != nil {
			return err
		}
	} else {
		b, err := os.ReadFile(pos[0])
		if err != nil {
			return err
		}
		if dists, err = cpan.ParseSnapshot(b); err != nil {
			return err
		}
	}
	if *mirror == "" {
		*mirror = defaultMirror(project)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	// The advisories first: without them (and no --advisories none) the
	// audit could not be done, and nothing is fetched.
	var db *audit.DB
	switch *advisories {
	case "none":
	case "":
		if db, err = audit.LoadInstalledDB(ctx); err != nil {
			return err
		}
	default:
		b, err := os.ReadFile(*advisories)
		if err != nil {
			return err
		}
		if db, err = audit.ParseDB(b); err != nil {
			return err
		}
	}
	v, err := c.firstLogVerifier()
	if err != nil {
		return err
	}
	verr := verifyDists(ctx, v, dists, *mirror, *jobs, stdout)
	if db == nil {
		fmt.Fprintln(stdout, "advisories: not checked (--advisories none)")
		return verr
	}
	n := 0
	for _, d := range dists {
		dist, version, hits, unsure := db.Affecting(d)
		for _, a := range hits {
			n++
			fmt.Fprintf(stdout, "ADVISORY %s%s: %s %s (%s) is in %s%s\n", a.ID, cves(a), dist, version, d.Path(), quoted(a.AffectedVersions), fixed(a))
		}
		for _, e := range unsure {
			fmt.Fprintf(stdout, "  (it may not apply: %v)\n", e)
		}
	}
	fmt.Fprintf(stdout, "advisories: %d naming %d distributions checked\n", n, len(dists))
	if verr == nil && n > 0 {
		return client.NotVerified("%d advisories name distributions the project uses", n)
	}
	return verr
}

func cves(a audit.Advisory) string {
	if len(a.CVEs) == 0 {
		return ""
	}
	return " (" + strings.Join(a.CVEs, ", ") + ")"
}

func fixed(a audit.Advisory) string {
	if len(a.FixedVersions) == 0 {
		return "; no fixed release named"
	}
	return "; fixed in " + quoted(a.FixedVersions)
}

// quoted lists ranges, each quoted: "<=1.36" or ">=7,<7.8.0" or ">=6,<=6.8.0".
func quoted(r audit.Ranges) string {
	q := make([]string, len(r))
	for i, s := range r {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, " or ")
}
