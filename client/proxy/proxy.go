// Package proxy is a CPAN mirror that verifies before it serves. It
// serves a request only when the path names one of three things and the
// check for it passed (deny by default):
//
//   - a file under authors/id/A/AB/ID/: downloaded from the upstream
//     mirror, hashed as served, and served only if the transparency log
//     proves it is the file CPAN published (inclusion in a trusted,
//     quorum-cosigned checkpoint with the same size and sha256);
//   - an index file PAUSE publishes (02packages, 06perms, 01mailrc): served
//     only when its bytes are logged as a version of that path and the log
//     has no version newer by more than MaxIndexLag;
//   - an author directory's CHECKSUMS: served only when it parses as one.
//
// Everything else is 403 with the reason. With Config.CheckToken set (as
// cpantlog exec sets it), two endpoints under /.cpantlog/ let the Perl
// hook that exec loads into a client have a file it is about to use
// verified exactly as a download of that path would be, or exempted by
// one of the user's patterns (see check.go). Upstream redirects are never
// relayed. It works as a mirror (cpanm --mirror http://127.0.0.1:7373
// --mirror-only) and as a plain-HTTP forward proxy (http_proxy=...) for
// configured CPAN hosts only, with the same rules: it is never an open
// proxy, and in forward mode every CPAN host's files come from the
// upstream.
package proxy

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/client/tlogproof"
	"github.com/CPAN-Security/cpan-tlog/internal/atomicfile"
	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
)

// Config configures a Proxy.
type Config struct {
	// Upstream is the mirror served in mirror mode, e.g.
	// https://cpan.metacpan.org, or a local CPAN tree (a directory holding
	// authors/ and modules/), read as if it were one.
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
	// Proofs is the mirror root whose tlog/proofs/ tree holds the log's
	// proofs (default: Upstream; "off": never). A file with a proof there
	// verifies with no contact with the log; without one, the log is asked.
	Proofs string
	// Journal, when set, records every decision for a summary.
	Journal *Journal
	// MaxIndexLag is how much older than the newest logged version of
	// an index file the served one may be (default 24h).
	MaxIndexLag time.Duration
	Logger      *slog.Logger
	// CheckToken, when set, opens the check and exemption endpoints
	// (POST /.cpantlog/check and /.cpantlog/exempt, mirror mode only) to
	// requests that carry it as "Authorization: Bearer TOKEN"; any other
	// path under /.cpantlog/ is then 404. Empty: no endpoint (cpantlog
	// proxy), and /.cpantlog/ paths are refused like any other.
	CheckToken string
	// Exempt decides an exemption request: whether pattern is one of the
	// user's exemption patterns and matches subject. nil: nothing is exempt.
	Exempt func(subject, pattern string) bool
}

// Proxy is an http.Handler.
type Proxy struct {
	cfg      Config
	upstream *url.URL
	hosts    map[string]bool
	proofs   *url.URL // nil: no proof tree
	// cachedNames maps a CPAN path to its verified file in the cache, so
	// that a warm hit reads no index file.
	cachedNames sync.Map
	http        *http.Client
	index       packageIndex
	metrics     *prometheus.CounterVec
	registry    *prometheus.Registry
}

// DefaultHosts are CPAN's own plain-HTTP mirror names.
// cpanmetadb's and MetaCPAN's API hosts are among them: the proxy answers
// them itself from the verified 02packages.
var DefaultHosts = []string{"www.cpan.org", "cpan.metacpan.org", "backpan.perl.org", MetaDBHost, MetaCPANHost}

// New returns a proxy.
func New(cfg Config) (*Proxy, error) {
	u, err := url.Parse(strings.TrimSuffix(cfg.Upstream, "/"))
	if st, serr := os.Stat(cfg.Upstream); serr == nil && st.IsDir() {
		// A local tree: served through a file:// base that download reads.
		abs, aerr := filepath.Abs(cfg.Upstream)
		if aerr != nil {
			return nil, aerr
		}
		u, err = &url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}, nil
	} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upstream %q is neither an http(s) URL nor a directory", cfg.Upstream)
	}
	if cfg.Verifier == nil {
		return nil, errors.New("no verifier")
	}
	if cfg.MaxFileSize == 0 {
		cfg.MaxFileSize = 512 << 20
	}
	if cfg.MaxIndexLag == 0 {
		cfg.MaxIndexLag = client.DefaultMaxIndexLag
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	hc := client.NewHTTPClient(5 * time.Minute)
	// A redirect is an answer the proxy did not verify: never follow or relay one.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	p := &Proxy{cfg: cfg, upstream: u, hosts: map[string]bool{},
		http:     hc,
		metrics:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cpantlog_proxy_requests_total", Help: "Requests by decision: verified, cached, refused, not_found, not_proxied, log_unreachable, error; exempt, exempt_refused and unauthorized for the hook's endpoints."}, []string{"decision"}),
		registry: prometheus.NewRegistry(),
	}
	if u.Host != "" {
		p.hosts[strings.ToLower(u.Host)] = true
	}
	for _, h := range cfg.Hosts {
		p.hosts[strings.ToLower(h)] = true
	}
	switch cfg.Proofs {
	case "off":
	case "":
		p.proofs = u
	default:
		pu, err := url.Parse(strings.TrimSuffix(cfg.Proofs, "/"))
		if st, serr := os.Stat(cfg.Proofs); serr == nil && st.IsDir() {
			abs, _ := filepath.Abs(cfg.Proofs)
			pu, err = &url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}, nil
		} else if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return nil, fmt.Errorf("--proofs %q is neither an http(s) URL nor a directory", cfg.Proofs)
		}
		p.proofs = pu
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

// Config returns the proxy's configuration, defaults filled in: a caller
// that was handed a proxy can make another like it with more settings.
func (p *Proxy) Config() Config { return p.cfg }

// Metrics serves the proxy's Prometheus metrics.
func (p *Proxy) Metrics() http.Handler {
	return promhttp.HandlerFor(p.registry, promhttp.HandlerOpts{})
}

func (p *Proxy) decide(r *http.Request, decision, cpanPath, reason string) {
	p.decideFile(r, decision, cpanPath, reason, nil)
}

// decideFile is decide for bytes served as verified, whose sha256 the
// journal keeps (cpantlog exec compares what a client used with it).
func (p *Proxy) decideFile(r *http.Request, decision, cpanPath, reason string, sha256 *[32]byte) {
	p.metrics.WithLabelValues(decision).Inc()
	u := r.URL.String()
	if r.Method == http.MethodConnect {
		u = "CONNECT " + r.Host
	}
	p.cfg.Logger.LogAttrs(r.Context(), slog.LevelInfo, "proxy", slog.String("decision", decision), slog.String("method", r.Method),
		slog.String("url", u), slog.String("path", cpanPath), slog.String("reason", reason))
	p.cfg.Journal.add(decision, u, cpanPath, reason, sha256)
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		p.decide(r, "not_proxied", "", "CONNECT tunnel to "+r.Host+" refused: a tunnel would skip verification (use the http:// URL)")
		http.Error(w, "cpantlog proxy does not tunnel (CONNECT): use it as a plain-http CPAN mirror or http_proxy", http.StatusForbidden)
		return
	}
	if p.cfg.CheckToken != "" && !r.URL.IsAbs() && strings.HasPrefix(r.URL.Path, hookPrefix) {
		p.serveHook(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "only GET and HEAD", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.IsAbs() {
		// Forward-proxy request: only for the configured CPAN hosts, whose
		// files all come from the upstream.
		if r.URL.Scheme != "http" || !p.hosts[strings.ToLower(r.URL.Host)] {
			p.decide(r, "not_proxied", "", "host not configured")
			http.Error(w, fmt.Sprintf("cpantlog proxy only serves configured CPAN hosts, not %s (it is not an open proxy; add the host with --host)", r.URL.Host), http.StatusForbidden)
			return
		}
	} else if r.URL.Path == "/metrics" {
		p.Metrics().ServeHTTP(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/v1.0/") && (!r.URL.IsAbs() || strings.EqualFold(r.URL.Hostname(), MetaDBHost)) {
		p.serveMetaDB(w, r)
		return
	}
	if r.URL.IsAbs() && strings.EqualFold(r.URL.Hostname(), MetaCPANHost) {
		p.serveMetaCPAN(w, r)
		return
	}
	cpanPath, class, err := Classify(r.URL.EscapedPath(), r.URL.Path)
	if err != nil {
		p.refuse(w, r, r.URL.Path, err.Error())
		return
	}
	switch class {
	case Modlist:
		p.decide(r, "generated", cpanPath, "an empty module list of the proxy's own; the mirror's is never served")
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, "", time.Unix(0, 0), bytes.NewReader(emptyModlist))
	case Upload:
		p.serveUpload(w, r, cpanPath)
	case Index:
		p.serveChecked(w, r, cpanPath, "verified", func(ctx context.Context, f client.File, _ *os.File) (string, time.Time, error) {
			return p.checkFile(ctx, Index, f)
		})
	case Checksums:
		p.serveChecked(w, r, cpanPath, "parsed", func(_ context.Context, _ client.File, tmp *os.File) (string, time.Time, error) {
			b, err := io.ReadAll(io.LimitReader(tmp, cpan.MaxChecksumsSize+1))
			if err != nil {
				return "", time.Time{}, err
			}
			files, _, err := cpan.ParseChecksums(b)
			if err != nil {
				return "", time.Time{}, client.NotVerified("%v", err)
			}
			return fmt.Sprintf("CHECKSUMS parsed, %d files", len(files)), time.Time{}, nil
		})
	}
}

// refuse answers 403 with a short body that says what failed and what to
// do: clients such as cpanm show only its first lines, if anything.
func (p *Proxy) refuse(w http.ResponseWriter, r *http.Request, cpanPath, reason string) {
	p.decide(r, "refused", cpanPath, reason)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Cpantlog-Refused", oneLine(reason))
	w.WriteHeader(http.StatusForbidden)
	fmt.Fprintf(w, "cpantlog refused %s: %s\nThe transparency log does not vouch for it; install nothing from this mirror and report it. A file uploaded in the last minutes may not be logged yet: retry later.\n", cpanPath, reason)
}

// unreachable answers 503 when the log could not be asked: nothing was
// proven either way, and it is not the mirror's fault.
func (p *Proxy) unreachable(w http.ResponseWriter, r *http.Request, cpanPath string, err error) {
	p.decide(r, "log_unreachable", cpanPath, err.Error())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Retry-After", "30")
	w.WriteHeader(http.StatusServiceUnavailable)
	fmt.Fprintf(w, "cpantlog could not check %s, so it was not served: %v\nCheck the log URL in your policy and your network, then retry.\n", cpanPath, err)
}

// failed answers a verification error with 403, 503 or 500 as it deserves.
func (p *Proxy) failed(w http.ResponseWriter, r *http.Request, cpanPath string, err error) {
	switch {
	case client.Unchecked(err):
		p.unreachable(w, r, cpanPath, err)
	default:
		p.refuse(w, r, cpanPath, err.Error())
	}
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 400 {
		s = s[:400]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func (p *Proxy) serveUpload(w http.ResponseWriter, r *http.Request, cpanPath string) {
	if f, sum, ok := p.cached(cpanPath); ok {
		defer f.Close()
		var sha [32]byte
		hex.Decode(sha[:], []byte(sum))
		p.decideFile(r, "cached", cpanPath, "", &sha)
		serveFile(w, r, f, time.Time{}, sum)
		return
	}
	var verified client.File
	p.serveChecked(w, r, cpanPath, "verified", func(ctx context.Context, f client.File, _ *os.File) (string, time.Time, error) {
		why, logged, err := p.checkFile(ctx, Upload, f)
		if err == nil {
			verified = f
		}
		return why, logged, err
	}, func(tmp *os.File) { p.store(cpanPath, verified, tmp) })
}

// checkFile verifies f, whose path is of class (Upload or Index), and
// says why it verified and when it was logged: what a file downloaded for
// that path gets, and what the check endpoint gets.
func (p *Proxy) checkFile(ctx context.Context, class Class, f client.File) (string, time.Time, error) {
	res, how, err := p.verify(ctx, f)
	if err != nil {
		return "", time.Time{}, err
	}
	if class == Index {
		return fmt.Sprintf("index version %d of %s, checkpoint %d, %s", res.Index, res.Entry.Time.Format(time.RFC3339), res.Checkpoint.Size, how), res.Entry.Time, nil
	}
	return fmt.Sprintf("index %d, checkpoint %d, %s", res.Index, res.Checkpoint.Size, how), res.Entry.Time, nil
}

// verify proves f: with the mirror's published proof when there is one
// that verifies (no contact with the log), else with the log. A mirror
// proof that does not verify is never trusted, and never a verdict either:
// with the log unreachable the answer is "could not check", unless the
// proof verified and shows another file logged at the path (the bytes
// contradict it): that refusal stands.
func (p *Proxy) verify(ctx context.Context, f client.File) (*client.Result, string, error) {
	proofErr := errNoProof
	if p.proofs != nil {
		var raw []byte
		if raw, proofErr = p.fetchProof(ctx, f); proofErr == nil {
			res, err := p.cfg.Verifier.VerifyMirrorProof(raw, f, p.cfg.MaxIndexLag)
			if err == nil {
				return res, "proof from the mirror", nil
			}
			if errors.Is(err, client.ErrSecurity) {
				// A bad signature by a trusted key, or a fork: evidence,
				// whatever the log says.
				return nil, "", err
			}
			proofErr = err
		}
	}
	var res *client.Result
	var err error
	if cpan.IsIndexPath(f.Path) {
		res, err = p.cfg.Verifier.VerifyIndexFile(ctx, f, p.cfg.MaxIndexLag)
	} else {
		res, err = p.cfg.Verifier.VerifyFile(ctx, f)
	}
	if client.Unchecked(err) && errors.Is(proofErr, client.ErrContradicted) {
		return nil, "", proofErr
	}
	if client.Unchecked(err) && proofErr != errNoProof {
		return nil, "", &client.CouldNotCheckError{Reason: fmt.Sprintf("the mirror's proof does not verify (%v), and the log could not be asked (%v)", proofErr, err)}
	}
	if err != nil {
		return nil, "", err
	}
	return res, "asked the log", nil
}

var errNoProof = errors.New("no proof published")

// fetchProof reads the proof of f from the mirror's proof tree.
func (p *Proxy) fetchProof(ctx context.Context, f client.File) ([]byte, error) {
	if p.proofs.Scheme == "file" {
		b, err := readLocal(p.proofs, cpan.ProofPath(f.Path, f.SHA256), tlogproof.MaxSize)
		if err != nil {
			return nil, errNoProof
		}
		return b, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.proofs.JoinPath(cpan.ProofPath(f.Path, f.SHA256)).String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, errNoProof
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errNoProof
	}
	return io.ReadAll(io.LimitReader(resp.Body, tlogproof.MaxSize+1))
}

// serveChecked downloads cpanPath from the upstream into a temporary file while hashing
// it, runs check on it, and serves the bytes only if check passed,
// logging decision ("verified" against the log, or "parsed"). check
// returns the logged time, if any, which is the Last-Modified served: the
// upstream's is never used. after, if given, runs on the verified file
// before it is served.
func (p *Proxy) serveChecked(w http.ResponseWriter, r *http.Request, cpanPath, decision string, check func(context.Context, client.File, *os.File) (string, time.Time, error), after ...func(*os.File)) {
	tmp, file, code, err := p.download(r.Context(), cpanPath)
	if tmp != nil {
		defer func() { tmp.Close(); os.Remove(tmp.Name()) }()
	}
	if err != nil {
		if code == http.StatusNotFound {
			p.decide(r, "not_found", cpanPath, "404 upstream")
			http.Error(w, "not found on the upstream mirror", http.StatusNotFound)
			return
		}
		p.decide(r, "error", cpanPath, err.Error())
		http.Error(w, "cpantlog proxy could not fetch it from the upstream mirror: "+err.Error(), http.StatusBadGateway)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	tmp.Seek(0, io.SeekStart)
	why, logged, err := check(ctx, file, tmp)
	if err != nil {
		p.failed(w, r, cpanPath, err)
		return
	}
	if decision == "verified" {
		p.decideFile(r, decision, cpanPath, why, &file.SHA256)
	} else {
		p.decide(r, decision, cpanPath, why)
	}
	for _, f := range after {
		f(tmp)
	}
	tmp.Seek(0, io.SeekStart)
	serveFile(w, r, tmp, logged, hex.EncodeToString(file.SHA256[:]))
}

// download fetches cpanPath from the upstream into a temporary file,
// hashing it on the way. The upstream's headers (Last-Modified among them)
// are never used. A redirect is an error: the proxy never follows one.
func (p *Proxy) download(ctx context.Context, cpanPath string) (*os.File, client.File, int, error) {
	var body io.Reader
	if p.upstream.Scheme == "file" {
		// cpanPath passed Classify: relative, no empty, . or .. component.
		lf, err := os.Open(filepath.Join(filepath.FromSlash(p.upstream.Path), filepath.FromSlash(cpanPath)))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, client.File{}, http.StatusNotFound, err
		}
		if err != nil {
			return nil, client.File{}, 0, err
		}
		defer lf.Close()
		if st, err := lf.Stat(); err != nil || !st.Mode().IsRegular() {
			return nil, client.File{}, http.StatusNotFound, fmt.Errorf("%s is not a file in the upstream tree", cpanPath)
		}
		body = lf
	} else {
		// The upstream base may have a path (https://host/CPAN).
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.upstream.JoinPath(cpanPath).String(), nil)
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
		body = resp.Body
	}
	tmp, err := os.CreateTemp(p.cfg.CacheDir, ".download-*")
	if err != nil {
		return nil, client.File{}, 0, err
	}
	f, err := client.HashReader(io.TeeReader(io.LimitReader(body, p.cfg.MaxFileSize+1), tmp), cpanPath)
	if err != nil {
		return tmp, client.File{}, 0, err
	}
	if int64(f.Size) > p.cfg.MaxFileSize {
		return tmp, client.File{}, 0, fmt.Errorf("file larger than %d bytes", p.cfg.MaxFileSize)
	}
	return tmp, f, 0, nil
}

// cached opens a verified file of a path whose content can never change,
// and returns its sha256 in hex.
func (p *Proxy) cached(cpanPath string) (*os.File, string, bool) {
	if p.cfg.CacheDir == "" || cpan.MayOverwrite(cpanPath) {
		return nil, "", false
	}
	name, ok := p.cachedNames.Load(cpanPath)
	if !ok {
		sum, err := os.ReadFile(filepath.Join(p.cfg.CacheDir, "paths", url.PathEscape(cpanPath)))
		if err != nil {
			return nil, "", false
		}
		name, _ = p.cachedNames.LoadOrStore(cpanPath, filepath.Join(p.cfg.CacheDir, "sha256", strings.TrimSpace(string(sum))))
	}
	f, err := os.Open(name.(string))
	return f, filepath.Base(name.(string)), err == nil
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
		return
	}
	p.cachedNames.Store(cpanPath, dst)
}

// readLocal reads rel (a validated CPAN-relative path) below a file://
// base, at most limit bytes.
func readLocal(base *url.URL, rel string, limit int64) ([]byte, error) {
	f, err := os.Open(filepath.Join(filepath.FromSlash(base.Path), filepath.FromSlash(rel)))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

// emptyModlist is a 03modlist.data.gz with no modules, as CPAN.pm reads it.
var emptyModlist = func() []byte {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	io.WriteString(zw, "File:        03modlist.data\nDescription: an empty module list served by cpantlog (PAUSE no longer maintains it)\n"+
		"Modcount:    0\nWritten-By:  cpantlog\nDate:        Thu, 01 Jan 1970 00:00:00 GMT\n\n"+
		"package CPAN::Modulelist;\nsub data { {} }\n1;\n")
	zw.Close()
	return b.Bytes()
}()

// serveFile serves verified bytes. Their validators are the proxy's own:
// the ETag is their sha256 and Last-Modified the logged time (never later
// than now; none when nothing was logged). A conditional request is
// answered only against the ETag: If-Modified-Since compares the client's
// clock or a time an earlier, unverified source gave it (a forged index
// saved with a 2099 mtime would be kept for ever), so it is ignored and
// the verified bytes are sent.
func serveFile(w http.ResponseWriter, r *http.Request, f *os.File, logged time.Time, sha256Hex string) {
	if now := time.Now(); logged.After(now) {
		logged = now
	}
	r = r.Clone(r.Context())
	r.Header.Del("If-Modified-Since")
	r.Header.Del("If-Unmodified-Since")
	if r.Header.Get("If-Range") != "" {
		// A resumed download of something else: send it whole.
		r.Header.Del("If-Range")
		r.Header.Del("Range")
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", `"`+sha256Hex+`"`)
	http.ServeContent(w, r, "", logged, f)
}
