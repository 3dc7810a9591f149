package proxy

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
)

const (
	testToken  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	distPath   = "authors/id/E/ET/ETHER/Foo-Bar-1.0.tar.gz"
	packages02 = "modules/02packages.details.txt.gz"
)

type checkEnv struct {
	tl      *testlog.Log
	policy  *client.Policy
	state   string // the proxy's verifier's trusted state
	dist    []byte
	oldIdx  []byte // a version of 02packages superseded two days ago
	newIdx  []byte // the newest version
	journal *Journal
	p       *Proxy
}

// newCheckEnv starts a log holding a distribution and two versions of
// 02packages, and a proxy (with the check endpoints) verifying against it.
func newCheckEnv(t *testing.T, cfg Config) *checkEnv {
	t.Helper()
	tl := testlog.Start(t, tlog.Config{DataDir: t.TempDir()})
	e := &checkEnv{tl: tl, dist: []byte("a distribution's bytes\n"), oldIdx: []byte("an old 02packages\n"), newIdx: []byte("the newest 02packages\n")}
	tl.Add(t, distPath, e.dist, "2024-01-02T03:04:05Z", true)
	now := time.Now().UTC()
	tl.Add(t, packages02, e.oldIdx, now.Add(-72*time.Hour).Format(time.RFC3339), true)
	tl.Add(t, packages02, e.newIdx, now.Add(-48*time.Hour).Format(time.RFC3339), true)
	var err error
	if e.policy, err = client.ParsePolicy(fmt.Appendf(nil, "log %s %s\nquorum none\n", tl.VerifierKey(), tl.URL)); err != nil {
		t.Fatal(err)
	}
	e.journal = &Journal{}
	e.state = t.TempDir()
	cfg.Upstream = t.TempDir()
	cfg.Verifier = e.verifier(t)
	cfg.Journal = e.journal
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if e.p, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *checkEnv) verifier(t *testing.T) *client.Verifier {
	t.Helper()
	st, err := client.OpenState(e.state)
	if err != nil {
		t.Fatal(err)
	}
	v, err := client.NewVerifier(e.policy, "", "", st, "")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// post sends a request to the proxy as the hook would, with header
// Authorization set to auth unless it is empty.
func post(p *Proxy, target, auth string, body []byte) (int, string, http.Header) {
	r := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	p.ServeHTTP(w, r)
	return w.Code, w.Body.String(), w.Header()
}

func checkURL(cpanPath string) string {
	return "/.cpantlog/check?path=" + url.QueryEscape(cpanPath)
}

func summary(j *Journal) string {
	var b strings.Builder
	j.Summary(&b)
	return b.String()
}

func TestCheckEndpointVerdicts(t *testing.T) {
	e := newCheckEnv(t, Config{CheckToken: testToken})
	bearer := "Bearer " + testToken

	// Verified: 200 with one line, in the journal under the path, its
	// sha256 among the verified ones.
	code, body, _ := post(e.p, checkURL(distPath), bearer, e.dist)
	if code != 200 || strings.Count(body, "\n") != 1 || !strings.Contains(body, "asked the log") {
		t.Fatalf("logged bytes: %d %q, want 200 and one line saying why", code, body)
	}
	if !e.journal.Verified(sha256.Sum256(e.dist)) {
		t.Error("the verified bytes' sha256 is not in the journal")
	}
	// The newest index version verifies; the superseded one is stale.
	if code, body, _ := post(e.p, checkURL(packages02), bearer, e.newIdx); code != 200 {
		t.Errorf("the newest 02packages: %d %q, want 200", code, body)
	}
	if code, body, _ := post(e.p, checkURL(packages02), bearer, e.oldIdx); code != 403 || !strings.Contains(body, "stale") {
		t.Errorf("a superseded 02packages: %d %q, want 403 stale", code, body)
	}
	// Other bytes at a logged path: 403 with the reason, recorded.
	evil := append([]byte("not "), e.dist...)
	code, body, _ = post(e.p, checkURL(distPath), bearer, evil)
	if code != 403 || !strings.Contains(body, "does not match the log") {
		t.Errorf("tampered bytes: %d %q, want 403", code, body)
	}
	if e.journal.Verified(sha256.Sum256(evil)) || !e.journal.Judged(sha256.Sum256(evil)) {
		t.Error("refused bytes are among the verified ones, or not known as judged (exec's scan would list them twice)")
	}
	if e.journal.Judged(sha256.Sum256(e.dist)) {
		t.Error("verified bytes are known as judged")
	}
	// Bytes at a path the log never saw.
	if code, body, _ := post(e.p, checkURL("authors/id/E/ET/ETHER/Never-1.0.tar.gz"), bearer, e.dist); code != 403 || !strings.Contains(body, "not") {
		t.Errorf("unlogged path: %d %q, want 403", code, body)
	}
	// Paths the proxy would not serve are refused the same way, and
	// recorded: outside authors/id/, CHECKSUMS, CPAN.pm's module list.
	for _, p := range []string{"index.html", "authors/evil/Evil-1.0.tar.gz", "authors/id/E/ET/ETHER/CHECKSUMS", "modules/03modlist.data.gz", "authors/id/e/et/ether/Foo-Bar-1.0.tar.gz"} {
		if code, body, _ := post(e.p, checkURL(p), bearer, e.dist); code != 403 {
			t.Errorf("path %q: %d %q, want 403", p, code, body)
		}
	}
	// One line per file in the summary, with the worst verdict.
	s := summary(e.journal)
	if strings.Count(s, distPath+"\n") != 1 || !strings.Contains(s, "REFUSED   "+distPath) || !strings.Contains(s, "REFUSED   modules/03modlist.data.gz") || !strings.Contains(s, "REFUSED   index.html") {
		t.Errorf("summary:\n%s", s)
	}
	if verified, refused, unchecked := e.journal.Counts(); verified != 0 || refused != 8 || unchecked != 0 {
		t.Errorf("counts: %d verified, %d refused, %d unchecked; want 0 (the two files verified were then refused), 8, 0\n%s", verified, refused, unchecked, s)
	}
	// The metrics count each decision.
	w := httptest.NewRecorder()
	e.p.Metrics().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(w.Body.String(), `cpantlog_proxy_requests_total{decision="verified"} 2`) || !strings.Contains(w.Body.String(), `cpantlog_proxy_requests_total{decision="refused"} 8`) {
		t.Errorf("metrics:\n%s", w.Body)
	}

	// The log unreachable: 503, could not check.
	e.tl.Stop()
	other := []byte("another distribution\n")
	code, body, hdr := post(e.p, checkURL("authors/id/R/RJ/RJBS/Other-1.0.tar.gz"), bearer, other)
	if code != 503 || !strings.Contains(body, "could not reach the log") || hdr.Get("Retry-After") == "" {
		t.Errorf("log down: %d %q, want 503", code, body)
	}
	if !e.journal.Judged(sha256.Sum256(other)) {
		t.Error("bytes that could not be checked are not known as judged")
	}
	if _, _, unchecked := e.journal.Counts(); unchecked != 1 || !strings.Contains(summary(e.journal), "UNCHECKED authors/id/R/RJ/RJBS/Other-1.0.tar.gz") {
		t.Errorf("log down is not recorded as could not check:\n%s", summary(e.journal))
	}
}

// TestCheckEndpointSecurityError: a log that shows a checkpoint
// inconsistent with one it signed before (a fork) is evidence: 409.
func TestCheckEndpointSecurityError(t *testing.T) {
	e := newCheckEnv(t, Config{CheckToken: testToken})
	// The log signs a checkpoint of size 4 with a leaf of someone else's
	// history, which the verifier comes to trust, then logs another file:
	// its own size 4 has another root.
	forged, _ := e.tl.Fork(t, 3, []byte("a leaf of another history"))
	e.tl.Add(t, "authors/id/R/RJ/RJBS/Other-1.0.tar.gz", []byte("other"), "2024-01-02T03:04:05Z", true)
	origin, _, _ := strings.Cut(string(forged), "\n")
	dir := filepath.Join(e.state, url.PathEscape(origin))
	os.MkdirAll(dir, 0o700)
	if err := os.WriteFile(filepath.Join(dir, "checkpoint"), forged, 0o600); err != nil {
		t.Fatal(err)
	}
	code, body, _ := post(e.p, checkURL(distPath), "Bearer "+testToken, e.dist)
	if code != 409 || !strings.Contains(body, "SECURITY ERROR") || !strings.Contains(body, "fork") {
		t.Errorf("a forked log: %d %q, want 409", code, body)
	}
	if !strings.Contains(summary(e.journal), "REFUSED   "+distPath) || e.journal.Verified(sha256.Sum256(e.dist)) {
		t.Errorf("the security error is not recorded as a refusal:\n%s", summary(e.journal))
	}
}

// TestCheckEndpointRequests: authentication, malformed requests and bounds
// are answered before anything is verified, and record nothing.
func TestCheckEndpointRequests(t *testing.T) {
	e := newCheckEnv(t, Config{CheckToken: testToken, MaxFileSize: 64})
	bearer := "Bearer " + testToken
	for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer " + testToken[:63], "Bearer " + testToken + "0", "Basic " + testToken, "bearer " + testToken, testToken} {
		code, _, hdr := post(e.p, checkURL(distPath), auth, e.dist)
		if code != 401 || hdr.Get("WWW-Authenticate") == "" {
			t.Errorf("Authorization %q: %d, want 401", auth, code)
		}
	}
	// Two Authorization headers: which one counts is ambiguous, so neither.
	r := httptest.NewRequest(http.MethodPost, checkURL(distPath), bytes.NewReader(e.dist))
	r.Header.Add("Authorization", "Bearer wrong")
	r.Header.Add("Authorization", bearer)
	w := httptest.NewRecorder()
	e.p.ServeHTTP(w, r)
	if w.Code != 401 {
		t.Errorf("two Authorization headers: %d, want 401", w.Code)
	}
	for target, want := range map[string]int{
		"/.cpantlog/check":                                            400, // no path
		"/.cpantlog/check?path=":                                      400,
		"/.cpantlog/check?path=" + distPath + "&path=x":               400,
		"/.cpantlog/check?path=" + distPath + "&mirror=file":          400,
		"/.cpantlog/check?path=%zz":                                   400,
		checkURL("/" + distPath):                                      400,
		checkURL("authors/id/E/ET/ETHER/../ETHER/Foo-Bar-1.0.tar.gz"): 400,
		checkURL("authors//id/E/ET/ETHER/Foo-Bar-1.0.tar.gz"):         400,
		checkURL("authors/id/E/ET/ETHER/Foo\\Bar-1.0.tar.gz"):         400,
		checkURL("authors/id/E/ET/ETHER/Foo\x00Bar-1.0.tar.gz"):       400,
		checkURL("authors/id/E/ET/ETHER/\xff.tar.gz"):                 400,
		"/.cpantlog/":           404,
		"/.cpantlog/check/":     404,
		"/.cpantlog/verify":     404,
		"/.cpantlog/../metrics": 404,
	} {
		if code, body, _ := post(e.p, target, bearer, e.dist); code != want {
			t.Errorf("%s: %d %q, want %d", target, code, body, want)
		}
	}
	// Not POST.
	r = httptest.NewRequest(http.MethodGet, checkURL(distPath), nil)
	r.Header.Set("Authorization", bearer)
	w = httptest.NewRecorder()
	e.p.ServeHTTP(w, r)
	if w.Code != 405 || w.Header().Get("Allow") != "POST" {
		t.Errorf("GET on the check endpoint: %d, want 405", w.Code)
	}
	if verified, refused, unchecked := e.journal.Counts(); verified+refused+unchecked != 0 {
		t.Errorf("malformed requests were recorded:\n%s", summary(e.journal))
	}
	// Past MaxFileSize: 413, by its Content-Length or by what is read,
	// recorded as could not check.
	big := bytes.Repeat([]byte("x"), 65)
	if code, body, _ := post(e.p, checkURL(distPath), bearer, big); code != 413 {
		t.Errorf("65 bytes with a 64-byte limit: %d %q, want 413", code, body)
	}
	r = httptest.NewRequest(http.MethodPost, checkURL(distPath), io.MultiReader(bytes.NewReader(big)))
	r.ContentLength = -1 // chunked: no length announced
	r.Header.Set("Authorization", bearer)
	w = httptest.NewRecorder()
	e.p.ServeHTTP(w, r)
	if w.Code != 413 {
		t.Errorf("65 bytes chunked with a 64-byte limit: %d, want 413", w.Code)
	}
	if _, _, unchecked := e.journal.Counts(); unchecked != 1 || !strings.Contains(summary(e.journal), "UNCHECKED "+distPath) {
		t.Errorf("a file too large to check is not recorded as could not check:\n%s", summary(e.journal))
	}
	// Exactly the limit is read and verified.
	if code, body, _ := post(e.p, checkURL(distPath), bearer, big[:64]); code != 403 {
		t.Errorf("64 bytes with a 64-byte limit: %d %q, want 403 (verified, and not the logged file)", code, body)
	}

	// In forward-proxy mode (an absolute URL) there is no endpoint.
	r = httptest.NewRequest(http.MethodPost, "http://127.0.0.1:1"+checkURL(distPath), bytes.NewReader(e.dist))
	r.Header.Set("Authorization", bearer)
	w = httptest.NewRecorder()
	e.p.ServeHTTP(w, r)
	if w.Code == 200 || w.Code == 204 {
		t.Errorf("forward-mode request to the check endpoint: %d", w.Code)
	}
}

// TestNoCheckEndpointWithoutToken: cpantlog proxy (no token) has no
// endpoint: a request with the bytes and any token is not answered 200.
func TestNoCheckEndpointWithoutToken(t *testing.T) {
	e := newCheckEnv(t, Config{})
	for _, target := range []string{checkURL(distPath), "/.cpantlog/exempt?subject=x&pattern=x"} {
		code, body, _ := post(e.p, target, "Bearer ", e.dist)
		if code == 200 || code == 204 || code == 401 || code == 404 {
			t.Errorf("%s without a token configured: %d %q", target, code, body)
		}
	}
	if e.journal.Verified(sha256.Sum256(e.dist)) {
		t.Error("bytes were verified through an endpoint that is not there")
	}
}

func TestExemptEndpoint(t *testing.T) {
	patterns := map[string]func(string) bool{
		"authors/id/M/MY/MYCOMPANY/*": func(s string) bool { return strings.HasPrefix(s, "authors/id/M/MY/MYCOMPANY/") },
		"git://example.com/*":         func(s string) bool { return strings.HasPrefix(s, "git://example.com/") },
	}
	e := newCheckEnv(t, Config{CheckToken: testToken, MaxFileSize: 64, Exempt: func(subject, pattern string) bool {
		m, ok := patterns[pattern]
		return ok && m(subject)
	}})
	bearer := "Bearer " + testToken
	exempt := func(subject, pattern, auth string, body []byte) (int, string) {
		code, b, _ := post(e.p, "/.cpantlog/exempt?subject="+url.QueryEscape(subject)+"&pattern="+url.QueryEscape(pattern), auth, body)
		return code, b
	}
	private := []byte("a private distribution\n")
	if code, body := exempt("authors/id/M/MY/MYCOMPANY/Private-1.0.tar.gz", "authors/id/M/MY/MYCOMPANY/*", bearer, private); code != 204 {
		t.Fatalf("exempt a matching subject: %d %q, want 204", code, body)
	}
	if code, body := exempt("git://example.com/repo.git", "git://example.com/*", bearer, nil); code != 204 {
		t.Errorf("exempt a matching subject without its bytes: %d %q, want 204", code, body)
	}
	if p, ok := e.journal.Exempt(sha256.Sum256(private)); !ok || p != "authors/id/M/MY/MYCOMPANY/*" {
		t.Errorf("the exempt bytes' sha256: %q %v", p, ok)
	}
	// Sent with its bytes, the subject is known by them, not by its name;
	// without, by the last element of its name.
	if p, ok := e.journal.ExemptName("Private-1.0.tar.gz"); ok {
		t.Errorf("exempt by name too (%q), though its bytes were sent", p)
	}
	if p, ok := e.journal.ExemptName("repo.git"); !ok || p != "git://example.com/*" {
		t.Errorf("a subject exempted without its bytes, by name: %q %v", p, ok)
	}
	// Refused: a pattern exec was not given, a pattern that does not match
	// the subject, no token, a wrong one, malformed requests, too large.
	for _, c := range []struct {
		subject, pattern, auth string
		body                   []byte
		want                   int
	}{
		{"authors/id/E/ET/ETHER/Foo-Bar-1.0.tar.gz", "authors/id/*", bearer, e.dist, 403},
		{"authors/id/E/ET/ETHER/Foo-Bar-1.0.tar.gz", "authors/id/M/MY/MYCOMPANY/*", bearer, e.dist, 403},
		{"authors/id/E/ET/ETHER/Foo-Bar-1.0.tar.gz", "authors/id/M/MY/MYCOMPANY/*", "", e.dist, 401},
		{"authors/id/M/MY/MYCOMPANY/Private-1.0.tar.gz", "authors/id/M/MY/MYCOMPANY/*", "Bearer x", e.dist, 401},
		{"", "authors/id/M/MY/MYCOMPANY/*", bearer, nil, 400},
		{"authors/id/M/MY/MYCOMPANY/Private-1.0.tar.gz", "", bearer, nil, 400},
		{"authors/id/M/MY/MYCOMPANY/Big-1.0.tar.gz", "authors/id/M/MY/MYCOMPANY/*", bearer, bytes.Repeat([]byte("x"), 65), 413},
	} {
		if code, body := exempt(c.subject, c.pattern, c.auth, c.body); code != c.want {
			t.Errorf("exempt %q by %q (auth %q): %d %q, want %d", c.subject, c.pattern, c.auth, code, body, c.want)
		}
	}
	if _, ok := e.journal.Exempt(sha256.Sum256(e.dist)); ok {
		t.Error("a refused exemption's bytes are exempt")
	}
	// Exempt files are listed and counted apart: neither verified nor
	// refused.
	s := summary(e.journal)
	if verified, refused, unchecked := e.journal.Counts(); verified != 0 || refused != 0 || unchecked != 0 || e.journal.Exempted() != 2 {
		t.Errorf("counts %d %d %d, %d exempt; want 0 0 0, 2\n%s", verified, refused, unchecked, e.journal.Exempted(), s)
	}
	if !strings.Contains(s, "2 exempt (not verified)") || !strings.Contains(s, "exempt    authors/id/M/MY/MYCOMPANY/Private-1.0.tar.gz\n            not verified (exempt by authors/id/M/MY/MYCOMPANY/*)") {
		t.Errorf("summary:\n%s", s)
	}

	// With no patterns at all, nothing is exempt.
	e2 := newCheckEnv(t, Config{CheckToken: testToken})
	if code, body, _ := post(e2.p, "/.cpantlog/exempt?subject=a&pattern=a", bearer, nil); code != 403 || !strings.Contains(body, "CPANTLOG_NOVERIFY") {
		t.Errorf("no patterns: %d %q, want 403", code, body)
	}
}
