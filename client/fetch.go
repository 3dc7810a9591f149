package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/transparency-dev/tessera/api/layout"
)

// Size limits on what a log may send back.
const (
	maxTileSize   = 256 * 32
	maxBundleSize = 256 * (2 + 64<<10)
	maxAPISize    = 1 << 20
)

// ErrNotFound is returned by a Fetcher for a resource the log does not have.
var ErrNotFound = errors.New("not found")

// Fetcher reads a log: over HTTP(S) from its base URL, or from a local
// directory holding a copy of its tiles. Full tiles and entry bundles never
// change, so they are cached on disk when a cache directory is set.
type Fetcher struct {
	base     *url.URL // http(s) base, or nil
	dir      string   // local tree, or ""
	client   *http.Client
	cacheDir string
	retries  int
}

// NewFetcher reads the log at location, an http(s) URL or a directory.
// cacheDir, when not empty, holds immutable full tiles between runs.
func NewFetcher(location, cacheDir string) (*Fetcher, error) {
	f := &Fetcher{
		client:  NewHTTPClient(30 * time.Second),
		retries: 3,
	}
	if strings.HasPrefix(location, "http://") || strings.HasPrefix(location, "https://") {
		u, err := url.Parse(strings.TrimSuffix(location, "/") + "/")
		if err != nil {
			return nil, err
		}
		f.base = u
		if cacheDir != "" {
			sum := sha256.Sum256([]byte(u.String()))
			f.cacheDir = filepath.Join(cacheDir, hex.EncodeToString(sum[:8]))
		}
	} else {
		st, err := os.Stat(location)
		if err != nil {
			return nil, fmt.Errorf("log location %q is neither an http(s) URL nor a directory: %w", location, err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("log location %q is not a directory", location)
		}
		f.dir = location
	}
	return f, nil
}

// ReadCheckpoint fetches the latest checkpoint.
func (f *Fetcher) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	return f.get(ctx, layout.CheckpointPath, MaxCheckpointSize)
}

// ReadTile fetches a hash tile, falling back from a partial tile to the
// full one, which replaces it once the tree grows.
func (f *Fetcher) ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	return f.partialOrFull(ctx, p, func(p uint8) string { return layout.TilePath(level, index, p) }, maxTileSize)
}

// ReadEntryBundle fetches an entry bundle, like ReadTile.
func (f *Fetcher) ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	return f.partialOrFull(ctx, p, func(p uint8) string { return layout.EntriesPath(index, p) }, maxBundleSize)
}

func (f *Fetcher) partialOrFull(ctx context.Context, p uint8, path func(uint8) string, limit int64) ([]byte, error) {
	if p == 0 {
		return f.getCached(ctx, path(0), limit)
	}
	b, err := f.get(ctx, path(p), limit)
	if errors.Is(err, ErrNotFound) {
		return f.getCached(ctx, path(0), limit)
	}
	return b, err
}

// getCached reads an immutable resource through the disk cache.
func (f *Fetcher) getCached(ctx context.Context, p string, limit int64) ([]byte, error) {
	if f.cacheDir == "" {
		return f.get(ctx, p, limit)
	}
	cp := filepath.Join(f.cacheDir, filepath.FromSlash(p))
	if b, err := os.ReadFile(cp); err == nil {
		return b, nil
	}
	b, err := f.get(ctx, p, limit)
	if err != nil {
		return nil, err
	}
	// A failed cache write only costs a download next time.
	if os.MkdirAll(filepath.Dir(cp), 0o700) == nil {
		if tmp, err := os.CreateTemp(filepath.Dir(cp), ".tmp-*"); err == nil {
			_, werr := tmp.Write(b)
			if cerr := tmp.Close(); werr == nil && cerr == nil {
				os.Rename(tmp.Name(), cp)
			}
			os.Remove(tmp.Name())
		}
	}
	return b, nil
}

// get reads a resource relative to the log's root, with retries and
// exponential backoff on network errors and 5xx answers.
func (f *Fetcher) get(ctx context.Context, p string, limit int64) ([]byte, error) {
	if f.dir != "" {
		b, err := readFileLimited(filepath.Join(f.dir, filepath.FromSlash(p)), limit)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", p, ErrNotFound)
		}
		return b, err
	}
	return f.getURL(ctx, f.base.JoinPath(p).String(), limit)
}

// Get reads a path below the root (a mirror's file, say), at most limit
// bytes, with the same retries; a 404 is ErrNotFound.
func (f *Fetcher) Get(ctx context.Context, p string, limit int64) ([]byte, error) {
	return f.get(ctx, p, limit)
}

// SetHTTPClient replaces the HTTP client; its timeout bounds each attempt.
func (f *Fetcher) SetHTTPClient(c *http.Client) { f.client = c }

// GetAPI reads a log API path such as "lookup?path=..." (not a tile).
func (f *Fetcher) GetAPI(ctx context.Context, pathAndQuery string) ([]byte, error) {
	if f.base == nil {
		return nil, fmt.Errorf("the log's %s API needs an http(s) log URL, not a directory", strings.SplitN(pathAndQuery, "?", 2)[0])
	}
	u, err := f.base.Parse(pathAndQuery)
	if err != nil {
		return nil, err
	}
	return f.getURL(ctx, u.String(), maxAPISize)
}

func (f *Fetcher) getURL(ctx context.Context, u string, limit int64) ([]byte, error) {
	var b []byte
	err := f.withRetries(ctx, func() (retry bool, err error) {
		b, retry, err = f.getOnce(ctx, u, limit)
		return retry, err
	})
	return b, err
}

// withRetries runs attempt up to 1+f.retries times (Retry).
func (f *Fetcher) withRetries(ctx context.Context, attempt func() (retry bool, err error)) error {
	return Retry(ctx, f.retries, attempt)
}

// Retry runs attempt up to 1+retries times while it fails with retry set,
// waiting with jittered exponential backoff in between (200 ms, 400 ms,
// ... plus up to 100 ms). It is how every reader of a log here (the
// client's, the monitor's) treats a failure that may pass.
func Retry(ctx context.Context, retries int, attempt func() (retry bool, err error)) error {
	var lastErr error
	for n := 0; n <= retries; n++ {
		if n > 0 {
			d := time.Duration(100<<n)*time.Millisecond + time.Duration(rand.N(int64(100*time.Millisecond)))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
			}
		}
		retry, err := attempt()
		if err == nil || !retry {
			return err
		}
		lastErr = err
	}
	return fmt.Errorf("%w (after %d attempts)", lastErr, retries+1)
}

func (f *Fetcher) getOnce(ctx context.Context, u string, limit int64) (b []byte, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("User-Agent", "cpantlog-client")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, ctx.Err() == nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	b, err = readBody(resp, limit)
	if err != nil {
		return nil, true, fmt.Errorf("GET %s: %w", u, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, false, fmt.Errorf("GET %s: %w: %s", u, ErrNotFound, firstLine(b))
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return nil, true, &HTTPStatusError{URL: u, Code: resp.StatusCode, Status: resp.Status, Message: firstLine(b)}
	case resp.StatusCode != http.StatusOK:
		return nil, false, &HTTPStatusError{URL: u, Code: resp.StatusCode, Status: resp.Status, Message: firstLine(b)}
	case int64(len(b)) > limit:
		return nil, false, fmt.Errorf("GET %s: response larger than %d bytes", u, limit)
	}
	return b, false, nil
}

// HTTPStatusError is an answer other than 200 or 404 to a GET.
type HTTPStatusError struct {
	URL     string
	Code    int    // 400, 503, ...
	Status  string // "400 Bad Request"
	Message string // the first line of the body
}

func (e *HTTPStatusError) Error() string {
	return fmt.Sprintf("GET %s: %s: %s", e.URL, e.Status, e.Message)
}

// readBody reads at most limit+1 bytes of resp's body, into one buffer of
// the announced length when there is one (a log's tiles and bundles are
// read by the million: growing a buffer doubles what is allocated).
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	r := io.LimitReader(resp.Body, limit+1)
	if n := resp.ContentLength; n >= 0 && n <= limit {
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		// A body longer than announced is an error of the server's HTTP,
		// which net/http reports; nothing more is read here.
		return b, nil
	}
	return io.ReadAll(r)
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

func readFileLimited(p string, limit int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", p, limit)
	}
	return b, nil
}

// ErrTooLarge is returned by Download for a body over its limit.
var ErrTooLarge = errors.New("larger than allowed")

// Download streams the file at p (a path below the base URL) into a new
// temporary file in dir ("" for the system's) while hashing it, with Get's
// retries, so that memory stays flat whatever the size. A body over limit
// bytes is ErrTooLarge and is not retried; a 404 is ErrNotFound. The caller
// closes and removes the file.
func (f *Fetcher) Download(ctx context.Context, p string, limit int64, dir string) (*os.File, File, error) {
	if f.base == nil {
		return nil, File{}, errors.New("Download needs an http(s) base URL")
	}
	u, err := f.base.Parse(p)
	if err != nil {
		return nil, File{}, err
	}
	var tmp *os.File
	var file File
	err = f.withRetries(ctx, func() (retry bool, err error) {
		tmp, file, retry, err = f.downloadOnce(ctx, u.String(), p, limit, dir)
		return retry, err
	})
	if err != nil {
		return nil, File{}, err
	}
	return tmp, file, nil
}

func (f *Fetcher) downloadOnce(ctx context.Context, u, p string, limit int64, dir string) (_ *os.File, _ File, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, File{}, false, err
	}
	req.Header.Set("User-Agent", "cpantlog-client")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, File{}, ctx.Err() == nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, File{}, false, fmt.Errorf("GET %s: %w", u, ErrNotFound)
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return nil, File{}, true, fmt.Errorf("GET %s: %s", u, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return nil, File{}, false, fmt.Errorf("GET %s: %s", u, resp.Status)
	case resp.ContentLength > limit:
		return nil, File{}, false, fmt.Errorf("GET %s: %w: %d bytes, limit %d", u, ErrTooLarge, resp.ContentLength, limit)
	}
	tmp, err := os.CreateTemp(dir, ".download-*")
	if err != nil {
		return nil, File{}, false, err
	}
	fail := func(retry bool, err error) (*os.File, File, bool, error) {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, File{}, retry, err
	}
	file, err := HashReader(io.TeeReader(io.LimitReader(resp.Body, limit+1), tmp), p)
	if err != nil {
		return fail(true, fmt.Errorf("GET %s: %w", u, err))
	}
	if int64(file.Size) > limit {
		return fail(false, fmt.Errorf("GET %s: %w: over %d bytes", u, ErrTooLarge, limit))
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fail(false, err)
	}
	return tmp, file, false, nil
}
