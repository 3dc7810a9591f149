// Package proxy is a CPAN mirror that verifies before it serves: every
// file under authors/id/ is downloaded from the upstream mirror, hashed,
// and served only if the transparency log proves it is the file CPAN
// published (inclusion in a trusted, quorum-cosigned checkpoint with the
// same size and sha256). Index files (02packages, CHECKSUMS, ...) pass
// through. It works as a mirror (cpanm --mirror http://127.0.0.1:7373
// --mirror-only) and as a plain-HTTP forward proxy (http_proxy=...) for
// configured CPAN hosts only: it is never an open proxy.
package proxy

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/internal/atomicfile"
	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
)

// Config configures a Proxy.
type Config struct {
	// Upstream is the mirror served in mirror mode, e.g. https://cpan.metacpan.org.
	Upstream string
	// Hosts are the host[:port]s whose requests are served in forward-proxy
	// mode; the upstream's host is always one of them.
	Hosts []string
	// Verifier checks files against the log.
	Verifier *client.Verifier
	// CacheDir holds verified files by sha256; empty disables the cache.
	CacheDir string
	// MaxFileSize bounds a downloaded file (default 512 MiB).
	MaxFileSize int64
	Logger      *slog.Logger
}

// Proxy is an http.Handler.
type Proxy struct {
	cfg      Config
	upstream *url.URL
	hosts    map[string]bool
	http     *http.Client
	metrics  *prometheus.CounterVec
	registry *prometheus.Registry
}

// DefaultHosts are CPAN's own plain-HTTP mirror names.
var DefaultHosts = []string{"www.cpan.org", "cpan.metacpan.org", "backpan.perl.org"}

// New returns a proxy.
func New(cfg Config) (*Proxy, error) {
	u, err := url.Parse(strings.TrimSuffix(cfg.Upstream, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upstream %q is not an http(s) URL", cfg.Upstream)
	}
	if cfg.Verifier == nil {
		return nil, errors.New("no verifier")
	}
	if cfg.MaxFileSize == 0 {
		cfg.MaxFileSize = 512 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Proxy{cfg: cfg, upstream: u, hosts: map[string]bool{u.Host: true},
		http:     &http.Client{Timeout: 5 * time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		metrics:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cpantlog_proxy_requests_total", Help: "Requests by decision: verified, cached, refused, passthrough, not_proxied, error."}, []string{"decision"}),
		registry: prometheus.NewRegistry(),
	}
	for _, h := range cfg.Hosts {
		p.hosts[strings.ToLower(h)] = true
	}
	p.registry.MustRegister(p.metrics)
	if cfg.CacheDir != "" {
		for _, d := range []string{"sha256", "paths"} {
			if err := os.MkdirAll(filepath.Join(cfg.CacheDir, d), 0o700); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

// Metrics serves the proxy's Prometheus metrics.
func (p *Proxy) Metrics() http.Handler {
	return promhttp.HandlerFor(p.registry, promhttp.HandlerOpts{})
}

func (p *Proxy) decide(r *http.Request, decision, cpanPath, reason string) {
	p.metrics.WithLabelValues(decision).Inc()
	p.cfg.Logger.Info("proxy", "decision", decision, "method", r.Method, "url", r.URL.String(), "path", cpanPath, "reason", reason)
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		p.decide(r, "not_proxied", "", "CONNECT")
		http.Error(w, "cpantlog proxy does not tunnel (CONNECT): use it as a plain-http CPAN mirror or http_proxy", http.StatusForbidden)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "only GET and HEAD", http.StatusMethodNotAllowed)
		return
	}
	base := p.upstream
	if r.URL.IsAbs() {
		// Forward-proxy request: only for the configured CPAN hosts.
		if r.URL.Scheme != "http" || !p.hosts[strings.ToLower(r.URL.Host)] {
			p.decide(r, "not_proxied", "", "host not configured")
			http.Error(w, fmt.Sprintf("cpantlog proxy only serves configured CPAN hosts, not %s (it is not an open proxy; add the host with --host)", r.URL.Host), http.StatusForbidden)
			return
		}
		base = &url.URL{Scheme: "http", Host: r.URL.Host}
	}
	if r.URL.Path == "/metrics" && !r.URL.IsAbs() {
		p.Metrics().ServeHTTP(w, r)
		return
	}
	clean := path.Clean("/" + r.URL.Path)
	if clean != r.URL.Path && clean+"/" != r.URL.Path {
		http.Error(w, "path is not clean", http.StatusBadRequest)
		return
	}
	// The upstream base may have a path (https://host/CPAN).
	upstreamURL := base.JoinPath(clean).String()
	if rest, ok := strings.CutPrefix(clean, "/authors/id/"); ok && path.Base(rest) != "CHECKSUMS" && !strings.HasSuffix(r.URL.Path, "/") {
		p.serveVerified(w, r, "authors/id/"+rest, upstreamURL)
		return
	}
	p.passThrough(w, r, upstreamURL)
}

// refuse answers 403 with a body that says what failed and what to do.
func (p *Proxy) refuse(w http.ResponseWriter, r *http.Request, cpanPath, reason string) {
	p.decide(r, "refused", cpanPath, reason)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusForbidden)
	fmt.Fprintf(w, "cpantlog proxy refused %s:\n  %s\n\nThe transparency log does not vouch for this file, so it was not served.\n"+
		"If the log is right, the mirror is serving a file CPAN never published: install nothing from it\n"+
		"and report it. If the file is new, wait a minute for the log to publish it and retry.\n", cpanPath, reason)
}

func (p *Proxy) serveVerified(w http.ResponseWriter, r *http.Request, cpanPath, upstreamURL string) {
	if _, err := cpan.ValidatePath(cpanPath); err != nil {
		p.refuse(w, r, cpanPath, err.Error())
		return
	}
	if f, ok := p.cached(cpanPath); ok {
		defer f.Close()
		p.decide(r, "cached", cpanPath, "")
		serveFile(w, r, f)
		return
	}
	tmp, file, code, err := p.download(r.Context(), upstreamURL, cpanPath)
	if tmp != nil {
		defer func() { tmp.Close(); os.Remove(tmp.Name()) }()
	}
	if err != nil {
		if code == http.StatusNotFound {
			p.decide(r, "passthrough", cpanPath, "404 upstream")
			http.Error(w, "not found on the upstream mirror", http.StatusNotFound)
			return
		}
		p.decide(r, "error", cpanPath, err.Error())
		http.Error(w, "cpantlog proxy could not fetch it from the upstream mirror: "+err.Error(), http.StatusBadGateway)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	res, err := p.cfg.Verifier.VerifyFile(ctx, file)
	if err != nil {
		p.refuse(w, r, cpanPath, err.Error())
		return
	}
	p.decide(r, "verified", cpanPath, fmt.Sprintf("index %d, checkpoint %d", res.Index, res.Checkpoint.Size))
	p.store(cpanPath, file, tmp)
	tmp.Seek(0, io.SeekStart)
	serveFile(w, r, tmp)
}

// download fetches a file into a temporary file, hashing it on the way.
func (p *Proxy) download(ctx context.Context, u, cpanPath string) (*os.File, client.File, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, client.File{}, 0, err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, client.File{}, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, client.File{}, resp.StatusCode, fmt.Errorf("upstream answered %s", resp.Status)
	}
	tmp, err := os.CreateTemp(p.cfg.CacheDir, ".download-*")
	if err != nil {
		return nil, client.File{}, 0, err
	}
	f, err := client.HashReader(io.TeeReader(io.LimitReader(resp.Body, p.cfg.MaxFileSize+1), tmp), cpanPath)
	if err != nil {
		return tmp, client.File{}, 0, err
	}
	if int64(f.Size) > p.cfg.MaxFileSize {
		return tmp, client.File{}, 0, fmt.Errorf("file larger than %d bytes", p.cfg.MaxFileSize)
	}
	return tmp, f, 0, nil
}

// cached opens a verified file of a path whose content can never change.
func (p *Proxy) cached(cpanPath string) (*os.File, bool) {
	if p.cfg.CacheDir == "" || cpan.MayOverwrite(cpanPath) {
		return nil, false
	}
	sum, err := os.ReadFile(filepath.Join(p.cfg.CacheDir, "paths", url.PathEscape(cpanPath)))
	if err != nil {
		return nil, false
	}
	f, err := os.Open(filepath.Join(p.cfg.CacheDir, "sha256", strings.TrimSpace(string(sum))))
	return f, err == nil
}

// store keeps a verified file, content-addressed by its sha256.
func (p *Proxy) store(cpanPath string, file client.File, tmp *os.File) {
	if p.cfg.CacheDir == "" || cpan.MayOverwrite(cpanPath) {
		return
	}
	sum := hex.EncodeToString(file.SHA256[:])
	dst := filepath.Join(p.cfg.CacheDir, "sha256", sum)
	if err := os.Link(tmp.Name(), dst); err != nil && !os.IsExist(err) {
		p.cfg.Logger.Warn("cache", "err", err)
		return
	}
	if err := atomicfile.Write(filepath.Join(p.cfg.CacheDir, "paths", url.PathEscape(cpanPath)), []byte(sum+"\n"), 0o600); err != nil {
		p.cfg.Logger.Warn("cache", "err", err)
	}
}

func serveFile(w http.ResponseWriter, r *http.Request, f *os.File) {
	st, err := f.Stat()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", st.ModTime(), f)
}

// passThrough relays index files, forwarding conditional-request headers
// so that If-Modified-Since answers 304 when the upstream says so.
func (p *Proxy) passThrough(w http.ResponseWriter, r *http.Request, u string) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u, nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, h := range []string{"If-Modified-Since", "If-None-Match", "Accept-Encoding", "Range"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	resp, err := p.http.Do(req)
	if err != nil {
		p.decide(r, "error", "", err.Error())
		http.Error(w, "cpantlog proxy could not reach the upstream mirror: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Content-Length", "Content-Encoding", "Last-Modified", "ETag", "Cache-Control", "Content-Range", "Location"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	p.decide(r, "passthrough", "", resp.Status)
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, io.LimitReader(resp.Body, p.cfg.MaxFileSize))
}
