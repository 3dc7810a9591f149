package log

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"syscall"

	"github.com/CPAN-Security/cpan-tlog/internal/atomicfile"
)

// IndexFilesDir is the directory in the data directory that keeps the
// bytes of every logged index file version (02packages, 06perms,
// 01mailrc), content-addressed: IndexFilesDir/<sha256[:2]>/<sha256>. A
// mirror serves only the current version, so without these an auditor
// could never diff a version that lived shorter than its polling
// interval: a short-lived hijack of a package would go unseen.
//
// A version that is gzip already (the .gz files clients fetch) is kept as
// it is; another (the .txt twins) is kept gzip-compressed, as <sha256>.gz,
// and served decompressed. A file is checked against its name when it is
// written; whoever reads one checks it again (the monitor does).
const IndexFilesDir = "index-files"

// MaxIndexFileBytes bounds one index file version (the real uncompressed
// 02packages is about 30 MB).
const MaxIndexFileBytes = 256 << 20

// ErrIndexBytesMissing refuses an index version whose bytes the log does
// not hold: PUT them to /index-files/<sha256> first.
var ErrIndexBytesMissing = errors.New("the bytes of this index file version are not stored")

// indexFiles is the content-addressed store of index file versions: a
// directory, or, with several writers, the log's bucket (bucket is set).
type indexFiles struct {
	dir    string
	bucket *bucket
}

func (s indexFiles) name(sum string) string { return filepath.Join(s.dir, sum[:2], sum) }

// key is the object name of a version in the bucket.
func (s indexFiles) key(sum string) string { return IndexFilesDir + "/" + sum[:2] + "/" + sum }

// has reports whether the version with this sha256 is stored.
func (s indexFiles) has(ctx context.Context, sha [32]byte) (bool, error) {
	sum := hex.EncodeToString(sha[:])
	if s.bucket != nil {
		for _, k := range []string{s.key(sum), s.key(sum) + ".gz"} {
			if ok, err := s.bucket.exists(ctx, k); ok || err != nil {
				return ok, err
			}
		}
		return false, nil
	}
	for _, n := range []string{s.name(sum), s.name(sum) + ".gz"} {
		if _, err := os.Stat(n); err == nil {
			return true, nil
		}
	}
	return false, nil
}

// put stores r's bytes, which must hash to sha (size bytes), and reports
// whether they were new.
func (s indexFiles) put(ctx context.Context, sha [32]byte, r io.Reader) (bool, error) {
	if ok, err := s.has(ctx, sha); err != nil || ok {
		if err == nil {
			_, err = io.Copy(io.Discard, io.LimitReader(r, MaxIndexFileBytes+1))
		}
		return false, err
	}
	sum := hex.EncodeToString(sha[:])
	tmpDir := filepath.Dir(s.name(sum))
	if s.bucket != nil {
		tmpDir = "" // checked here, then uploaded
	} else if err := os.MkdirAll(tmpDir, 0o755); err != nil {
		return false, err
	}
	tmp, err := os.CreateTemp(tmpDir, ".put-*")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	br := bufio.NewReader(io.LimitReader(r, MaxIndexFileBytes+1))
	magic, _ := br.Peek(2)
	gz := len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b
	h := sha256.New()
	var n int64
	if gz {
		n, err = io.Copy(io.MultiWriter(tmp, h), br)
	} else {
		zw := gzip.NewWriter(tmp)
		n, err = io.Copy(io.MultiWriter(zw, h), br)
		if err == nil {
			err = zw.Close()
		}
	}
	if err != nil {
		return false, err
	}
	if n > MaxIndexFileBytes {
		return false, fmt.Errorf("index file larger than %d bytes", MaxIndexFileBytes)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return false, fmt.Errorf("%w: the bytes sent have sha256 %s, not %s", errIndexBytesMismatch, got, sum)
	}
	suffix := ""
	if !gz {
		suffix = ".gz"
	}
	if s.bucket != nil {
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return false, err
		}
		return true, s.bucket.put(ctx, s.key(sum)+suffix, tmp)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return false, err
	}
	if err := tmp.Sync(); err != nil {
		return false, err
	}
	dst := s.name(sum) + suffix
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return false, err
	}
	return true, atomicfile.SyncDir(filepath.Dir(dst))
}

var errIndexBytesMismatch = errors.New("index file bytes do not match")

// open returns a reader of the stored bytes of the version sum (as
// logged: decompressed if the store compressed them); fs.ErrNotExist when
// it is not stored.
func (s indexFiles) open(ctx context.Context, sum string) (io.ReadCloser, error) {
	get := openStoredVersion
	name := s.name
	if s.bucket != nil {
		get = func(k string) (io.ReadCloser, error) { return s.bucket.get(ctx, k) }
		name = s.key
	}
	if f, err := get(name(sum)); err == nil {
		return f, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	f, err := get(name(sum) + ".gz")
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(zr, MaxIndexFileBytes), f}, nil
}

// openStoredVersion opens a stored version's file: a regular file, not
// followed through a symlink and not waited on (a FIFO), that is gzip, as
// put writes every version (as sent, or compressed as .gz). Anything else
// in its place (planted by a crafted backup, a shared mount: a link to
// log.key, say) is refused, not served.
func openStoredVersion(n string) (io.ReadCloser, error) {
	f, err := os.OpenFile(n, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%s is a symbolic link, which the log never stores: refused", n)
		}
		return nil, err
	}
	var magic [2]byte
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file: refused", n)
	} else if _, rerr := f.ReadAt(magic[:], 0); err == nil && (rerr != nil || magic != [2]byte{0x1f, 0x8b}) {
		err = fmt.Errorf("%s is not gzip, as every stored version is: refused", n)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// handleIndexFilePut stores an index file version: PUT
// /index-files/<sha256> with the bearer token, the body the file as
// published. It is checked against the sha256 in the URL.
func (l *Log) handleIndexFilePut(w http.ResponseWriter, r *http.Request) {
	if l.appender == nil {
		httpError(w, http.StatusMethodNotAllowed, "%v", l.readOnlyErr())
		return
	}
	if !l.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cpan-tlog"`)
		httpError(w, http.StatusUnauthorized, "missing or wrong bearer token: send 'Authorization: Bearer <token>' with the token from the server's %s", TokenFile)
		return
	}
	sha, ok := parseSHA256(r.PathValue("sha256"))
	if !ok {
		httpError(w, http.StatusBadRequest, "want PUT /index-files/<sha256 of the file, 64 lower-case hex digits>")
		return
	}
	created, err := l.indexFiles.put(r.Context(), sha, http.MaxBytesReader(w, r.Body, MaxIndexFileBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		httpError(w, http.StatusRequestEntityTooLarge, "index file larger than %d bytes", MaxIndexFileBytes)
	case errors.Is(err, errIndexBytesMismatch):
		httpError(w, http.StatusBadRequest, "%v", err)
	case err != nil:
		l.internalError(w, "storing the index file", err)
	case created:
		w.WriteHeader(http.StatusCreated)
	default:
		w.WriteHeader(http.StatusOK)
	}
}

// handleIndexFileGet serves a stored index file version, as logged.
func (l *Log) handleIndexFileGet(w http.ResponseWriter, r *http.Request) {
	sha, ok := parseSHA256(r.PathValue("sha256"))
	if !ok {
		httpError(w, http.StatusNotFound, "want /index-files/<sha256>")
		return
	}
	sum := hex.EncodeToString(sha[:])
	f, err := l.indexFiles.open(r.Context(), sum)
	if errors.Is(err, fs.ErrNotExist) {
		httpError(w, http.StatusNotFound, "no index file version with sha256 %s is stored here", sum)
		return
	}
	if err != nil {
		l.internalError(w, "reading the index file", err)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Header().Set("ETag", `"`+sum+`"`)
	io.Copy(w, f)
}

func parseSHA256(s string) ([32]byte, bool) {
	var sha [32]byte
	if len(s) != 64 {
		return sha, false
	}
	_, err := hex.Decode(sha[:], []byte(s))
	return sha, err == nil && hex.EncodeToString(sha[:]) == s
}
