// Package indexfiles keeps the bytes of every index file version a log
// logs (02packages, 06perms, 01mailrc, in both forms PAUSE publishes),
// content-addressed by their sha256, in a directory or, with several
// writers, in the log's bucket. A mirror serves only the current version,
// so without these an auditor could never diff a version that lived
// shorter than its polling interval: a short-lived hijack of a package
// would go unseen.
//
// Its promises: a version is stored only if its bytes hash to its name,
// and whole (written to a temporary name, synced, then renamed; on a
// bucket, uploaded once checked); a version once stored is never
// replaced; reading one back gives the bytes as logged, or an error,
// never something else planted in its place (a symlink to the log's key,
// a FIFO, a file that is not what Put writes). Whoever reads a version
// checks its hash again (Check, the monitor).
package indexfiles

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
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/CPAN-Security/cpan-tlog/internal/atomicfile"
)

// Dir is the directory in a log's data directory, and the prefix of the
// keys in its bucket, that keeps the versions: Dir/<sha256[:2]>/<sha256>.
// A version that is gzip already (the .gz files clients fetch) is kept as
// it is; another (the .txt twins) is kept gzip-compressed, as
// <sha256>.gz, and read back decompressed.
const Dir = "index-files"

// MaxBytes bounds one index file version (the real uncompressed
// 02packages is about 30 MB).
const MaxBytes = 256 << 20

// ErrMismatch wraps the refusal of bytes that do not hash to the sha256
// they are stored under.
var ErrMismatch = errors.New("index file bytes do not match")

// Bucket is an object store holding the versions under Dir/ (the log's
// S3 bucket, shared by every writer and front end).
type Bucket interface {
	// Exists reports whether an object is stored under key.
	Exists(ctx context.Context, key string) (bool, error)
	// Get opens the object under key; an error wrapping fs.ErrNotExist
	// when there is none.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Put stores body under key.
	Put(ctx context.Context, key string, body io.ReadSeeker) error
}

// Store is the content-addressed store of index file versions: a
// directory, or a bucket.
type Store struct {
	dir    string
	bucket Bucket
	where  string
	max    int64 // MaxBytes; less in tests
}

// InDir is the store in dir (a log's DataDir/Dir).
func InDir(dir string) *Store { return &Store{dir: dir, where: dir, max: MaxBytes} }

// InBucket is the store in b; where names it in messages ("bucket x").
func InBucket(b Bucket, where string) *Store {
	return &Store{bucket: b, where: fmt.Sprintf("%s under %s/", where, Dir), max: MaxBytes}
}

// Where names the store in messages: its directory, or its bucket.
func (s *Store) Where() string { return s.where }

func (s *Store) name(sum string) string { return filepath.Join(s.dir, sum[:2], sum) }

// key is the object name of a version in the bucket.
func (s *Store) key(sum string) string { return Dir + "/" + sum[:2] + "/" + sum }

// Has reports whether the version with this sha256 is stored.
func (s *Store) Has(ctx context.Context, sha [32]byte) (bool, error) {
	sum := hex.EncodeToString(sha[:])
	if s.bucket != nil {
		for _, k := range []string{s.key(sum), s.key(sum) + ".gz"} {
			if ok, err := s.bucket.Exists(ctx, k); ok || err != nil {
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

// Put stores r's bytes, which must hash to sha (an error wrapping
// ErrMismatch otherwise; at most MaxBytes), and reports whether they were
// new. A version already stored is not written again.
func (s *Store) Put(ctx context.Context, sha [32]byte, r io.Reader) (bool, error) {
	if ok, err := s.Has(ctx, sha); err != nil || ok {
		if err == nil {
			_, err = io.Copy(io.Discard, io.LimitReader(r, s.max+1))
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
	br := bufio.NewReader(io.LimitReader(r, s.max+1))
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
	if n > s.max {
		return false, fmt.Errorf("index file larger than %d bytes", s.max)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return false, fmt.Errorf("%w: the bytes sent have sha256 %s, not %s", ErrMismatch, got, sum)
	}
	suffix := ""
	if !gz {
		suffix = ".gz"
	}
	if s.bucket != nil {
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return false, err
		}
		return true, s.bucket.Put(ctx, s.key(sum)+suffix, tmp)
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

// Open returns a reader of the stored bytes of the version sum (64
// lower-case hex digits), as logged: decompressed if the store compressed
// them; an error wrapping fs.ErrNotExist when it is not stored. It does
// not check the bytes' hash (Check does).
func (s *Store) Open(ctx context.Context, sum string) (io.ReadCloser, error) {
	if _, ok := ParseName(sum); !ok {
		return nil, fmt.Errorf("%q is not a sha256 of 64 lower-case hex digits: %w", sum, fs.ErrNotExist)
	}
	get := openStoredVersion
	name := s.name
	if s.bucket != nil {
		get = func(k string) (io.ReadCloser, error) { return s.bucket.Get(ctx, k) }
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
	}{io.LimitReader(zr, s.max), f}, nil
}

// Check reads the version sum back and checks that it hashes to its name.
func (s *Store) Check(ctx context.Context, sum string) error {
	r, err := s.Open(ctx, sum)
	if err != nil {
		return err
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return fmt.Errorf("the stored bytes have sha256 %s", got)
	}
	return nil
}

// CopyTo copies every version of s, a directory, to dst, a bucket, as
// stored, each checked against its name first; those dst holds already
// are left alone. A version that fails its check stops the copy with an
// error naming it.
func (s *Store) CopyTo(ctx context.Context, dst *Store) error {
	if s.bucket != nil || dst.bucket == nil {
		return errors.New("index files are copied from a directory to a bucket")
	}
	names, _ := filepath.Glob(filepath.Join(s.dir, "*", "*"))
	for _, n := range names {
		sum := strings.TrimSuffix(filepath.Base(n), ".gz")
		sha, ok := ParseName(sum)
		if !ok {
			continue // a temporary file of an interrupted Put
		}
		if err := s.Check(ctx, sum); err != nil {
			return fmt.Errorf("index file %s: %w; it is not copied (PUT it again from a mirror that has it)", n, err)
		}
		if ok, err := dst.Has(ctx, sha); err != nil || ok {
			if err != nil {
				return err
			}
			continue
		}
		f, err := os.Open(n)
		if err != nil {
			return err
		}
		err = dst.bucket.Put(ctx, dst.key(sum)+strings.TrimPrefix(filepath.Base(n), sum), f)
		f.Close()
		if err != nil {
			return fmt.Errorf("copy index file %s to the bucket: %w", n, err)
		}
	}
	return nil
}

// openStoredVersion opens a stored version's file: a regular file, not
// followed through a symlink and not waited on (a FIFO), that is gzip, as
// Put writes every version (as sent, or compressed as .gz). Anything else
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

// ParseName parses the name of a version: its sha256 as 64 lower-case
// hex digits, the only spelling a version is stored and served under.
func ParseName(s string) ([32]byte, bool) {
	var sha [32]byte
	if len(s) != 64 {
		return sha, false
	}
	_, err := hex.Decode(sha[:], []byte(s))
	return sha, err == nil && hex.EncodeToString(sha[:]) == s
}
