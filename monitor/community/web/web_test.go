package web

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/CPAN-Security/cpan-tlog/monitor/community"
	"github.com/CPAN-Security/cpan-tlog/monitor/notify"
)

// recorder is a notify.Sender that keeps every mail it is given.
type recorder struct {
	mu    sync.Mutex
	mails []notify.Mail
}

func (r *recorder) Send(ctx context.Context, m notify.Mail) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mails = append(r.mails, m)
	return nil
}

func (r *recorder) all() []notify.Mail {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]notify.Mail(nil), r.mails...)
}

// to is the mails sent to addr.
func (r *recorder) to(addr string) []notify.Mail {
	var out []notify.Mail
	for _, m := range r.all() {
		if strings.EqualFold(m.To, addr) {
			out = append(out, m)
		}
	}
	return out
}

var confirmLink = regexp.MustCompile(`/confirm\?t=([A-Za-z0-9_\-.~%]+)`)

// confirmToken is the token of the last confirmation link mailed to addr.
func (r *recorder) confirmToken(t *testing.T, addr string) string {
	t.Helper()
	ms := r.to(addr)
	for i := len(ms) - 1; i >= 0; i-- {
		if m := confirmLink.FindStringSubmatch(ms[i].Text); m != nil {
			tok, err := url.QueryUnescape(m[1])
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
	}
	t.Fatalf("no confirmation link in the %d mails to %s: %+v", len(ms), addr, ms)
	return ""
}

type env struct {
	srv  *httptest.Server
	c    *community.Community
	db   *bolt.DB
	sent *recorder
}

// start serves the pages on a real loopback server over a real
// community engine in a fresh bbolt file.
func start(t *testing.T, limits community.Limits, opts Options) *env {
	t.Helper()
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "state.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	e := &env{srv: srv, db: db, sent: &recorder{}}
	e.c, err = community.Open(db, community.Config{
		BaseURL: srv.URL + "/", StateDir: dir, Sender: e.sent, From: "monitor@cpantlog.example",
		Limits: limits,
	})
	if err != nil {
		t.Fatal(err)
	}
	h = Handler(e.c, opts)
	return e
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (e *env) do(t *testing.T, method, path string, form url.Values, hdr ...string) answer {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return e.send(t, req)
}

func (e *env) send(t *testing.T, req *http.Request) answer {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// stored is every subscriber in the store, read from its bucket.
func (e *env) stored(t *testing.T) map[string]community.Subscriber {
	t.Helper()
	out := map[string]community.Subscriber{}
	err := e.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("community-subscribers"))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var s community.Subscriber
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			out[strings.ToLower(s.Email)] = s
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func subscribeForm(email, rules string) url.Values {
	return url.Values{"email": {email}, "rules": {rules}, "mail": {"1"}}
}

// subscribeAndConfirm subscribes addr through the pages and confirms it
// with the mailed token; it returns the subscriber as confirmed.
func (e *env) subscribeAndConfirm(t *testing.T, addr, rules string) *community.Subscriber {
	t.Helper()
	if a := e.do(t, "POST", "/subscribe", subscribeForm(addr, rules)); a.status != 200 {
		t.Fatalf("subscribe %s: %d\n%s", addr, a.status, a.body)
	}
	tok := e.sent.confirmToken(t, addr)
	if a := e.do(t, "POST", "/confirm", url.Values{"t": {tok}}); a.status != 200 {
		t.Fatalf("confirm %s: %d\n%s", addr, a.status, a.body)
	}
	s, ok := e.stored(t)[addr]
	if !ok || !s.Confirmed {
		t.Fatalf("%s not confirmed in the store: %+v", addr, s)
	}
	return &s
}

func tokenOf(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil || u.Query().Get("t") == "" {
		t.Fatalf("link %q has no token: %v", link, err)
	}
	return u.Query().Get("t")
}

// checkHeaders asserts the security headers every page carries.
func checkHeaders(t *testing.T, what string, a answer) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": CSP,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
		"X-Frame-Options":         "DENY",
	}
	for k, v := range want {
		if got := a.header.Get(k); got != v {
			t.Errorf("%s: %s is %q, want %q", what, k, got, v)
		}
	}
}

func TestSubscribeForm(t *testing.T) {
	e := start(t, community.Limits{}, Options{})
	a := e.do(t, "GET", "/subscribe", nil)
	if a.status != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /subscribe: %d %s", a.status, a.header.Get("Content-Type"))
	}
	checkHeaders(t, "GET /subscribe", a)
	for _, want := range []string{`<form method="post" action="subscribe"`, `name="email"`, `name="rules"`, `name="mail"`, `name="webhook"`,
		"author ETHER", "dist Try-Tiny", "namespace Try::Tiny::*", "path authors/id/E/ET/ETHER/*", "expect issuer=https://token.actions.githubusercontent.com"} {
		if !strings.Contains(a.body, want) {
			t.Errorf("the subscribe form lacks %q", want)
		}
	}
	if strings.Contains(a.body, "<script") {
		t.Error("a page carries a script")
	}
	if a := e.do(t, "HEAD", "/subscribe", nil); a.status != 200 || a.body != "" {
		t.Errorf("HEAD /subscribe: %d, body %q", a.status, a.body)
	}
	css := e.do(t, "GET", "/style.css", nil)
	if css.status != 200 || !strings.HasPrefix(css.header.Get("Content-Type"), "text/css") || !strings.Contains(css.body, "body {") {
		t.Errorf("GET /style.css: %d %s", css.status, css.header.Get("Content-Type"))
	}
	if a := e.do(t, "GET", "/", nil); a.status != http.StatusSeeOther || a.header.Get("Location") != "subscribe" {
		t.Errorf("GET /: %d to %q", a.status, a.header.Get("Location"))
	}
}

// TestSubscribeNeverTells: the page after a subscribe POST is the same
// byte for byte whether the address is new, pending or confirmed; only a
// new or pending address gets a confirmation link, a confirmed one a
// mail to itself (not to the requester).
func TestSubscribeNeverTells(t *testing.T) {
	e := start(t, community.Limits{}, Options{})
	first := e.do(t, "POST", "/subscribe", subscribeForm("alice@example.org", "author ALICE"))
	if first.status != 200 || !strings.Contains(first.body, "If the address <code>alice@example.org</code> can be subscribed, a confirmation mail is on its way") {
		t.Fatalf("first subscribe: %d\n%s", first.status, first.body)
	}
	checkHeaders(t, "POST /subscribe", first)
	if s := e.stored(t)["alice@example.org"]; s.Confirmed || len(s.Rules) != 1 || s.Rules[0] != (community.Rule{Kind: "author", Value: "ALICE"}) {
		t.Fatalf("after subscribe the store holds %+v", s)
	}
	pending := e.do(t, "POST", "/subscribe", subscribeForm("alice@example.org", "author ALICE"))
	tok := e.sent.confirmToken(t, "alice@example.org")
	if a := e.do(t, "POST", "/confirm", url.Values{"t": {tok}}); a.status != 200 {
		t.Fatalf("confirm: %d %s", a.status, a.body)
	}
	confirmed := e.do(t, "POST", "/subscribe", subscribeForm("alice@example.org", "author ALICE"))
	if pending.body != first.body || confirmed.body != first.body || pending.status != 200 || confirmed.status != 200 {
		t.Errorf("the answer differs by the address's state:\nnew:\n%s\npending:\n%s\nconfirmed:\n%s", first.body, pending.body, confirmed.body)
	}
}

// TestSubscribeInputError: a bad rule is a 400 with the form re-shown,
// what was written kept (escaped) and the message naming the line; nothing
// is stored or sent.
func TestSubscribeInputError(t *testing.T) {
	e := start(t, community.Limits{}, Options{})
	cases := []struct {
		name string
		form url.Values
		want string
	}{
		{"bad rule kind", subscribeForm("bob@example.org", "author BOB\nfrobnicate <script>alert(1)</script>"), "line 2"},
		{"no address", subscribeForm("", "author BOB"), "enter your email address"},
		{"address with a newline", subscribeForm("bob@example.org\r\nBcc: eve@example.org", "author BOB"), "white space or control characters"},
		{"not an address", subscribeForm("<b>bob</b>", "author BOB"), ""},
		{"expect without issuer", subscribeForm("bob@example.org", "expect repository=bob/x"), "line 1"},
		{"email twice", url.Values{"email": {"bob@example.org", "eve@example.org"}, "rules": {"author BOB"}}, "more than once"},
		{"webhook with white space", url.Values{"email": {"bob@example.org"}, "rules": {"author BOB"}, "webhook": {"https://x.example/ a"}}, "white space"},
	}
	for _, tc := range cases {
		a := e.do(t, "POST", "/subscribe", tc.form)
		if a.status != http.StatusBadRequest || !strings.Contains(a.body, `class="error"`) || !strings.Contains(a.body, tc.want) {
			t.Errorf("%s: %d, want 400 naming %q\n%.3000s", tc.name, a.status, tc.want, a.body)
		}
		if !strings.Contains(a.body, `<form method="post" action="subscribe"`) {
			t.Errorf("%s: the form is not re-shown", tc.name)
		}
		if strings.Contains(a.body, "<script>alert") || strings.Contains(a.body, "<b>bob") {
			t.Errorf("%s: what the visitor wrote is not escaped:\n%s", tc.name, a.body)
		}
	}
	a := e.do(t, "POST", "/subscribe", cases[0].form)
	if !strings.Contains(a.body, "frobnicate &lt;script&gt;alert(1)&lt;/script&gt;") || !strings.Contains(a.body, `value="bob@example.org"`) {
		t.Errorf("the re-shown form lost what was written:\n%s", a.body)
	}
	if n := len(e.stored(t)); n != 0 {
		t.Errorf("bad input stored %d subscribers", n)
	}
	if n := len(e.sent.all()); n != 0 {
		t.Errorf("bad input sent %d mails", n)
	}
}

func TestSubscribeRateLimited(t *testing.T) {
	e := start(t, community.Limits{PerSource: 2}, Options{})
	for i := range 2 {
		if a := e.do(t, "POST", "/subscribe", subscribeForm("u"+strconv.Itoa(i)+"@example.org", "author UMA")); a.status != 200 {
			t.Fatalf("subscribe %d: %d\n%s", i, a.status, a.body)
		}
	}
	a := e.do(t, "POST", "/subscribe", subscribeForm("u9@example.org", "author UMA"))
	if a.status != http.StatusTooManyRequests {
		t.Fatalf("third subscribe from one source: %d, want 429\n%s", a.status, a.body)
	}
	if secs, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || secs <= 0 {
		t.Errorf("Retry-After %q", a.header.Get("Retry-After"))
	}
	if !strings.Contains(a.body, "Nothing was changed or sent") {
		t.Errorf("429 page:\n%s", a.body)
	}
	if _, ok := e.stored(t)["u9@example.org"]; ok || len(e.sent.to("u9@example.org")) != 0 {
		t.Error("a rate-limited request stored or sent something")
	}
}

// TestConfirmNeedsThePOST: fetching the mailed link (as a mail scanner
// does) shows a button and confirms nothing; the button's POST confirms
// and shows what is watched and the manage link; the token then no longer
// works.
func TestConfirmNeedsThePOST(t *testing.T) {
	e := start(t, community.Limits{}, Options{})
	e.do(t, "POST", "/subscribe", subscribeForm("carol@example.org", "dist Try-Tiny\nexpect issuer=https://token.actions.githubusercontent.com repository=carol/try-tiny"))
	tok := e.sent.confirmToken(t, "carol@example.org")
	for range 2 {
		a := e.do(t, "GET", "/confirm?t="+url.QueryEscape(tok), nil)
		if a.status != 200 || !strings.Contains(a.body, `<form method="post" action="confirm">`) || !strings.Contains(a.body, `name="t" value="`+tok+`"`) {
			t.Fatalf("GET /confirm: %d\n%s", a.status, a.body)
		}
		checkHeaders(t, "GET /confirm", a)
	}
	if s := e.stored(t)["carol@example.org"]; s.Confirmed {
		t.Fatal("a GET of the confirmation link confirmed the subscription")
	}
	a := e.do(t, "POST", "/confirm", url.Values{"t": {tok}})
	if a.status != 200 || !strings.Contains(a.body, "Subscription confirmed") || !strings.Contains(a.body, "Try-Tiny") ||
		!strings.Contains(a.body, "repository <code>carol/try-tiny</code>") {
		t.Fatalf("POST /confirm: %d\n%s", a.status, a.body)
	}
	s := e.stored(t)["carol@example.org"]
	if !s.Confirmed {
		t.Fatal("the POST did not confirm")
	}
	manage := e.c.ManageURL(&s)
	if manage == "" || !strings.Contains(a.body, `href="`+strings.ReplaceAll(manage, "&", "&amp;")+`"`) {
		t.Errorf("the confirmed page lacks the manage link %q:\n%s", manage, a.body)
	}
	if again := e.do(t, "POST", "/confirm", url.Values{"t": {tok}}); again.status != 404 || !strings.Contains(again.body, "unknown, used or expired") {
		t.Errorf("a used confirmation token: %d\n%s", again.status, again.body)
	}
}

func TestBadTokens(t *testing.T) {
	e := start(t, community.Limits{}, Options{})
	bogus := url.Values{"t": {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}
	for _, c := range []struct{ method, path string }{
		{"GET", "/confirm"}, {"POST", "/confirm"}, {"POST", "/confirm?t=nope"},
		{"GET", "/manage?t=nope"}, {"GET", "/manage"}, {"POST", "/manage"},
		{"GET", "/unsubscribe"}, {"POST", "/unsubscribe"}, {"POST", "/unsubscribe?t=nope"},
		{"GET", "/feed?t=nope"}, {"GET", "/feed"},
		{"GET", "/manage?t=" + strings.Repeat("A", 600)},
	} {
		var form url.Values
		if c.method == "POST" && !strings.Contains(c.path, "?") {
			form = bogus
		}
		a := e.do(t, c.method, c.path, form)
		if a.status != 404 || !strings.Contains(a.body, "This link is unknown, used or expired") || !strings.Contains(a.body, `href="subscribe"`) {
			t.Errorf("%s %s: %d, want the 404 page\n%.2000s", c.method, c.path, a.status, a.body)
		}
		checkHeaders(t, c.method+" "+c.path, a)
	}
}

// TestManage: the manage page shows the rules as text, a POST replaces
// them, bad input is a 400 that changes nothing, and the page's
// unsubscribe button works.
func TestManage(t *testing.T) {
	e := start(t, community.Limits{}, Options{})
	s := e.subscribeAndConfirm(t, "dave@example.org", "author DAVE\nnamespace Dave::*")
	tok := tokenOf(t, e.c.ManageURL(s))
	a := e.do(t, "GET", "/manage?t="+url.QueryEscape(tok), nil)
	if a.status != 200 || !strings.Contains(a.body, "author DAVE\nnamespace Dave::*\n</textarea>") || !strings.Contains(a.body, `name="mail" value="1" checked`) {
		t.Fatalf("GET /manage: %d\n%s", a.status, a.body)
	}
	checkHeaders(t, "GET /manage", a)

	upd := url.Values{"t": {tok}, "rules": {"dist Dave-Tools\nexpect issuer=https://token.actions.githubusercontent.com repository=dave/tools dists=Dave-Tools"}, "webhook": {""}}
	a = e.do(t, "POST", "/manage", upd)
	if a.status != 200 || !strings.Contains(a.body, `id="saved"`) || !strings.Contains(a.body, "Dave-Tools") {
		t.Fatalf("POST /manage: %d\n%s", a.status, a.body)
	}
	got, err := e.c.Manage(tok)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Rules) != 1 || got.Rules[0] != (community.Rule{Kind: "dist", Value: "Dave-Tools"}) || len(got.Expect) != 1 || got.Expect[0].Repository != "dave/tools" || got.Mail {
		t.Errorf("after the update the store holds %+v", got)
	}

	bad := url.Values{"t": {tok}, "rules": {"dist Dave-Tools\npath <i>x"}, "mail": {"1"}}
	a = e.do(t, "POST", "/manage", bad)
	if a.status != 400 || !strings.Contains(a.body, "line 2") || !strings.Contains(a.body, "path &lt;i&gt;x") {
		t.Errorf("bad manage POST: %d\n%s", a.status, a.body)
	}
	if again, _ := e.c.Manage(tok); again == nil || again.Mail || len(again.Rules) != 1 {
		t.Errorf("a refused update changed the store: %+v", again)
	}

	m := regexp.MustCompile(`<form method="post" action="unsubscribe" class="unsub">\s*<input type="hidden" name="t" value="([^"]+)">`).FindStringSubmatch(a.body)
	if m == nil {
		t.Fatalf("no unsubscribe form on the manage page:\n%s", a.body)
	}
	if a := e.do(t, "POST", "/unsubscribe", url.Values{"t": {m[1]}}); a.status != 200 || !strings.Contains(a.body, "Unsubscribed") {
		t.Fatalf("unsubscribe from the manage page: %d\n%s", a.status, a.body)
	}
	if _, err := e.c.Manage(tok); !errors.Is(err, community.ErrBadToken) {
		t.Errorf("after unsubscribing, Manage: %v", err)
	}
}

// TestUnsubscribe: GET shows a button and changes nothing; RFC 8058's
// one-click POST (url-encoded or multipart, token in the URL) unsubscribes
// without a page in between.
func TestUnsubscribe(t *testing.T) {
	e := start(t, community.Limits{}, Options{})
	for i, enc := range []string{"urlencoded", "multipart"} {
		addr := "erin" + strconv.Itoa(i) + "@example.org"
		s := e.subscribeAndConfirm(t, addr, "author ERIN")
		link := e.c.UnsubscribeURL(s)
		u, _ := url.Parse(link)
		path := u.Path + "?" + u.RawQuery
		a := e.do(t, "GET", path, nil)
		if a.status != 200 || !strings.Contains(a.body, `<form method="post" action="unsubscribe">`) {
			t.Fatalf("GET %s: %d\n%s", path, a.status, a.body)
		}
		checkHeaders(t, "GET /unsubscribe", a)
		if _, ok := e.stored(t)[addr]; !ok {
			t.Fatal("a GET of the unsubscribe link unsubscribed")
		}
		var req *http.Request
		if enc == "urlencoded" {
			req, _ = http.NewRequest("POST", e.srv.URL+path, strings.NewReader("List-Unsubscribe=One-Click"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			var buf bytes.Buffer
			mw := multipart.NewWriter(&buf)
			mw.WriteField("List-Unsubscribe", "One-Click")
			mw.Close()
			req, _ = http.NewRequest("POST", e.srv.URL+path, &buf)
			req.Header.Set("Content-Type", mw.FormDataContentType())
		}
		if a := e.send(t, req); a.status != 200 {
			t.Fatalf("one-click POST (%s): %d\n%s", enc, a.status, a.body)
		}
		if _, ok := e.stored(t)[addr]; ok {
			t.Errorf("one-click POST (%s) left the subscriber in the store", enc)
		}
		if _, err := e.c.Manage(tokenOf(t, e.c.ManageURL(s))); !errors.Is(err, community.ErrBadToken) {
			t.Errorf("after one-click (%s), Manage: %v", enc, err)
		}
	}
}

// TestMethodsAndLimits: each path answers only its methods (405 with
// Allow), bodies over the bound are 413 and change nothing, unknown paths
// are 404, and a cross-site browser POST is refused.
func TestMethodsAndLimits(t *testing.T) {
	e := start(t, community.Limits{}, Options{})
	for _, c := range []struct{ method, path, allow string }{
		{"PUT", "/subscribe", "GET, HEAD, POST"}, {"DELETE", "/confirm", "GET, HEAD, POST"},
		{"POST", "/feed", "GET, HEAD"}, {"POST", "/style.css", "GET, HEAD"}, {"PATCH", "/manage", "GET, HEAD, POST"},
		{"OPTIONS", "/unsubscribe", "GET, HEAD, POST"},
	} {
		a := e.do(t, c.method, c.path, nil)
		if a.status != 405 || a.header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d, Allow %q; want 405, %q", c.method, c.path, a.status, a.header.Get("Allow"), c.allow)
		}
	}
	if a := e.do(t, "GET", "/nothing-here", nil); a.status != 404 {
		t.Errorf("GET /nothing-here: %d", a.status)
	}
	checkHeaders(t, "404", e.do(t, "GET", "/nothing-here", nil))

	big := subscribeForm("frank@example.org", "author FRANK\n#"+strings.Repeat("x", DefaultMaxBody))
	if a := e.do(t, "POST", "/subscribe", big); a.status != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over 64 KiB: %d", a.status)
	}
	// A bound of its own, for a body under the default.
	small := start(t, community.Limits{}, Options{MaxBody: 100})
	if a := small.do(t, "POST", "/subscribe", subscribeForm("frank@example.org", strings.Repeat("#", 100))); a.status != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over Options.MaxBody: %d", a.status)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("email", "x.txt")
	fw.Write([]byte("frank@example.org"))
	mw.Close()
	req, _ := http.NewRequest("POST", e.srv.URL+"/subscribe", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if a := e.send(t, req); a.status != 400 || !strings.Contains(a.body, "The form could not be read") {
		t.Errorf("a file upload: %d\n%s", a.status, a.body)
	}
	if a := e.do(t, "POST", "/subscribe", subscribeForm("frank@example.org", "author FRANK"), "Sec-Fetch-Site", "cross-site"); a.status != 403 {
		t.Errorf("a cross-site POST: %d", a.status)
	}
	if a := e.do(t, "POST", "/subscribe", subscribeForm("frank@example.org", "author FRANK"), "Origin", "https://evil.example"); a.status != 403 {
		t.Errorf("a POST from another origin: %d", a.status)
	}
	if n := len(e.stored(t)) + len(small.stored(t)); n != 0 {
		t.Errorf("refused requests stored %d subscribers", n)
	}
	if n := len(e.sent.all()); n != 0 {
		t.Errorf("refused requests sent %d mails", n)
	}
	if a := e.do(t, "POST", "/subscribe", subscribeForm("frank@example.org", "author FRANK"), "Sec-Fetch-Site", "same-origin"); a.status != 200 {
		t.Errorf("a same-origin POST: %d\n%s", a.status, a.body)
	}
	// A form sent as multipart/form-data (a form's enctype may say so).
	buf.Reset()
	mw = multipart.NewWriter(&buf)
	mw.WriteField("email", "judy@example.org")
	mw.WriteField("rules", "author JUDY")
	mw.WriteField("mail", "1")
	mw.Close()
	req, _ = http.NewRequest("POST", e.srv.URL+"/subscribe", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if a := e.send(t, req); a.status != 200 {
		t.Errorf("a multipart subscribe form: %d\n%s", a.status, a.body)
	}
	if s, ok := e.stored(t)["judy@example.org"]; !ok || s.Rules[0].Value != "JUDY" {
		t.Errorf("the multipart form stored %+v", s)
	}
}

func TestSource(t *testing.T) {
	cases := []struct {
		remote, xff string
		trust       bool
		want        string
	}{
		{"192.0.2.7:5555", "", false, "192.0.2.7"},
		{"192.0.2.7:5555", "198.51.100.1", false, "192.0.2.7"},
		{"192.0.2.7:5555", "198.51.100.1", true, "198.51.100.1"},
		{"192.0.2.7:5555", "10.0.0.1, 198.51.100.1", true, "198.51.100.1"},
		{"192.0.2.7:5555", "203.0.113.9, 10.0.0.1,198.51.100.1", true, "198.51.100.1"},
		{"192.0.2.7:5555", "198.51.100.1,garbage", true, "192.0.2.7"},
		{"192.0.2.7:5555", "", true, "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "", false, "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:443", "", false, "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.9]:80", "", false, "192.0.2.9"},
		{"[fe80::1%eth0]:80", "", false, "fe80::/64"},
		{"192.0.2.7:5555", "2001:db8::1", true, "2001:db8::/64"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := Source(r, c.trust); got != c.want {
			t.Errorf("Source(%s, XFF %q, trust %v) = %q, want %q", c.remote, c.xff, c.trust, got, c.want)
		}
	}
	// The last of several X-Forwarded-For header lines is the proxy's.
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Add("X-Forwarded-For", "203.0.113.1")
	r.Header.Add("X-Forwarded-For", "203.0.113.2")
	if got := Source(r, true); got != "203.0.113.2" {
		t.Errorf("two X-Forwarded-For lines: %q", got)
	}
}

// TestFeed: the feed link serves Atom (application/atom+xml, no-store,
// a CSP that runs nothing), naming itself; after unsubscribing it is the
// 404 page.
func TestFeed(t *testing.T) {
	e := start(t, community.Limits{}, Options{})
	s := e.subscribeAndConfirm(t, "ivan@example.org", "author IVAN")
	link := e.c.FeedURL(s)
	u, _ := url.Parse(link)
	a := e.do(t, "GET", u.Path+"?"+u.RawQuery, nil)
	if a.status != 200 || a.header.Get("Content-Type") != "application/atom+xml; charset=utf-8" {
		t.Fatalf("GET feed: %d %q\n%s", a.status, a.header.Get("Content-Type"), a.body)
	}
	var f struct {
		XMLName xml.Name
		ID      string `xml:"id"`
		Links   []struct {
			Rel  string `xml:"rel,attr"`
			Href string `xml:"href,attr"`
		} `xml:"link"`
	}
	if err := xml.Unmarshal([]byte(a.body), &f); err != nil || f.XMLName.Local != "feed" || f.XMLName.Space != "http://www.w3.org/2005/Atom" || f.ID == "" {
		t.Fatalf("not an Atom feed (%v): %+v\n%s", err, f, a.body)
	}
	self := false
	for _, l := range f.Links {
		self = self || (l.Rel == "self" && l.Href == link)
	}
	if !self {
		t.Errorf("the feed's links %+v do not name it (%s)", f.Links, link)
	}
	if a.header.Get("Cache-Control") != "no-store" || a.header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(a.header.Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("feed headers: %v", a.header)
	}
	if err := e.c.Unsubscribe(context.Background(), tokenOf(t, e.c.UnsubscribeURL(s))); err != nil {
		t.Fatal(err)
	}
	if a := e.do(t, "GET", u.Path+"?"+u.RawQuery, nil); a.status != 404 {
		t.Errorf("the feed after unsubscribing: %d", a.status)
	}
}

// TestRateLimitSource: the handler counts a subscribe request against
// the connection's address, or the proxy's X-Forwarded-For entry only
// when told to trust it.
func TestRateLimitSource(t *testing.T) {
	for _, trust := range []bool{false, true} {
		e := start(t, community.Limits{PerSource: 1}, Options{TrustForwardedFor: trust})
		var got []int
		for i, xff := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.1"} {
			a := e.do(t, "POST", "/subscribe", subscribeForm("kim"+strconv.Itoa(i)+"@example.org", "author KIM"), "X-Forwarded-For", xff)
			got = append(got, a.status)
		}
		want := []int{200, 429, 429}
		if trust {
			want = []int{200, 200, 429}
		}
		if !slices.Equal(got, want) {
			t.Errorf("TrustForwardedFor %v: answers %v, want %v", trust, got, want)
		}
	}
}

// TestManageShowsSuspended: a subscriber whose mail bounced is told so,
// and how to resume.
func TestManageShowsSuspended(t *testing.T) {
	e := start(t, community.Limits{}, Options{})
	s := e.subscribeAndConfirm(t, "liam@example.org", "author LIAM")
	err := e.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("community-subscribers"))
		var got community.Subscriber
		if err := json.Unmarshal(b.Get([]byte(s.ID)), &got); err != nil {
			return err
		}
		got.Suspended, got.Bounces = true, community.MaxBounces
		v, _ := json.Marshal(got)
		return b.Put([]byte(s.ID), v)
	})
	if err != nil {
		t.Fatal(err)
	}
	a := e.do(t, "GET", "/manage?t="+url.QueryEscape(tokenOf(t, e.c.ManageURL(s))), nil)
	if a.status != 200 || !strings.Contains(a.body, `id="suspended"`) || !strings.Contains(a.body, "after 3 bounces in a row") {
		t.Errorf("the manage page of a suspended subscriber: %d\n%s", a.status, a.body)
	}
}

// TestPaths: a mux mounting the handler on Paths serves every page.
func TestPaths(t *testing.T) {
	e := start(t, community.Limits{}, Options{})
	mux := http.NewServeMux()
	h := Handler(e.c, Options{})
	for _, p := range Paths {
		mux.Handle(p, h)
	}
	for _, p := range []string{"/subscribe", "/unsubscribe?t=x", "/style.css"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		if rec.Code != 200 {
			t.Errorf("GET %s through a mux on Paths: %d", p, rec.Code)
		}
	}
	for _, p := range []string{"/manage?t=x", "/feed?t=x", "/confirm?t=x"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		if rec.Code != 404 || !strings.Contains(rec.Body.String(), "unknown, used or expired") {
			t.Errorf("GET %s through a mux on Paths: %d", p, rec.Code)
		}
	}
}

// TestManageShowsWebhookSecret: a subscriber with a webhook finds on their
// own page the key its bodies are signed with; without one, no key shows.
func TestManageShowsWebhookSecret(t *testing.T) {
	e := start(t, community.Limits{}, Options{})
	s := e.subscribeAndConfirm(t, "erin@example.org", "author ERIN")
	tok := tokenOf(t, e.c.ManageURL(s))
	secret := e.c.WebhookSecret(s)
	if secret == "" {
		t.Fatal("no webhook secret")
	}
	if a := e.do(t, "GET", "/manage?t="+url.QueryEscape(tok), nil); strings.Contains(a.body, secret) || strings.Contains(a.body, "webhook-secret") {
		t.Errorf("the key shows without a webhook:\n%s", a.body)
	}
	upd := url.Values{"t": {tok}, "rules": {"author ERIN"}, "mail": {"1"}, "webhook": {"https://hooks.example.org/cpan"}}
	if a := e.do(t, "POST", "/manage", upd); a.status != 200 {
		t.Fatalf("POST /manage: %d\n%s", a.status, a.body)
	}
	a := e.do(t, "GET", "/manage?t="+url.QueryEscape(tok), nil)
	if !strings.Contains(a.body, `<code id="webhook-secret">`+secret+`</code>`) {
		t.Errorf("the manage page does not show the webhook key:\n%s", a.body)
	}
}
