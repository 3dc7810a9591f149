package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestVerifyBlamesTheRightThing: a --path that is not a CPAN path is the
// user's input error, found before the log is asked (exit 2, saying what a
// CPAN path looks like, not "could not reach the log"); a request the log
// answers with 400 is "the log refused the request", not "could not reach
// the log".
func TestVerifyBlamesTheRightThing(t *testing.T) {
	var asked atomic.Int32
	var answer atomic.Int32
	answer.Store(http.StatusBadRequest)
	log := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		http.Error(w, "invalid CPAN path: the log says no", int(answer.Load()))
	}))
	defer log.Close()
	_, vkey := newLogKey(t)
	policy := writePolicy(t, fmt.Sprintf("log %s %s\nquorum none\n", vkey, log.URL))
	file := filepath.Join(t.TempDir(), "Try-Tiny-0.31.tar.gz")
	os.WriteFile(file, []byte("a tarball"), 0o644)
	common := []string{"--policy", policy, "--state", t.TempDir(), "--cache", "", "--cross-check=false"}

	code, out := cli(t, append([]string{"verify", file, "--path", "E/ET/ETHER/Try-Tiny-0.31.tar.gz"}, common...)...)
	if code != 2 || asked.Load() != 0 || strings.Contains(out, "could not reach") ||
		!strings.Contains(out, `"E/ET/ETHER/Try-Tiny-0.31.tar.gz" does not start with "authors/id/"`) ||
		!strings.Contains(out, "did you mean authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz?") ||
		!strings.Contains(out, "e.g. authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz") {
		t.Errorf("verify --path E/ET/...: exit %d, %d requests to the log; want exit 2, none, and what a CPAN path looks like:\n%s", code, asked.Load(), out)
	}
	code, out = cli(t, append([]string{"verify", file, "--path", "authors/id/ETHER/Try-Tiny-0.31.tar.gz"}, common...)...)
	if code != 2 || asked.Load() != 0 || strings.Contains(out, "did you mean") || !strings.Contains(out, "a CPAN path is the file's path from the root of a CPAN mirror") {
		t.Errorf("verify --path authors/id/ETHER/...: exit %d, %d requests to the log:\n%s", code, asked.Load(), out)
	}

	// cpantlog proof: the same input error, before the policy is read.
	code, out = cli(t, "proof", "--policy", filepath.Join(t.TempDir(), "no-policy"), "E/ET/ETHER/Try-Tiny-0.31.tar.gz")
	if code != 2 || asked.Load() != 0 || strings.Contains(out, "policy") ||
		!strings.Contains(out, "did you mean authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz?") {
		t.Errorf("proof E/ET/...: exit %d, %d requests to the log; want exit 2, none, and what a CPAN path looks like:\n%s", code, asked.Load(), out)
	}

	code, out = cli(t, append([]string{"verify", file, "--path", "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz"}, common...)...)
	if code != 2 || asked.Load() == 0 || strings.Contains(out, "could not reach") ||
		!strings.Contains(out, "the log refused the request: ") || !strings.Contains(out, "400 Bad Request: invalid CPAN path: the log says no") {
		t.Errorf("verify with a log that answers 400: exit %d; want 2 and 'the log refused the request':\n%s", code, out)
	}
	// A log that is down is still one that could not be reached.
	answer.Store(http.StatusBadGateway)
	code, out = cli(t, append([]string{"verify", file, "--path", "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz"}, common...)...)
	if code != 2 || !strings.Contains(out, "could not reach the log: ") || strings.Contains(out, "refused") {
		t.Errorf("verify with a log that answers 502: exit %d; want 2 and 'could not reach the log':\n%s", code, out)
	}
}
