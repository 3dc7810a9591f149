package monitor

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// What the monitor reads of the log it reads itself, bounded while it
// reads: a log that serves more than a resource can hold, or bytes that do
// not frame as the resource, is refused with an unauditableError, which
// the monitor reports as a finding (never a silent skip, never a
// truncation); a network error or a 5xx is retried and then fails the
// round, to be tried again.

// unauditableError says the log served something the monitor cannot audit:
// it is the log's doing, not the network's, so trying again changes
// nothing.
type unauditableError struct{ msg string }

func (e *unauditableError) Error() string { return e.msg }

func unauditable(format string, args ...any) error {
	return &unauditableError{msg: fmt.Sprintf(format, args...)}
}

// isUnauditable reports whether err says the log's answer cannot be
// audited, and why.
func isUnauditable(err error) (string, bool) {
	var u *unauditableError
	if errors.As(err, &u) {
		return u.msg, true
	}
	return "", false
}

// retryableError is a failure that may pass: the network, a 5xx.
type retryableError struct{ err error }

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

// maxTileBytes bounds a hash tile: 256 hashes.
const maxTileBytes = layout.TileWidth * sha256.Size

// openLog opens a resource of the log, p relative to its root: over
// HTTP(S), or from the directory holding its tiles. A resource the log
// does not have is errNotFound.
func (m *Monitor) openLog(ctx context.Context, p string) (io.ReadCloser, error) {
	return m.openLogEncoded(ctx, p, false)
}

// openLogEncoded is openLog that, when gzipOK, asks for the resource
// gzip-compressed (C2SP tlog-tiles: entry bundles SHOULD be compressed at
// the HTTP layer; ours are 0.40x their size) and reads what the log serves
// so compressed as the bytes under the compression. Only entry bundles are
// asked for so: their reader (bundleReader.read) stops after 256 entries of
// at most 65,537 bytes each, which bounds what a hostile log's gzip can
// make the monitor decompress. A log that compresses what was not asked
// for compressed is read as the bytes it sent, which do not verify.
func (m *Monitor) openLogEncoded(ctx context.Context, p string, gzipOK bool) (io.ReadCloser, error) {
	if m.logBase == "" {
		f, err := os.Open(filepath.Join(m.logDir, filepath.FromSlash(p)))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", p, errNotFound)
		}
		return f, err
	}
	u := m.logBase + "/" + p
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "cpantlog-monitor")
	if gzipOK {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	resp, err := m.http.Do(req)
	if err != nil {
		return nil, &retryableError{fmt.Errorf("GET %s: %w", u, err)}
	}
	switch {
	case resp.StatusCode == http.StatusOK && gzipOK && strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip"):
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			resp.Body.Close()
			return nil, unauditable("GET %s: the log answered Content-Encoding: gzip with bytes that are not gzip: %v", u, err)
		}
		return gunzipBody{zr, resp.Body}, nil
	case resp.StatusCode == http.StatusOK:
		return resp.Body, nil
	case resp.StatusCode == http.StatusNotFound:
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %w", u, errNotFound)
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		resp.Body.Close()
		return nil, &retryableError{fmt.Errorf("GET %s: %s", u, resp.Status)}
	default:
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
}

// gunzipBody reads a gzip stream and closes the response under it.
type gunzipBody struct {
	*gzip.Reader
	body io.Closer
}

// Read reports gzip that does not decode (a bad header, corrupt deflate
// data, a checksum that does not match) as unauditable: it is what the log
// served, and fetching it again serves it again. A stream that ends early
// may be the network's doing and stays an error to retry.
func (g gunzipBody) Read(p []byte) (int, error) {
	n, err := g.Reader.Read(p)
	var corrupt flate.CorruptInputError
	if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.As(err, &corrupt) {
		err = unauditable("the log's gzip-compressed entry bundle does not decode: %v", err)
	}
	return n, err
}

func (g gunzipBody) Close() error {
	g.Reader.Close()
	return g.body.Close()
}

// logRetries is how many times a read of the log that failed in a way
// that may pass is tried again.
var logRetries = 3

// withRetries runs read until it succeeds, fails for good (an error that
// is not a retryableError, or the context ended), or failed 1+logRetries
// times (client.Retry).
func withRetries(ctx context.Context, read func() error) error {
	return client.Retry(ctx, logRetries, func() (bool, error) {
		err := read()
		var r *retryableError
		return err != nil && errors.As(err, &r) && ctx.Err() == nil, err
	})
}

// readLog reads a resource of the log whole, refusing one of more than
// limit bytes as unauditable.
func (m *Monitor) readLog(ctx context.Context, p string, limit int64) ([]byte, error) {
	var b []byte
	err := withRetries(ctx, func() error {
		body, err := m.openLog(ctx, p)
		if err != nil {
			return err
		}
		defer body.Close()
		b, err = io.ReadAll(io.LimitReader(body, limit+1))
		if err != nil {
			return &retryableError{fmt.Errorf("%s: %w", p, err)}
		}
		if int64(len(b)) > limit {
			return unauditable("%s is larger than %d bytes", p, limit)
		}
		return nil
	})
	return b, err
}

// readTile reads a hash tile as Tessera's proof builder asks for it (p is
// the partial width, 0 for a full tile; a partial tile the log no longer
// has is read full) and checks it holds whole hashes, at least as many as
// asked for.
func (m *Monitor) readTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	b, err := m.readLog(ctx, layout.TilePath(level, index, p), maxTileBytes)
	if p != 0 && errors.Is(err, errNotFound) {
		p = 0
		b, err = m.readLog(ctx, layout.TilePath(level, index, 0), maxTileBytes)
	}
	if err != nil {
		return nil, err
	}
	want := int(p) * sha256.Size
	if p == 0 {
		want = maxTileBytes
	}
	if len(b)%sha256.Size != 0 || len(b) < want {
		return nil, unauditable("hash tile %d/%d is %d bytes, not the %d hashes it must hold", level, index, len(b), want/sha256.Size)
	}
	return b, nil
}

// tileReader is readTile for Tessera's proof builder, which keeps only the
// text of the errors it is given: the first unauditable one is kept in
// *seen.
func (m *Monitor) tileReader(seen *error) func(context.Context, uint64, uint64, uint8) ([]byte, error) {
	return func(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
		b, err := m.readTile(ctx, level, index, p)
		if _, ok := isUnauditable(err); ok && *seen == nil {
			*seen = err
		}
		return b, err
	}
}

// bundleReader reads entry bundles as a stream, so that what it keeps of
// one is bounded by what a valid entry can be, whatever the log serves: an
// entry longer than entry.MaxSize is hashed as it is read and never kept
// (it cannot parse), so a bundle of 65,535-byte entries costs no more than
// one of ordinary ones.
type bundleReader struct {
	br *bufio.Reader // at least 65,535 bytes: an entry is peeked whole
	h  hash.Hash
}

func newBundleReader() *bundleReader {
	return &bundleReader{br: bufio.NewReaderSize(nil, 1<<16), h: sha256.New()}
}

// readBundle reads entry bundle ri.Index into b: the leaf hash of every
// entry, and the text of those in the range short enough to be valid
// entries (in one string they share). It falls back from a partial bundle
// the log no longer has to the full one.
func (m *Monitor) readBundle(ctx context.Context, r *bundleReader, ri layout.RangeInfo, b *checkedBundle) error {
	read := func(p uint8) error {
		return withRetries(ctx, func() error {
			body, err := m.openLogEncoded(ctx, layout.EntriesPath(ri.Index, p), true)
			if err != nil {
				return err
			}
			defer body.Close()
			return r.read(body, ri, b)
		})
	}
	err := read(ri.Partial)
	if ri.Partial != 0 && errors.Is(err, errNotFound) {
		err = read(0)
	}
	return err
}

// bundleReadError is a failed read of bundle ri: unauditable when the
// bytes the log served are at fault, else worth trying again.
func bundleReadError(ri layout.RangeInfo, err error) error {
	var u *unauditableError
	if errors.As(err, &u) {
		return unauditable("entry bundle %d: %s", ri.Index, u.msg)
	}
	return &retryableError{fmt.Errorf("entry bundle %d: %w", ri.Index, err)}
}

// read decodes one bundle from body (tlog-tiles: each entry after its
// 2-byte big-endian length).
func (r *bundleReader) read(body io.Reader, ri layout.RangeInfo, b *checkedBundle) error {
	r.br.Reset(body)
	if b.entries == nil {
		b.leafHashes = make([]byte, 0, layout.EntryBundleWidth*sha256.Size)
		b.entries = make([]*entry.Entry, layout.EntryBundleWidth)
		b.parseErrs = make([]error, layout.EntryBundleWidth)
		b.pathHashes = make([]uint64, layout.EntryBundleWidth)
	}
	// Another attempt starts afresh.
	b.leafHashes = b.leafHashes[:0]
	b.entries, b.parseErrs, b.pathHashes = b.entries[:cap(b.entries)], b.parseErrs[:cap(b.parseErrs)], b.pathHashes[:cap(b.pathHashes)]
	clear(b.entries)
	clear(b.parseErrs)
	clear(b.pathHashes)
	var text strings.Builder
	type span struct{ i, at, n int }
	var kept []span
	n := 0
	for ; ; n++ {
		lb, err := r.br.Peek(2)
		if err == io.EOF && len(lb) == 0 {
			break
		}
		if err != nil {
			if len(lb) == 1 && err == io.EOF {
				return unauditable("entry bundle %d ends with a dangling byte after %d entries", ri.Index, n)
			}
			return bundleReadError(ri, err)
		}
		if n == layout.EntryBundleWidth {
			return unauditable("entry bundle %d holds more than %d entries", ri.Index, layout.EntryBundleWidth)
		}
		size := int(binary.BigEndian.Uint16(lb))
		r.br.Discard(2)
		e, err := r.br.Peek(size)
		if err != nil {
			if err == io.EOF {
				return unauditable("entry bundle %d ends inside entry %d (%d of its %d bytes)", ri.Index, n, len(e), size)
			}
			return bundleReadError(ri, err)
		}
		r.h.Reset()
		r.h.Write([]byte{rfc6962.RFC6962LeafHashPrefix})
		r.h.Write(e)
		b.leafHashes = r.h.Sum(b.leafHashes)
		if uint(n) >= ri.First && uint(n) < ri.First+ri.N {
			if size <= entry.MaxSize {
				if text.Len() == 0 {
					text.Grow(int(ri.N) * 512)
				}
				kept = append(kept, span{n, text.Len(), size})
				text.Write(e)
			} else {
				b.parseErrs[n] = fmt.Errorf("%w: %d bytes, more than %d", entry.ErrMalformed, size, entry.MaxSize)
			}
		}
		r.br.Discard(size)
	}
	if uint(n) < ri.First+ri.N {
		return unauditable("entry bundle %d has %d entries, the checkpoint commits to %d", ri.Index, n, ri.First+ri.N)
	}
	b.width = n
	b.entries, b.parseErrs, b.pathHashes = b.entries[:n], b.parseErrs[:n], b.pathHashes[:n]
	// One string for the entries kept: the entries parsed from it share
	// it instead of copying each, and it holds nothing else.
	s := text.String()
	for _, k := range kept {
		e, err := entry.ParseString(s[k.at : k.at+k.n])
		if err != nil {
			// The error may quote the entry, escaped: up to four times
			// its size, for each entry of a bundle waiting its turn.
			err = errors.New(clip(err.Error(), maxMessage/2))
		} else {
			b.pathHashes[k.i] = hashPath(b.seed, e.Path)
		}
		b.entries[k.i], b.parseErrs[k.i] = e, err
	}
	return nil
}
