package proxy

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/CPAN-Security/cpan-tlog/client"
)

// The hook's endpoints, open only with Config.CheckToken (cpantlog exec).
//
// POST /.cpantlog/check?path=CPAN_PATH, with the bytes of the file the
// hook is about to use as the body: the proxy verifies them exactly as it
// verifies a file it downloaded for that path (the mirror's proof first
// when the proxy has a proof tree, else the log; freshness for an index
// file; paths outside authors/id/ and the index files refused) and
// answers
//
//	200  verified; the body is one line saying why
//	403  refused; the body is the reason
//	409  security error (signed evidence of misbehaviour); the body is the reason
//	503  could not check (log unreachable); the body is the reason
//	400  malformed request (no path, an invalid path, an unknown parameter)
//	401  no or wrong token
//	413  body larger than MaxFileSize (recorded as could not check)
//
// and records the decision in the Journal under the path, as for a
// download; a verified file's sha256 is then among the verified ones.
//
// POST /.cpantlog/exempt?subject=S&pattern=P, optionally with the file's
// bytes as the body: accepted (204) only when Config.Exempt says P is one
// of the user's patterns and matches S; the Journal lists S as exempt by P
// and knows as exempt the sha256 of the bytes when they came, else the
// last path element of S (Journal.Exempt, Journal.ExemptName).
// Otherwise 403.
const (
	hookPrefix    = "/.cpantlog/"
	checkEndpoint = hookPrefix + "check"
	exemptPath    = hookPrefix + "exempt"
)

func (p *Proxy) serveHook(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != checkEndpoint && r.URL.Path != exemptPath {
		http.Error(w, fmt.Sprintf("no such endpoint: %s (there are %s and %s)", r.URL.Path, checkEndpoint, exemptPath), http.StatusNotFound)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, r.URL.Path+" takes POST only", http.StatusMethodNotAllowed)
		return
	}
	if !p.authorized(r) {
		p.metrics.WithLabelValues("unauthorized").Inc()
		p.cfg.Logger.LogAttrs(r.Context(), slog.LevelWarn, "proxy", slog.String("decision", "unauthorized"), slog.String("url", r.URL.String()), slog.String("remote", r.RemoteAddr))
		w.Header().Set("WWW-Authenticate", `Bearer realm="cpantlog exec"`)
		http.Error(w, "no or wrong bearer token (CPANTLOG_EXEC_TOKEN)", http.StatusUnauthorized)
		return
	}
	if r.URL.Path == checkEndpoint {
		p.serveCheck(w, r)
	} else {
		p.serveExempt(w, r)
	}
}

// authorized compares the request's bearer token with CheckToken in
// constant time.
func (p *Proxy) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && len(r.Header.Values("Authorization")) == 1 &&
		subtle.ConstantTimeCompare([]byte(got), []byte(p.cfg.CheckToken)) == 1
}

// params returns the query's parameters, each given exactly once: an
// unknown, repeated or missing one is a malformed request.
func params(r *http.Request, names ...string) (map[string]string, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("the query does not parse: %v", err)
	}
	out := map[string]string{}
	for k, v := range q {
		known := false
		for _, n := range names {
			known = known || k == n
		}
		switch {
		case !known:
			return nil, fmt.Errorf("unknown parameter %q (%s takes %s)", k, r.URL.Path, strings.Join(names, " and "))
		case len(v) != 1:
			return nil, fmt.Errorf("parameter %q given %d times", k, len(v))
		}
		out[k] = v[0]
	}
	for _, n := range names {
		if out[n] == "" {
			return nil, fmt.Errorf("no %s parameter (%s?%s=...)", n, r.URL.Path, n)
		}
	}
	return out, nil
}

// validPath reports why a CPAN path is malformed (not merely a path the
// proxy refuses): it must be relative, valid UTF-8 without control
// characters or backslashes, and have no empty, . or .. segment.
func validPath(p string) error {
	switch {
	case !utf8.ValidString(p):
		return errors.New("the path is not valid UTF-8")
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q is absolute: give the CPAN path, authors/id/A/AB/ID/FILE", p)
	case strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }):
		return fmt.Errorf("%q contains a control character or a backslash", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%q has an empty, . or .. segment", p)
		}
	}
	return nil
}

// readBody hashes the request's body as the file at cpanPath, at most
// MaxFileSize bytes. tooLarge says the body was over the bound.
func (p *Proxy) readBody(r *http.Request, cpanPath string) (f client.File, tooLarge bool, err error) {
	if r.ContentLength > p.cfg.MaxFileSize {
		return client.File{}, true, fmt.Errorf("the body is %d bytes, more than the proxy's limit of %d", r.ContentLength, p.cfg.MaxFileSize)
	}
	f, err = client.HashReader(io.LimitReader(r.Body, p.cfg.MaxFileSize+1), cpanPath)
	if err != nil {
		return client.File{}, false, fmt.Errorf("could not read the body: %v", err)
	}
	if int64(f.Size) > p.cfg.MaxFileSize {
		return client.File{}, true, fmt.Errorf("the body is more than the proxy's limit of %d bytes", p.cfg.MaxFileSize)
	}
	return f, false, nil
}

func answer(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	io.WriteString(w, strings.TrimRight(body, "\n")+"\n")
}

func (p *Proxy) serveCheck(w http.ResponseWriter, r *http.Request) {
	q, err := params(r, "path")
	if err != nil {
		answer(w, http.StatusBadRequest, err.Error())
		return
	}
	cpanPath := q["path"]
	if err := validPath(cpanPath); err != nil {
		answer(w, http.StatusBadRequest, err.Error())
		return
	}
	// The path as a request for it would be classified: the same rules.
	cpanPath, class, err := Classify("/"+cpanPath, "/"+cpanPath)
	if err == nil && class != Upload && class != Index {
		err = fmt.Errorf("%w: %s is a %s file, which the log does not record (the check verifies archives under authors/id/ and the index files)", ErrNotServed, cpanPath, class)
		if class == Modlist {
			err = fmt.Errorf("%w: %s is not logged and is evaluated as Perl by CPAN.pm: a client must use the proxy's own empty one", ErrNotServed, cpanPath)
		}
	}
	if err != nil {
		if cpanPath == "" {
			cpanPath = q["path"]
		}
		p.decide(r, "refused", cpanPath, err.Error())
		answer(w, http.StatusForbidden, err.Error())
		return
	}
	f, tooLarge, err := p.readBody(r, cpanPath)
	if tooLarge {
		p.decide(r, "error", cpanPath, err.Error()+": cpantlog cannot check it")
		answer(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	if err != nil {
		answer(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	why, _, err := p.checkFile(ctx, class, f)
	switch {
	case err == nil:
		p.decideFile(r, "verified", cpanPath, why, &f.SHA256)
		answer(w, http.StatusOK, oneLine(why))
	case errors.Is(err, client.ErrSecurity):
		p.decideFile(r, "refused", cpanPath, err.Error(), &f.SHA256)
		answer(w, http.StatusConflict, err.Error())
	case client.Unchecked(err):
		p.decideFile(r, "log_unreachable", cpanPath, err.Error(), &f.SHA256)
		w.Header().Set("Retry-After", "30")
		answer(w, http.StatusServiceUnavailable, err.Error())
	default:
		p.decideFile(r, "refused", cpanPath, err.Error(), &f.SHA256)
		answer(w, http.StatusForbidden, err.Error())
	}
}

func (p *Proxy) serveExempt(w http.ResponseWriter, r *http.Request) {
	q, err := params(r, "subject", "pattern")
	if err != nil {
		answer(w, http.StatusBadRequest, err.Error())
		return
	}
	subject, pattern := q["subject"], q["pattern"]
	if !utf8.ValidString(subject) || !utf8.ValidString(pattern) {
		answer(w, http.StatusBadRequest, "the subject and the pattern must be valid UTF-8")
		return
	}
	// The bytes, when sent, let cpantlog exec's scan tell the exempt file
	// from any other of its name.
	f, tooLarge, err := p.readBody(r, subject)
	if tooLarge {
		answer(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	if err != nil {
		answer(w, http.StatusBadRequest, err.Error())
		return
	}
	log := func(decision, reason string) {
		p.metrics.WithLabelValues(decision).Inc()
		p.cfg.Logger.LogAttrs(r.Context(), slog.LevelInfo, "proxy", slog.String("decision", decision), slog.String("method", r.Method),
			slog.String("url", r.URL.String()), slog.String("path", subject), slog.String("reason", reason))
	}
	if p.cfg.Exempt == nil || !p.cfg.Exempt(subject, pattern) {
		reason := fmt.Sprintf("%q is not one of the exemption patterns cpantlog exec was given (CPANTLOG_NOVERIFY), or does not match %q", pattern, subject)
		if p.cfg.Exempt == nil {
			reason = "cpantlog exec was given no exemption patterns (CPANTLOG_NOVERIFY is empty)"
		}
		log("exempt_refused", reason)
		answer(w, http.StatusForbidden, reason)
		return
	}
	var sum *[32]byte
	if f.Size > 0 {
		sum = &f.SHA256
	}
	log("exempt", "exempt by "+pattern)
	p.cfg.Journal.exempted(subject, pattern, sum)
	w.WriteHeader(http.StatusNoContent)
}
