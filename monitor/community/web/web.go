// Package web serves the community monitor's pages: subscribe, confirm,
// manage, unsubscribe and each subscriber's Atom feed (package community
// does the work; this package is the forms around it).
//
// What it promises:
//   - A subscribe request always ends on the same page ("if the address
//     can be subscribed, a confirmation mail is on its way"): the pages
//     never tell anyone whether an address is subscribed.
//   - A link in a mail changes nothing when it is fetched (mail scanners
//     fetch links): confirm and unsubscribe show a button, and only its
//     POST acts. The unsubscribe address also takes RFC 8058's one-click
//     POST (body List-Unsubscribe=One-Click) with no page in between.
//   - Everything a subscriber wrote is escaped (html/template); no page
//     loads a script; the Content-Security-Policy allows only this
//     handler's style sheet and forms posting to itself; no page is
//     framed; no Referer carries a token away, and no page carrying a
//     token is cached.
//   - Bodies are bounded (Options.MaxBody), each path answers only the
//     methods it needs, and cross-origin browser POSTs are refused.
//   - The source a subscribe request is rate-limited by is the client's
//     IP address (an IPv6 address by its /64, which one client holds
//     whole), taken from the connection, or from the last
//     X-Forwarded-For entry only when Options.TrustForwardedFor says a
//     proxy of the operator's appends it.
//
// Pages link to each other by relative URLs, so the handler works at the
// root of community.Config.BaseURL or under http.StripPrefix.
package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/CPAN-Security/cpan-tlog/monitor/community"
)

//go:embed assets
var assets embed.FS

// CSP is the Content-Security-Policy of every answer: the handler's own
// style sheet, forms posting to the handler, nothing else (no script, no
// image, no frame, no <base>).
const CSP = "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// DefaultMaxBody bounds a request body when Options.MaxBody is 0.
const DefaultMaxBody = 64 << 10

// maxToken bounds a token read from a request; real ones are far shorter.
const maxToken = 512

// Paths are the paths Handler serves, for a mux that serves other things
// too (the monitor's /healthz and /metrics): mount the handler on each.
// Handler also answers "/" (a redirect to the subscribe form) when
// mounted there.
var Paths = []string{"/subscribe", "/confirm", "/manage", "/unsubscribe", "/feed", "/style.css"}

// Options of Handler.
type Options struct {
	// TrustForwardedFor takes a request's source (for the rate limits)
	// from the last X-Forwarded-For entry, the one a reverse proxy of the
	// operator's appends (nginx: $proxy_add_x_forwarded_for). Set it only
	// behind such a proxy: otherwise a client names its own source.
	TrustForwardedFor bool
	// MaxBody bounds a request body (DefaultMaxBody when 0).
	MaxBody int64
	// RetryAfter is what a 429 asks a client to wait when the engine's
	// error does not say (default 1h, the per-source window).
	RetryAfter time.Duration
	// Timeout bounds each request's work in the engine (sending the
	// confirmation mail included; default 30s).
	Timeout time.Duration
	Logger  *slog.Logger
}

type handler struct {
	c      *community.Community
	opts   Options
	pages  map[string]*template.Template
	css    []byte
	routes map[string]map[string]http.HandlerFunc
}

// Handler serves the community monitor's pages for c.
func Handler(c *community.Community, opts Options) http.Handler {
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Hour
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	h := &handler{c: c, opts: opts, pages: map[string]*template.Template{}}
	layout := template.Must(template.New("").Funcs(funcs).ParseFS(assets, "assets/layout.html"))
	names, err := fs.Glob(assets, "assets/*.html")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "assets/"), ".html")
		if name == "layout" {
			continue
		}
		h.pages[name] = template.Must(template.Must(layout.Clone()).ParseFS(assets, n))
	}
	h.css, err = assets.ReadFile("assets/style.css")
	if err != nil {
		panic(err)
	}
	h.routes = map[string]map[string]http.HandlerFunc{
		"/":            {http.MethodGet: h.root},
		"/style.css":   {http.MethodGet: h.style},
		"/subscribe":   {http.MethodGet: h.subscribeForm, http.MethodPost: h.subscribe},
		"/confirm":     {http.MethodGet: h.confirmForm, http.MethodPost: h.confirm},
		"/manage":      {http.MethodGet: h.manageForm, http.MethodPost: h.update},
		"/unsubscribe": {http.MethodGet: h.unsubscribeForm, http.MethodPost: h.unsubscribe},
		"/feed":        {http.MethodGet: h.feed},
	}
	// Browsers say where a POST comes from (Sec-Fetch-Site, Origin): one
	// from another site's page is refused. Mail providers' one-click
	// unsubscribe POSTs come from their servers, with neither header.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.message(w, http.StatusForbidden, "Refused", "This form was sent from another site's page. Use the form on this site.")
	}))
	return cop.Handler(h)
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	// Pages carry tokens (in their URL, their forms, their links): no
	// cache keeps one. The style sheet overrides this.
	hd.Set("Cache-Control", "no-store")
	methods, ok := h.routes[r.URL.Path]
	if !ok {
		h.message(w, http.StatusNotFound, "Not found", "There is no page here.")
		return
	}
	m := r.Method
	if m == http.MethodHead {
		m = http.MethodGet
	}
	fn := methods[m]
	if fn == nil {
		allow := make([]string, 0, 3)
		for _, k := range []string{http.MethodGet, http.MethodHead, http.MethodPost} {
			if methods[k] != nil || (k == http.MethodHead && methods[http.MethodGet] != nil) {
				allow = append(allow, k)
			}
		}
		hd.Set("Allow", strings.Join(allow, ", "))
		h.message(w, http.StatusMethodNotAllowed, "Method not allowed", "This page answers "+strings.Join(allow, ", ")+" only.")
		return
	}
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, h.opts.MaxBody)
		if err := parseBody(r, h.opts.MaxBody); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				h.message(w, http.StatusRequestEntityTooLarge, "Too large", "The form sent more than this page accepts.")
				return
			}
			h.message(w, http.StatusBadRequest, "Bad request", "The form could not be read.")
			return
		}
	}
	fn(w, r)
}

// parseBody reads a form body, url-encoded or (RFC 8058 allows it for
// one-click unsubscribe) multipart, into r.PostForm, in memory and
// bounded by max.
func parseBody(r *http.Request, max int64) error {
	ct := r.Header.Get("Content-Type")
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "multipart/form-data") {
		if err := r.ParseMultipartForm(max); err != nil {
			return err
		}
		if r.MultipartForm != nil && len(r.MultipartForm.File) > 0 {
			r.MultipartForm.RemoveAll()
			return errors.New("file uploads are not accepted")
		}
		return nil
	}
	return r.ParseForm()
}

// token is the request's t: from the form body of a POST, else the query.
func token(r *http.Request) string {
	t := r.PostForm.Get("t")
	if t == "" {
		t = r.URL.Query().Get("t")
	}
	if len(t) > maxToken {
		return ""
	}
	return t
}

func (h *handler) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), h.opts.Timeout)
}

// page is what every template gets.
type page struct {
	Title   string
	Heading string
	Message string
	Error   string // an input error to show above the form
	Form    form
	Token   string
	// For the pages about one subscriber.
	Sub        *community.Subscriber
	ManageURL  string
	FeedURL    string
	UnsubToken string
	// WebhookSecret is the key the subscriber's webhook bodies are signed
	// with (shown only on the pages a subscriber's own link opens).
	WebhookSecret string
	Saved         bool
	SubscribeAt   string // the relative link to the subscribe form
}

// form is the subscribe and manage forms' fields, as shown.
type form struct {
	Email, Rules, Webhook string
	Mail                  bool
}

func (h *handler) render(w http.ResponseWriter, status int, name string, p page) {
	if p.SubscribeAt == "" {
		p.SubscribeAt = "subscribe"
	}
	var buf bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		h.opts.Logger.Error("community web: template", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (h *handler) message(w http.ResponseWriter, status int, heading, msg string) {
	h.render(w, status, "message", page{Title: heading, Heading: heading, Message: msg})
}

// fail answers an engine error: the errors a visitor can act on with
// their page, anything else as a 500 that says nothing of the cause.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, community.ErrBadToken):
		h.render(w, http.StatusNotFound, "badtoken", page{Title: "Unknown link", Heading: "This link is unknown, used or expired"})
	case errors.Is(err, community.ErrRateLimited):
		wait := h.opts.RetryAfter
		var ra interface{ RetryAfter() time.Duration }
		if errors.As(err, &ra) && ra.RetryAfter() > 0 {
			wait = ra.RetryAfter()
		}
		secs := int64((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		h.message(w, http.StatusTooManyRequests, "Too many requests",
			"This address or your network asked too often. Nothing was changed or sent. Try again in "+humanDuration(wait)+".")
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		h.opts.Logger.Warn("community web: request timed out", "path", r.URL.Path, "err", err)
		h.message(w, http.StatusServiceUnavailable, "Try again later", "This took too long. Try again in a few minutes.")
	default:
		h.opts.Logger.Error("community web: request failed", "path", r.URL.Path, "err", err)
		h.message(w, http.StatusInternalServerError, "Something went wrong", "Something went wrong on our side. Try again later.")
	}
}

func humanDuration(d time.Duration) string {
	switch {
	case d >= time.Hour:
		n := int((d + time.Hour - 1) / time.Hour)
		return plural(n, "hour")
	case d >= time.Minute:
		return plural(int((d+time.Minute-1)/time.Minute), "minute")
	}
	return plural(max(1, int((d+time.Second-1)/time.Second)), "second")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

func (h *handler) root(w http.ResponseWriter, r *http.Request) {
	// A relative Location (http.Redirect would make it absolute), so
	// that it holds under a prefix too.
	w.Header().Set("Location", "subscribe")
	w.WriteHeader(http.StatusSeeOther)
}

func (h *handler) style(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(h.css)
}

func (h *handler) subscribeForm(w http.ResponseWriter, r *http.Request) {
	h.render(w, http.StatusOK, "subscribe", page{Title: "Subscribe", Form: form{Mail: true}})
}

func (h *handler) subscribe(w http.ResponseWriter, r *http.Request) {
	shown := shownForm(r.PostForm)
	req, err := parseForm(r.PostForm, true)
	if err == nil {
		ctx, cancel := h.ctx(r)
		defer cancel()
		err = h.c.Subscribe(ctx, req, Source(r, h.opts.TrustForwardedFor))
	}
	var ie *community.InputError
	switch {
	case errors.As(err, &ie):
		h.render(w, http.StatusBadRequest, "subscribe", page{Title: "Subscribe", Error: ie.Error(), Form: shown})
	case err != nil:
		h.fail(w, r, err)
	default:
		h.render(w, http.StatusOK, "sent", page{Title: "Check your mail", Form: form{Email: req.Email}})
	}
}

func (h *handler) confirmForm(w http.ResponseWriter, r *http.Request) {
	t := token(r)
	if t == "" {
		h.fail(w, r, community.ErrBadToken)
		return
	}
	// Show what the button confirms: anyone may have made the request,
	// and the mail does not quote its webhook URL.
	s, err := h.c.Pending(t)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, http.StatusOK, "confirm", page{Title: "Confirm your subscription", Token: t, Sub: s})
}

func (h *handler) confirm(w http.ResponseWriter, r *http.Request) {
	t := token(r)
	if t == "" {
		h.fail(w, r, community.ErrBadToken)
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	s, err := h.c.Confirm(ctx, t)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, http.StatusOK, "confirmed", h.subPage("Subscription confirmed", s))
}

// subPage is a page about subscriber s, with its links.
func (h *handler) subPage(title string, s *community.Subscriber) page {
	p := page{Title: title, Sub: s, ManageURL: h.c.ManageURL(s), FeedURL: h.c.FeedURL(s), WebhookSecret: h.c.WebhookSecret(s),
		Form: form{Email: s.Email, Rules: FormatRules(s.Rules, s.Expect), Mail: s.Mail, Webhook: s.Webhook}}
	if u, err := url.Parse(h.c.UnsubscribeURL(s)); err == nil {
		p.UnsubToken = u.Query().Get("t")
	}
	return p
}

func (h *handler) manageForm(w http.ResponseWriter, r *http.Request) {
	t := token(r)
	s, err := h.manage(t)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	p := h.subPage("Your subscription", s)
	p.Token = t
	h.render(w, http.StatusOK, "manage", p)
}

func (h *handler) manage(t string) (*community.Subscriber, error) {
	if t == "" {
		return nil, community.ErrBadToken
	}
	return h.c.Manage(t)
}

func (h *handler) update(w http.ResponseWriter, r *http.Request) {
	t := token(r)
	s, err := h.manage(t)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	req, err := parseForm(r.PostForm, false)
	if err == nil {
		ctx, cancel := h.ctx(r)
		defer cancel()
		err = h.c.Update(ctx, t, req)
	}
	var ie *community.InputError
	if errors.As(err, &ie) {
		p := h.subPage("Your subscription", s)
		p.Token, p.Error = t, ie.Error()
		sh := shownForm(r.PostForm)
		sh.Email = s.Email
		p.Form = sh
		h.render(w, http.StatusBadRequest, "manage", p)
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if s, err = h.c.Manage(t); err != nil {
		h.fail(w, r, err)
		return
	}
	p := h.subPage("Your subscription", s)
	p.Token, p.Saved = t, true
	h.render(w, http.StatusOK, "manage", p)
}

func (h *handler) unsubscribeForm(w http.ResponseWriter, r *http.Request) {
	t := token(r)
	if t == "" {
		h.fail(w, r, community.ErrBadToken)
		return
	}
	h.render(w, http.StatusOK, "unsubscribe", page{Title: "Unsubscribe", Token: t})
}

func (h *handler) unsubscribe(w http.ResponseWriter, r *http.Request) {
	t := token(r)
	if t == "" {
		h.fail(w, r, community.ErrBadToken)
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	if err := h.c.Unsubscribe(ctx, t); err != nil {
		h.fail(w, r, err)
		return
	}
	// RFC 8058's one-click POST (List-Unsubscribe=One-Click) gets this
	// same page; its sender reads only the status.
	h.render(w, http.StatusOK, "unsubscribed", page{Title: "Unsubscribed"})
}

// Source is the address a request counts against for the per-source rate
// limit: the client's IP address, an IPv6 address by its /64 (one client
// commonly holds a whole /64, and would otherwise have 2^64 sources). With
// trustForwardedFor it is the last X-Forwarded-For entry, when that is an
// IP address.
func Source(r *http.Request, trustForwardedFor bool) string {
	if trustForwardedFor {
		if vs := r.Header.Values("X-Forwarded-For"); len(vs) > 0 {
			last := vs[len(vs)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if a, err := netip.ParseAddr(strings.TrimSpace(last)); err == nil {
				return sourceOf(a)
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return sourceOf(a)
	}
	return host
}

func sourceOf(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
