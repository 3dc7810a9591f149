package proxy

import (
	"fmt"
	"io"
	"sort"
	"sync"
)

// Journal records the proxy's decisions, for a summary at the end of an
// install: clients such as cpanm hide a 403's body, so the reasons are
// shown here instead.
type Journal struct {
	mu        sync.Mutex
	verified  map[string]bool
	refusals  []Decision
	unreached []Decision
}

// Decision is one refused or unverifiable request.
type Decision struct {
	URL, Path, Reason string
}

func (j *Journal) add(decision, url, cpanPath, reason string) {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	switch decision {
	case "verified", "cached":
		if j.verified == nil {
			j.verified = map[string]bool{}
		}
		j.verified[cpanPath] = true
	case "refused", "not_proxied":
		j.refusals = append(j.refusals, Decision{URL: url, Path: cpanPath, Reason: reason})
	case "log_unreachable", "error":
		j.unreached = append(j.unreached, Decision{URL: url, Path: cpanPath, Reason: reason})
	}
}

// Counts returns how many distinct files verified, how many requests were
// refused, and how many could not be checked (log or upstream unreachable).
func (j *Journal) Counts() (verified, refused, unchecked int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.verified), len(j.refusals), len(j.unreached)
}

// Summary writes what was verified and every refusal with its reason.
func (j *Journal) Summary(w io.Writer) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var files []string
	for p := range j.verified {
		files = append(files, p)
	}
	sort.Strings(files)
	fmt.Fprintf(w, "cpantlog: %d files verified against the log", len(files))
	if len(files) > 0 {
		fmt.Fprint(w, ":")
	}
	fmt.Fprintln(w)
	for _, f := range files {
		fmt.Fprintf(w, "  ok       %s\n", f)
	}
	for _, d := range j.refusals {
		what := d.Path
		if what == "" {
			what = d.URL
		}
		fmt.Fprintf(w, "  REFUSED  %s\n           %s\n", what, d.Reason)
	}
	for _, d := range j.unreached {
		what := d.Path
		if what == "" {
			what = d.URL
		}
		fmt.Fprintf(w, "  UNCHECKED %s\n           %s\n", what, d.Reason)
	}
}
