package log

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/CPAN-Security/cpan-tlog/internal/atomicfile"
)

// The ingest token file (DATA/ingest.token) holds the bearer tokens POST
// /add and PUT /index-files accept, one a line, each with a name:
//
//	# PAUSE's uploader, since 2026-12
//	pause     9f2c...64 hex digits
//	backfill  77c1...
//
// A line holding only a token is the token named "default": the file a
// first start writes, and the one-token file of earlier versions, is one
// such line, so `$(cat ingest.token)` stays a client's token. '#' at the
// start of a line or after white space starts a comment. The file is
// re-read on SIGHUP and when it changes; a file that does not parse (or
// names no token) leaves the tokens in use as they were, and says why.
// docs/ingest-tokens.md is the operator's description.

// DefaultTokenName is the name of a token written without one.
const DefaultTokenName = "default"

// Bounds of the ingest token file.
const (
	MaxTokenFileSize = 1 << 20
	MinTokenLength   = 16
	MaxTokenLength   = 1024
	MaxTokenName     = 64
)

// IngestToken is one line of the ingest token file.
type IngestToken struct {
	Name  string
	Value string
}

// ParseTokenFile parses an ingest token file. Its errors name the line
// but never show a token.
func ParseTokenFile(b []byte) ([]IngestToken, error) {
	if len(b) > MaxTokenFileSize {
		return nil, fmt.Errorf("%d bytes, more than %d", len(b), MaxTokenFileSize)
	}
	var out []IngestToken
	names := map[string]int{}
	values := map[string]int{}
	for n, line := range strings.Split(string(b), "\n") {
		n++ // lines count from 1
		line = strings.TrimSuffix(line, "\r")
		fields, err := tokenLineFields(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		var t IngestToken
		switch len(fields) {
		case 0:
			continue
		case 1:
			t = IngestToken{Name: DefaultTokenName, Value: fields[0]}
		case 2:
			t = IngestToken{Name: fields[0], Value: fields[1]}
			if err := checkTokenName(t.Name); err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
		default:
			return nil, fmt.Errorf("line %d: %d fields, want 'NAME TOKEN' (or a token alone, named %q)", n, len(fields), DefaultTokenName)
		}
		if err := checkTokenValue(t.Value); err != nil {
			// Not the name: on a line written 'TOKEN NAME' it is the token.
			return nil, fmt.Errorf("line %d, its token: %w", n, err)
		}
		if first, ok := names[t.Name]; ok {
			if t.Name == DefaultTokenName && len(fields) == 1 {
				return nil, fmt.Errorf("line %d: a second token without a name (line %d named %q already): write 'NAME TOKEN'", n, first, DefaultTokenName)
			}
			return nil, fmt.Errorf("line %d: the name %q is given twice (line %d)", n, t.Name, first)
		}
		if first, ok := values[t.Value]; ok {
			return nil, fmt.Errorf("line %d: its token is the token of line %d: each name needs its own token, or the logs could not tell who added", n, first)
		}
		names[t.Name], values[t.Value] = n, n
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, errors.New("no token: the file must name at least one (a half-written file looks like this; to stop taking adds, stop the server or run it --read-only)")
	}
	return out, nil
}

// tokenLineFields splits a line into white-space separated fields, up to
// a comment: '#' at the start of a line or after white space (a '#'
// inside a token is part of it). Control characters and anything beyond
// ASCII are refused.
func tokenLineFields(line string) ([]string, error) {
	var fields []string
	field := -1 // start of the current field, -1 between fields
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if field >= 0 {
				fields = append(fields, line[field:i])
				field = -1
			}
			continue
		case c == '#' && field < 0:
			return fields, nil
		case c < 0x21 || c > 0x7e:
			return nil, fmt.Errorf("byte %d is not printable ASCII (0x%02x): names and tokens are visible ASCII", i+1, c)
		}
		if field < 0 {
			field = i
		}
	}
	if field >= 0 {
		fields = append(fields, line[field:])
	}
	return fields, nil
}

func checkTokenName(name string) error {
	if len(name) > MaxTokenName {
		return fmt.Errorf("name of %d characters, more than %d", len(name), MaxTokenName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || (i > 0 && (c == '-' || c == '_' || c == '.'))) {
			// The name is not shown: a line written 'TOKEN NAME' has the token there.
			return fmt.Errorf("the name (first field) is not a name: use letters, digits, '-', '_' and '.', starting with a letter or digit (it labels logs and metrics); the token goes second")
		}
	}
	return nil
}

func checkTokenValue(v string) error {
	switch {
	case len(v) < MinTokenLength:
		return fmt.Errorf("token of %d characters; use at least %d (e.g. openssl rand -hex 32)", len(v), MinTokenLength)
	case len(v) > MaxTokenLength:
		return fmt.Errorf("token of %d characters, more than %d", len(v), MaxTokenLength)
	}
	return nil
}

// tokenSet is the tokens in use, with the digests compared.
type tokenSet struct {
	tokens  []IngestToken
	digests [][32]byte // sha256("Bearer " + token)
}

func newTokenSet(tokens []IngestToken) *tokenSet {
	s := &tokenSet{tokens: tokens, digests: make([][32]byte, len(tokens))}
	for i, t := range tokens {
		s.digests[i] = sha256.Sum256([]byte("Bearer " + t.Value))
	}
	return s
}

// match names the token an Authorization header carries, or says none
// does. It compares digests, so the time taken depends neither on the
// header's length nor on how much of it matches, and it compares with
// every token, without stopping at a match, so it does not tell which
// one matched or where it is in the file either.
func (s *tokenSet) match(authorization string) (string, bool) {
	got := sha256.Sum256([]byte(authorization))
	found, at := 0, 0
	for i := range s.digests {
		eq := subtle.ConstantTimeCompare(got[:], s.digests[i][:])
		at = subtle.ConstantTimeSelect(eq, i, at)
		found |= eq
	}
	if found == 0 {
		return "", false
	}
	return s.tokens[at].Name, true
}

// tokenStore holds the token set in use and reloads it from its file.
type tokenStore struct {
	path   string
	logger *slog.Logger
	cur    atomic.Pointer[tokenSet]
	mu     sync.Mutex // one reload at a time
	stamp  fileStamp  // of the file as last read, parsed or not
}

// fileStamp is what tells that a file changed without reading it.
type fileStamp struct {
	exists  bool
	size    int64
	modTime time.Time
	ino     uint64
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	s := fileStamp{exists: true, size: fi.Size(), modTime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = uint64(st.Ino)
	}
	return s
}

// readTokenFile reads and parses the token file at path, bounded.
func readTokenFile(path string) ([]IngestToken, os.FileMode, error) {
	// O_NONBLOCK: opening a FIFO put in the file's place must not wait
	// for a writer (a reload holds the store's lock); it is refused below
	// as not a regular file. On a regular file the flag changes nothing.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxTokenFileSize+1))
	if err != nil {
		return nil, 0, err
	}
	tokens, err := ParseTokenFile(b)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	return tokens, fi.Mode().Perm(), nil
}

// ReadTokenFile reads the ingest token file at path (a client's
// --token-file may be one, or hold only its token).
func ReadTokenFile(path string) ([]IngestToken, error) {
	t, _, err := readTokenFile(path)
	return t, err
}

// openTokens reads the token file, creating it with one generated token
// on first start.
func openTokens(path string, logger *slog.Logger) (*tokenStore, error) {
	if err := createTokenFile(path); err != nil {
		return nil, err
	}
	s := &tokenStore{path: path, logger: logger}
	s.stamp = stampOf(path)
	tokens, perm, err := readTokenFile(path)
	if err != nil {
		return nil, err
	}
	s.warnPerm(perm)
	s.cur.Store(newTokenSet(tokens))
	return s, nil
}

func (s *tokenStore) warnPerm(perm os.FileMode) {
	if perm&0o077 != 0 {
		s.logger.Warn("the ingest token file can be read by other users: chmod 600 it", "file", s.path, "mode", fmt.Sprintf("%04o", perm))
	}
}

// reload re-reads the token file. why is "SIGHUP" or "changed". On
// failure the tokens in use stay, and the error is logged.
func (s *tokenStore) reload(why string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stamp = stampOf(s.path)
	old := s.cur.Load()
	tokens, perm, err := readTokenFile(s.path)
	if err != nil {
		s.logger.Error("ingest tokens not reloaded: keeping the tokens in use", "why", why, "file", s.path, "err", err, "in_use", names(old.tokens))
		return err
	}
	s.warnPerm(perm)
	added, removed, changed := diffTokens(old.tokens, tokens)
	s.cur.Store(newTokenSet(tokens))
	s.logger.Info("ingest tokens reloaded", "why", why, "file", s.path, "in_use", names(tokens), "added", added, "removed", removed, "changed", changed)
	return nil
}

// watch reloads the file whenever it changes (size, time, inode), checked
// every interval: the same on every file system, rename into place and
// editing in place alike.
func (s *tokenStore) watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		changed := stampOf(s.path) != s.stamp
		s.mu.Unlock()
		if changed {
			s.reload("changed")
		}
	}
}

func names(tokens []IngestToken) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		out[i] = t.Name
	}
	return out
}

// diffTokens names the tokens added, removed, and changed (a new token
// under an old name).
func diffTokens(old, cur []IngestToken) (added, removed, changed []string) {
	was := map[string]string{}
	for _, t := range old {
		was[t.Name] = t.Value
	}
	is := map[string]bool{}
	for _, t := range cur {
		is[t.Name] = true
		v, ok := was[t.Name]
		switch {
		case !ok:
			added = append(added, t.Name)
		case subtle.ConstantTimeCompare([]byte(v), []byte(t.Value)) != 1:
			changed = append(changed, t.Name)
		}
	}
	for _, t := range old {
		if !is[t.Name] {
			removed = append(removed, t.Name)
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	slices.Sort(changed)
	return added, removed, changed
}

// ReloadTokens re-reads the ingest token file now (the server calls it on
// SIGHUP). On error the tokens in use stay.
func (l *Log) ReloadTokens() error {
	if l.tokens == nil {
		return ErrReadOnly
	}
	return l.tokens.reload("SIGHUP")
}

// authorize names the token an Authorization header's value carries, or
// says it carries none the log accepts.
func (l *Log) authorize(authorization string) (string, bool) {
	if l.tokens == nil {
		return "", false
	}
	return l.tokens.cur.Load().match(authorization)
}

// createTokenFile writes a token file of one generated token (named
// "default", a bare line) unless the file exists.
func createTokenFile(path string) error {
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	r := make([]byte, 32)
	if _, err := rand.Read(r); err != nil {
		return err
	}
	return atomicfile.WriteNew(path, []byte(hex.EncodeToString(r)+"\n"), 0o600)
}

// tokenPollInterval is how often the token file is checked for changes.
const tokenPollInterval = time.Second
