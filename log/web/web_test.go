package web

import (
	"context"
	"crypto/sha256"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// explorer runs a real log with the samples, a hostile path, and the
// explorer mounted.
func explorer(t testing.TB) (*testlog.Log, *httptest.Server) {
	t.Helper()
	tl := testlog.Start(t, tlog.Config{DataDir: t.TempDir()})
	filepath.Walk("../../testdata/authors", func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			b, _ := os.ReadFile(p)
			tl.Add(t, strings.TrimPrefix(filepath.ToSlash(p), "../../testdata/"), b, "2024-01-02T03:04:05Z", false)
		}
		return err
	})
	// A valid CPAN path can hold markup; pages must escape it.
	hostile := &entry.Entry{Kind: entry.Upload, Path: `authors/id/E/EV/EVIL/<script>alert(1)</script>"'.tar.gz`, Size: 1, SHA256: sha256.Sum256([]byte("x")), Uploader: "EVIL", Time: time.Unix(1700000000, 0).UTC()}
	if _, err := tl.Log.Add(context.Background(), hostile); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		cp, _ := tl.Reader().ReadCheckpoint(context.Background())
		if n, _ := tl.Index().Size(); n == 9 && strings.Contains(string(cp), "\n9\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("index did not catch up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ex, err := New(tl.Log, nil, "https://cpan-tlog.example.org")
	if err != nil {
		t.Fatal(err)
	}
	tl.Log.Mount(ex.Register)
	srv := httptest.NewServer(tl.Log.Handler())
	t.Cleanup(srv.Close)
	return tl, srv
}

func get(t *testing.T, srv *httptest.Server, p string) (int, string, http.Header) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(srv.URL + p)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestPages(t *testing.T) {
	_, srv := explorer(t)
	for _, c := range []struct {
		path     string
		code     int
		contains []string
		location string
	}{
		{"/", 200, []string{"Latest checkpoint", "9 entries", "Try-Tiny-0.31.tar.gz", `href="/feed.atom"`, `id="check-file"`}, ""},
		{"/dist/Try-Tiny", 200, []string{"Distribution Try-Tiny", "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", `title="3300d31d8a4075b26d8f46ce864a1d913e0e8467ceeba6655d5d2b2e206c11be">3300d31d8a4075b2…</code>`, `href="/author/ETHER"`, `/proof?index=`, ".tlog-proof", "<th>proof</th>"}, ""},
		{"/dist/Nope", 404, []string{"No entries."}, ""},
		{"/dist/%3Cx%3E", 400, []string{"not a distribution name"}, ""},
		{"/author/RJBS", 200, []string{"Author RJBS", "Test-Fatal-0.017.tar.gz", "Sub-Install-0.929.tar.gz"}, ""},
		{"/author/rjbs", 400, []string{"not a PAUSE id"}, ""},
		{"/entry/0", 200, []string{`id="leaf"`, "cpan-tlog/v1 upload", `data-leaf="`, `id="verify-status"`, `id="file-link" href="https://cpan.metacpan.org/authors/id/`}, ""},
		{"/entry/99", 404, []string{"no entry 99"}, ""},
		{"/entry/x", 400, []string{"not an entry index"}, ""},
		{"/search?q=", 400, []string{"Empty search"}, ""},
		{"/search?q=" + strings.Repeat("a", MaxQuery+1), 400, []string{"at most"}, ""},
		{"/search?q=%01x", 400, []string{"printable"}, ""},
		{"/search?q=Try-Tiny", 303, nil, "/dist/Try-Tiny"},
		{"/search?q=Try::Tiny", 303, nil, "/dist/Try-Tiny"},
		{"/search?q=ETHER", 303, nil, "/author/ETHER"},
		{"/search?q=authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", 303, nil, "/entry/"},
		{"/search?q=authors/id/E/ET/ETHER/../x", 400, []string{"invalid CPAN path"}, ""},
		{"/search?q=3300d31d8a4075b26d8f46ce864a1d913e0e8467ceeba6655d5d2b2e206c11be", 200, []string{"Try-Tiny-0.31.tar.gz"}, ""},
		// What the log knows, and no claim about what CPAN published.
		{"/search?q=" + strings.Repeat("0", 64), 404, []string{"This log has no entry with this sha256", "it knows only what it has logged"}, ""},
		{"/static/vendor/@noble/post-quantum/ml-dsa.js", 200, []string{"ml_dsa44"}, ""},
		{"/static/vendor/@noble/hashes/_u64.js", 200, nil, ""},
		{"/static/vendor/@noble/post-quantum/LICENSE", 200, []string{"MIT License"}, ""},
		{"/static/vendor/@noble/nope.js", 404, nil, ""},
		{"/static/vendor/%2e%2e/layout.html", 404, nil, ""},
		{"/search?q=%3Cscript%3E", 400, []string{"&lt;script&gt;"}, ""},
		{"/static/verify.js", 200, []string{"crypto.subtle"}, ""},
		{"/static/nope.js", 404, nil, ""},
		{"/dist/Try-Tiny?before=zz", 400, []string{"before"}, ""},
	} {
		code, body, hdr := get(t, srv, c.path)
		if code != c.code {
			t.Errorf("GET %s: %d, want %d\n%.300s", c.path, code, c.code, body)
			continue
		}
		for _, s := range c.contains {
			if !strings.Contains(body, s) {
				t.Errorf("GET %s lacks %q:\n%.2000s", c.path, s, body)
			}
		}
		if c.location != "" && !strings.HasPrefix(hdr.Get("Location"), c.location) {
			t.Errorf("GET %s redirects to %q, want %s…", c.path, hdr.Get("Location"), c.location)
		}
		if strings.HasPrefix(hdr.Get("Content-Type"), "text/html") && code/100 != 3 {
			if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("GET %s: CSP %q", c.path, csp)
			}
			if strings.Contains(body, "<script>") || strings.Contains(body, " onload=") || strings.Contains(body, "style=") {
				t.Errorf("GET %s has inline script or style", c.path)
			}
		}
	}
}

func TestHostilePathIsEscaped(t *testing.T) {
	_, srv := explorer(t)
	for _, p := range []string{"/", "/author/EVIL", "/entry/8", "/feed.atom", "/author/EVIL/feed.atom"} {
		code, body, _ := get(t, srv, p)
		if code != 200 {
			t.Fatalf("GET %s: %d", p, code)
		}
		if strings.Contains(body, "<script>alert(1)</script>") {
			t.Errorf("GET %s serves the hostile path unescaped", p)
		}
		if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("GET %s does not show the escaped path:\n%.1500s", p, body)
		}
	}
}

func TestFeedsAreAtom(t *testing.T) {
	_, srv := explorer(t)
	for p, n := range map[string]int{"/feed.atom": 9, "/dist/Try-Tiny/feed.atom": 1, "/author/RJBS/feed.atom": 3} {
		code, body, hdr := get(t, srv, p)
		if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/atom+xml") {
			t.Fatalf("GET %s: %d %s", p, code, hdr.Get("Content-Type"))
		}
		var f struct {
			XMLName xml.Name `xml:"http://www.w3.org/2005/Atom feed"`
			ID      string   `xml:"id"`
			Title   string   `xml:"title"`
			Updated string   `xml:"updated"`
			Entries []struct {
				ID      string `xml:"id"`
				Title   string `xml:"title"`
				Updated string `xml:"updated"`
				Link    struct {
					Href string `xml:"href,attr"`
				} `xml:"link"`
			} `xml:"entry"`
		}
		if err := xml.Unmarshal([]byte(body), &f); err != nil {
			t.Fatalf("GET %s is not XML: %v", p, err)
		}
		if f.ID == "" || f.Title == "" || len(f.Entries) != n {
			t.Errorf("GET %s: id %q title %q, %d entries, want %d", p, f.ID, f.Title, len(f.Entries), n)
		}
		for _, e := range f.Entries {
			if _, err := time.Parse(time.RFC3339, e.Updated); err != nil || e.ID == "" || !strings.HasPrefix(e.Link.Href, "https://cpan-tlog.example.org/entry/") {
				t.Errorf("GET %s: entry %+v", p, e)
			}
		}
	}
	if code, _, _ := get(t, srv, "/author/bad/feed.atom"); code != 400 {
		t.Errorf("feed of a bad id: %d", code)
	}
}

func TestPagination(t *testing.T) {
	tl, srv := explorer(t)
	var batch []*entry.Entry
	for i := range PageSize + 10 {
		batch = append(batch, &entry.Entry{Kind: entry.Upload, Path: fmt.Sprintf("authors/id/M/MA/MANY/Many-1.%d.tar.gz", i), Size: 1, Uploader: "MANY", Time: time.Unix(1700000000, 0).UTC()})
	}
	if _, errs := tl.Log.AddBatch(context.Background(), batch); errs[0] != nil {
		t.Fatal(errs[0])
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if n, _ := tl.Index().Size(); n == uint64(9+PageSize+10) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("index did not catch up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, body, _ := get(t, srv, "/dist/Many")
	rowsIn := func(body string) int { return strings.Count(body, `<td data-label="index"><a href="/entry/`) }
	if rowsIn(body) != PageSize || !strings.Contains(body, "older entries") {
		t.Fatalf("first page: %d rows", rowsIn(body))
	}
	i := strings.Index(body, `href="/dist/Many?before=`)
	next := body[i+6 : i+6+strings.Index(body[i+6:], `"`)]
	next, _ = url.PathUnescape(strings.ReplaceAll(next, "&amp;", "&"))
	_, body, _ = get(t, srv, next)
	if rowsIn(body) != 10 || strings.Contains(body, "older entries") {
		t.Errorf("second page %s: %d rows", next, rowsIn(body))
	}
}

// TestIndexFilesPage: the explorer lists every logged version of the
// index files, and searches for them lead there.
func TestIndexFilesPage(t *testing.T) {
	tl := testlog.Start(t, tlog.Config{DataDir: t.TempDir()})
	tl.Add(t, "modules/02packages.details.txt.gz", []byte("version one"), "2026-11-20T00:00:00Z", false)
	tl.Add(t, "modules/02packages.details.txt.gz", []byte("version two"), "2026-11-21T00:00:00Z", false)
	tl.Add(t, "modules/06perms.txt.gz", []byte("perms"), "2026-11-21T00:00:00Z", true)
	deadline := time.Now().Add(10 * time.Second)
	for n, _ := tl.Index().Size(); n < 3; n, _ = tl.Index().Size() {
		if time.Now().After(deadline) {
			t.Fatal("index did not catch up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ex, err := New(tl.Log, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	tl.Log.Mount(ex.Register)
	srv := httptest.NewServer(tl.Log.Handler())
	defer srv.Close()
	code, body, _ := get(t, srv, "/index-files")
	two := fmt.Sprintf("%x", sha256.Sum256([]byte("version two")))
	if code != 200 || strings.Count(body, "modules/02packages.details.txt.gz") != 2 || !strings.Contains(body, "modules/06perms.txt.gz") || !strings.Contains(body, two) {
		t.Errorf("/index-files: %d\n%.3000s", code, body)
	}
	if strings.Index(body, "06perms") > strings.Index(body, two) {
		t.Error("/index-files is not newest first")
	}
	for _, q := range []string{"02packages", "02packages.details.txt.gz", "modules/02packages.details.txt.gz", "06perms"} {
		if code, _, hdr := get(t, srv, "/search?q="+url.QueryEscape(q)); code != 303 || !strings.HasPrefix(hdr.Get("Location"), "/index-files?q=") {
			t.Errorf("search %q: %d %s", q, code, hdr.Get("Location"))
		}
	}
	if code, body, _ := get(t, srv, "/entry/1"); code != 200 || !strings.Contains(body, "cpan-tlog/v1 index") {
		t.Errorf("/entry/1: %d\n%.1000s", code, body)
	}
}

// TestSearchUnderstandsWhatPeopleType: PAUSE ids in any case, file names,
// AUTHOR/file, prefixes; the query stays in the box; an upload into
// another author's directory is flagged.
func TestSearchUnderstandsWhatPeopleType(t *testing.T) {
	tl, srv := explorer(t)
	odd := &entry.Entry{Kind: entry.Upload, Path: "authors/id/R/RJ/RJBS/Sneaky-1.0.tar.gz", Size: 1, SHA256: sha256.Sum256([]byte("y")), Uploader: "EVIL", Time: time.Unix(1700000000, 0).UTC()}
	res, err := tl.Log.Add(context.Background(), odd)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if n, _ := tl.Index().Size(); n > res.Index {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("index did not catch up")
		}
	}
	tryIdx := func() string {
		recs, _ := tl.Index().ByPath("authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz")
		return fmt.Sprintf("/entry/%d?q=", recs[0].Index)
	}()
	for _, c := range []struct {
		q        string
		code     int
		location string
		contains []string
	}{
		{"rjbs", 303, "/author/RJBS?q=rjbs", nil},
		{"Rjbs", 303, "/author/RJBS?q=Rjbs", nil},
		{"ether", 303, "/author/ETHER?q=ether", nil},
		{"Try-Tiny-0.31.tar.gz", 303, tryIdx, nil},
		{"Try-Tiny-0.31", 303, tryIdx, nil},
		{"try-tiny-0.31", 303, tryIdx, nil},
		{"Try-Tiny-9.99", 404, "", nil},
		{"ETHER/Try-Tiny-0.31.tar.gz", 303, tryIdx, nil},
		{"ether/Try-Tiny-0.31.tar.gz", 303, tryIdx, nil},
		{"Nope-1.0.tar.gz", 404, "", []string{"Files named Nope-1.0.tar.gz", `value="Nope-1.0.tar.gz"`}},
		{"Try-T", 303, "/dist/Try-Tiny?q=Try-T", nil},
		{"try-t", 303, "/dist/Try-Tiny?q=try-t", nil},
		{"Te", 200, "", []string{"Distributions starting with Te", `href="/dist/Test-Fatal"`, `href="/dist/Text-Diff"`, `value="Te"`}},
		{"Zzz", 404, "", []string{"No distribution starts with that."}},
		{"NOBODY/x.tar.gz", 404, "", []string{"No entries."}},
	} {
		code, body, hdr := get(t, srv, "/search?q="+url.QueryEscape(c.q))
		if code != c.code || (c.location != "" && !strings.HasPrefix(hdr.Get("Location"), c.location)) {
			t.Errorf("search %q: %d %q, want %d %q\n%.500s", c.q, code, hdr.Get("Location"), c.code, c.location, body)
		}
		for _, s := range c.contains {
			if !strings.Contains(body, s) {
				t.Errorf("search %q lacks %q:\n%.1500s", c.q, s, body)
			}
		}
	}
	// The query stays in the box on the page a search leads to.
	if _, body, _ := get(t, srv, "/author/RJBS?q=rjbs"); !strings.Contains(body, `value="rjbs"`) {
		t.Error("the author page forgot the query")
	}
	// The odd upload is flagged on its entry and in lists.
	_, body, _ := get(t, srv, fmt.Sprintf("/entry/%d", res.Index))
	if !strings.Contains(body, `class="warning"`) || !strings.Contains(body, "Uploaded by EVIL into RJBS&#39;s directory") {
		t.Errorf("entry of an upload into another's directory has no warning:\n%.2000s", body)
	}
	if _, body, _ := get(t, srv, "/author/RJBS"); !strings.Contains(body, "uploader is not the directory") {
		t.Error("the author page does not flag the odd upload")
	}
	if _, body, _ := get(t, srv, tryIdx[:strings.Index(tryIdx, "?")]); strings.Contains(body, `class="warning"`) {
		t.Error("an ordinary upload is flagged")
	}
}
