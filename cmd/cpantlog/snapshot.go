package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
)

func snapshotCmd(args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("snapshot", "snapshot cpanfile.snapshot [--mirror URL|DIR]\n\n"+
		"Verify every distribution a Carton snapshot pins against the log, reading each from the\n"+
		"mirror (a URL, or a directory such as vendor/cache holding authors/id/...).", stderr,
		"cpantlog snapshot cpanfile.snapshot",
		"cpantlog snapshot cpanfile.snapshot --mirror vendor/cache")
	mirror := fs.String("mirror", "", "where the tarballs are: a CPAN mirror URL or a local tree (default: vendor/cache beside the snapshot if present, else local/cache where carton install keeps them, else https://cpan.metacpan.org)")
	jobs := fs.Int("jobs", 8, "verifications in parallel")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return errors.New("want exactly one cpanfile.snapshot")
	}
	b, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	dists, err := cpan.ParseSnapshot(b)
	if err != nil {
		return err
	}
	if *mirror == "" {
		*mirror = defaultMirror(filepath.Dir(pos[0]))
	}
	v, err := c.firstLogVerifier()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	return verifyDists(ctx, v, dists, *mirror, *jobs, stdout)
}

// defaultMirror is where the tarballs of a project in dir are: vendor/cache
// (carton bundle) or local/cache (carton install) when there, else the
// public CPAN.
func defaultMirror(dir string) string {
	mirror := "https://cpan.metacpan.org"
	for _, cache := range []string{"local/cache", "vendor/cache"} {
		if d := filepath.Join(dir, filepath.FromSlash(cache)); isDir(d) {
			mirror = d
		}
	}
	return mirror
}

// verifyDists verifies each distribution's tarball, read from mirror,
// against the log, prints a table, and returns the worst verdict.
func verifyDists(ctx context.Context, v *client.Verifier, dists []cpan.SnapshotDist, mirror string, jobs int, stdout io.Writer) error {
	errs := make([]error, len(dists))
	results := make([]*client.Result, len(dists))
	sem := make(chan struct{}, max(1, jobs))
	var wg sync.WaitGroup
	httpClient := client.NewHTTPClient(5 * time.Minute)
	for i, d := range dists {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			f, err := fetchFile(ctx, httpClient, mirror, d.Path())
			if err == nil {
				results[i], err = v.VerifyFile(ctx, f)
			}
			errs[i] = err
		})
	}
	wg.Wait()

	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DISTRIBUTION\tRESULT\tDETAIL")
	failed, unchecked, security := 0, 0, false
	for i, d := range dists {
		switch client.ExitCode(errs[i]) {
		case client.ExitOK:
		case client.ExitSecurity, client.ExitNotVerified:
			failed++
			security = security || client.ExitCode(errs[i]) == client.ExitSecurity
			fmt.Fprintf(tw, "%s\tFAILED\t%s\n", d.Name, firstLine(errs[i].Error()))
			continue
		default:
			// The file or the log could not be read: nothing is known.
			unchecked++
			fmt.Fprintf(tw, "%s\tUNCHECKED\tcould not check: %s\n", d.Name, firstLine(errs[i].Error()))
			continue
		}
		fmt.Fprintf(tw, "%s\tverified\tindex %d, checkpoint %d\n", d.Name, results[i].Index, results[i].Checkpoint.Size)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "%d of %d distributions verified\n", len(dists)-failed-unchecked, len(dists))
	// The table said why; the error keeps only the class, for the exit code.
	switch {
	case security:
		return fmt.Errorf("%d distribution(s) failed verification (%w)", failed, client.ErrSecurity)
	case failed > 0:
		return fmt.Errorf("%d distribution(s) failed verification (%w)", failed, client.ErrNotVerified)
	case unchecked > 0:
		return fmt.Errorf("could not check %d distribution(s): the files or the log could not be read (see the table); nothing is known about them", unchecked)
	}
	return nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// fetchFile reads a CPAN path from a mirror URL or tree, hashing it.
func fetchFile(ctx context.Context, hc *http.Client, mirror, cpanPath string) (client.File, error) {
	var r io.Reader
	if strings.HasPrefix(mirror, "http://") || strings.HasPrefix(mirror, "https://") {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(mirror, "/")+"/"+cpanPath, nil)
		if err != nil {
			return client.File{}, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return client.File{}, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return client.File{}, fmt.Errorf("GET %s: %s", req.URL, resp.Status)
		}
		r = resp.Body
	} else {
		f, err := os.Open(filepath.Join(mirror, filepath.FromSlash(cpanPath)))
		if err != nil {
			return client.File{}, err
		}
		defer f.Close()
		r = f
	}
	return client.HashReader(io.LimitReader(r, 1<<30), cpanPath)
}
