// Package entry is the cpan-tlog v1 leaf format: the exact bytes that the
// log commits to for one CPAN upload or deletion.
//
// An entry is plain text with LF line ends, one "key value" per line in a
// fixed order:
//
//	cpan-tlog/v1 upload
//	path authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz
//	size 35784
//	sha256 3300d31d8a4075b26d8f46ce864a1d913e0e8467ceeba6655d5d2b2e206c11be
//	uploader ETHER
//	time 2021-01-05T12:00:00Z
//
// An upload of a Sigstore bundle that verified may carry the optional
// sigstore-* lines after time, in the order of the Sigstore struct. A
// deletion is "cpan-tlog/v1 delete" with path and time only. A version of
// an index file PAUSE publishes (02packages, 06perms, 01mailrc; see
// cpan.IndexPaths) is "cpan-tlog/v1 index" with path, size, sha256 and
// time.
//
// Parse accepts exactly what Marshal produces: for any input it either
// returns an Entry whose Marshal is byte-identical to the input, or an error.
// That promise is what lets monitors and clients treat two different leaves
// as two different claims.
//
// This package is the only part of the log that the client imports, so it
// stays small and depends on nothing but internal/cpan.
package entry

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
)

// Kind says what an entry records.
type Kind string

const (
	// Upload is a file published on CPAN.
	Upload Kind = "upload"
	// Delete is a file removed from CPAN.
	Delete Kind = "delete"
	// Index is one version of an index file (cpan.IndexPaths).
	Index Kind = "index"
)

// Header is the first line's prefix, before the kind.
const Header = "cpan-tlog/v1 "

// TimeFormat is RFC 3339 in UTC with seconds precision.
const TimeFormat = "2006-01-02T15:04:05Z"

// MaxSize bounds an encoded entry. Real entries are a few hundred bytes.
const MaxSize = 8192

// maxValue bounds one Sigstore value.
const maxValue = 1024

// Entry is one leaf of the log.
type Entry struct {
	Kind     Kind
	Path     string
	Size     uint64   // Upload and Index
	SHA256   [32]byte // Upload and Index
	Uploader string   // Upload only: the PAUSE id that submitted the file
	Time     time.Time
	// Sigstore is set on the upload of a .sigstore.json bundle that verified.
	Sigstore *Sigstore
}

// Sigstore is the identity a verified Sigstore bundle attests to, as
// recorded on the bundle file's own upload entry. The line names follow the
// field order here.
type Sigstore struct {
	ArtifactSHA256 [32]byte // sigstore-artifact-sha256: the signed file's digest
	Issuer         string   // sigstore-issuer: the OIDC issuer
	SAN            string   // sigstore-san: the certificate's subject alternative name
	SourceRepo     string   // sigstore-source-repo (optional)
	BuildConfig    string   // sigstore-build-config (optional)
	RekorIndex     *uint64  // sigstore-rekor-index (optional)
	// RekorLog names the Rekor log (a v1 instance or a v2 shard) the index
	// is in: the hex of the log's key ID as the bundle's transparency log
	// entry gives it and the trusted root lists it (sigstore-rekor-log,
	// optional; only with sigstore-rekor-index). An index alone does not
	// say which of several logs it counts in.
	RekorLog string
}

// maxRekorLog bounds sigstore-rekor-log: a SHA-256 key ID is 64 hex
// digits; room for a longer one, never an unbounded line.
const maxRekorLog = 128

// ErrMalformed is wrapped by every Parse and Marshal error.
var ErrMalformed = errors.New("malformed cpan-tlog entry")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// Validate checks every field against the format's rules.
func (e *Entry) Validate() error {
	if e.Kind == Index {
		if !cpan.IsIndexPath(e.Path) {
			return malformed("%q is not an index file (one of %s)", e.Path, strings.Join(cpan.IndexPaths, ", "))
		}
	} else if _, err := cpan.ValidatePath(e.Path); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if e.Time.IsZero() {
		return malformed("time is missing")
	}
	if e.Time.Location() != time.UTC || e.Time.Nanosecond() != 0 {
		return malformed("time %s is not UTC with whole seconds", e.Time.Format(time.RFC3339Nano))
	}
	if y := e.Time.Year(); y < 1970 || y > 9999 {
		return malformed("time %s is out of range", e.Time.Format(TimeFormat))
	}
	switch e.Kind {
	case Upload:
		if !cpan.ValidID(e.Uploader) {
			return malformed("uploader %q is not a PAUSE id", e.Uploader)
		}
		if e.Size > 1<<53 {
			return malformed("size %d is implausible", e.Size)
		}
		if e.Sigstore != nil {
			return e.Sigstore.validate()
		}
	case Delete:
		if e.Size != 0 || e.SHA256 != [32]byte{} || e.Uploader != "" || e.Sigstore != nil {
			return malformed("a delete entry has only path and time")
		}
	case Index:
		if e.Uploader != "" || e.Sigstore != nil {
			return malformed("an index entry has only path, size, sha256 and time")
		}
		if e.Size > 1<<53 {
			return malformed("size %d is implausible", e.Size)
		}
	default:
		return malformed("unknown kind %q", e.Kind)
	}
	return nil
}

func (s *Sigstore) validate() error {
	if s.Issuer == "" || s.SAN == "" {
		return malformed("sigstore lines need issuer and san")
	}
	if s.RekorLog != "" {
		if s.RekorIndex == nil {
			return malformed("sigstore-rekor-log without sigstore-rekor-index")
		}
		if !isLowerHex(s.RekorLog) || len(s.RekorLog)%2 != 0 || len(s.RekorLog) > maxRekorLog {
			return malformed("sigstore-rekor-log %q is not a key ID in lower-case hex of at most %d digits", s.RekorLog, maxRekorLog)
		}
	}
	for name, v := range map[string]string{"issuer": s.Issuer, "san": s.SAN, "source-repo": s.SourceRepo, "build-config": s.BuildConfig} {
		if len(v) > maxValue {
			return malformed("sigstore-%s is longer than %d bytes", name, maxValue)
		}
		for i := 0; i < len(v); i++ {
			if v[i] <= ' ' || v[i] >= 0x7f {
				return malformed("sigstore-%s contains a byte 0x%02x (only printable ASCII without spaces)", name, v[i])
			}
		}
	}
	return nil
}

// Marshal encodes e in the v1 format after validating it.
func (e *Entry) Marshal() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return e.appendText(make([]byte, 0, 256)), nil
}

// appendText appends the encoding of a valid e to b.
func (e *Entry) appendText(b []byte) []byte {
	line := func(k, v string) { b = append(append(append(append(b, k...), ' '), v...), '\n') }
	b = append(append(append(b, Header...), e.Kind...), '\n')
	line("path", e.Path)
	if e.Kind == Upload || e.Kind == Index {
		b = strconv.AppendUint(append(b, "size "...), e.Size, 10)
		b = hex.AppendEncode(append(b, "\nsha256 "...), e.SHA256[:])
		b = append(b, '\n')
	}
	if e.Kind == Upload {
		line("uploader", e.Uploader)
	}
	b = append(appendTime(append(b, "time "...), e.Time), '\n')
	if s := e.Sigstore; s != nil {
		b = hex.AppendEncode(append(b, "sigstore-artifact-sha256 "...), s.ArtifactSHA256[:])
		b = append(b, '\n')
		line("sigstore-issuer", s.Issuer)
		line("sigstore-san", s.SAN)
		if s.SourceRepo != "" {
			line("sigstore-source-repo", s.SourceRepo)
		}
		if s.BuildConfig != "" {
			line("sigstore-build-config", s.BuildConfig)
		}
		if s.RekorIndex != nil {
			b = strconv.AppendUint(append(b, "sigstore-rekor-index "...), *s.RekorIndex, 10)
			b = append(b, '\n')
		}
		if s.RekorLog != "" {
			line("sigstore-rekor-log", s.RekorLog)
		}
	}
	return b
}

// appendTime appends t in TimeFormat; Validate has checked it is UTC, in
// whole seconds, in years 1970 to 9999. (By hand: time.Format is a
// noticeable part of auditing a large log.)
func appendTime(b []byte, t time.Time) []byte {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	two := func(b []byte, v int) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }
	b = append(two(two(b, y/100), y%100), '-')
	b = append(two(b, int(mo)), '-')
	b = append(two(b, d), 'T')
	b = append(two(b, h), ':')
	b = append(two(b, mi), ':')
	return append(two(b, s), 'Z')
}

// parseTime reads exactly TimeFormat; a date that does not exist (month
// 13, February 30) comes back normalised and fails the canonical check.
func parseTime(v string) (time.Time, bool) {
	if len(v) != len(TimeFormat) || v[4] != '-' || v[7] != '-' || v[10] != 'T' || v[13] != ':' || v[16] != ':' || v[19] != 'Z' {
		return time.Time{}, false
	}
	num := func(i, n int) (int, bool) {
		x := 0
		for _, c := range []byte(v[i : i+n]) {
			if c < '0' || c > '9' {
				return 0, false
			}
			x = x*10 + int(c-'0')
		}
		return x, true
	}
	var f [6]int
	for i, at := range [6][2]int{{0, 4}, {5, 2}, {8, 2}, {11, 2}, {14, 2}, {17, 2}} {
		x, ok := num(at[0], at[1])
		if !ok {
			return time.Time{}, false
		}
		f[i] = x
	}
	return time.Date(f[0], time.Month(f[1]), f[2], f[3], f[4], f[5], 0, time.UTC), true
}

// Parse decodes a leaf. It rejects anything Marshal would not have produced
// byte for byte, naming the first problem it finds.
func Parse(leaf []byte) (*Entry, error) { return ParseString(string(leaf)) }

// ParseString is Parse for a leaf held in a string. The entry's strings are
// substrings of leaf: a caller holding many leaves in one string (a whole
// entry bundle) parses them without copying each.
func ParseString(leaf string) (*Entry, error) {
	if len(leaf) > MaxSize {
		return nil, malformed("%d bytes, more than %d", len(leaf), MaxSize)
	}
	if len(leaf) == 0 || leaf[len(leaf)-1] != '\n' {
		return nil, malformed("does not end with a newline")
	}
	// The fields are read front to back, one IndexByte a line (splitting
	// into lines and then each line at its space was a quarter of the
	// parse, which a monitor runs on every entry of the log).
	first, rest, _ := strings.Cut(leaf, "\n")
	kind, ok := strings.CutPrefix(first, Header)
	if !ok {
		return nil, malformed("first line %q does not start with %q", first, Header)
	}
	e := &Entry{Kind: Kind(kind)}
	var want []string
	switch e.Kind {
	case Upload:
		want = uploadKeys
	case Delete:
		want = deleteKeys
	case Index:
		want = indexKeys
	default:
		return nil, malformed("unknown kind %q", kind)
	}
	for _, key := range want {
		if rest == "" {
			return nil, malformed("%s entry has %d lines, want at least %d", kind, strings.Count(leaf, "\n"), len(want)+1)
		}
		// rest ends with a newline: every line has one.
		if len(rest) <= len(key) || rest[:len(key)] != key || rest[len(key)] != ' ' {
			line, _, _ := strings.Cut(rest, "\n")
			return nil, malformed("line %q: want %q", line, key+" ...")
		}
		v, more, _ := strings.Cut(rest[len(key)+1:], "\n")
		if v == "" {
			return nil, malformed("line %q has an empty value", key+" ")
		}
		rest = more
		switch key {
		case "path":
			e.Path = v
		case "size":
			var err error
			if e.Size, err = parseDecimal(v); err != nil {
				return nil, malformed("size: %v", err)
			}
		case "sha256":
			var err error
			if e.SHA256, err = parseHex32(v); err != nil {
				return nil, malformed("sha256: %v", err)
			}
		case "uploader":
			e.Uploader = v
		case "time":
			t, ok := parseTime(v)
			if !ok {
				return nil, malformed("time %q is not RFC 3339 UTC with seconds (%s)", v, TimeFormat)
			}
			e.Time = t
		}
	}
	if rest != "" {
		if e.Kind != Upload {
			line, _, _ := strings.Cut(rest, "\n")
			return nil, malformed("unexpected line %q after time", line)
		}
		// The longest entry Marshal writes has 12 lines.
		var lineArr [7]string
		lines := lineArr[:0]
		for rest != "" {
			if len(lines) == len(lineArr) {
				return nil, malformed("more than %d lines", len(want)+1+len(lineArr))
			}
			var line string
			line, rest, _ = strings.Cut(rest, "\n")
			lines = append(lines, line)
		}
		s, err := parseSigstore(lines)
		if err != nil {
			return nil, err
		}
		e.Sigstore = s
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	var buf [512]byte
	if string(e.appendText(buf[:0])) != leaf {
		return nil, malformed("not in canonical form")
	}
	return e, nil
}

// The lines of each kind of entry after the first, in order (an upload's
// optional sigstore lines follow).
var (
	uploadKeys = []string{"path", "size", "sha256", "uploader", "time"}
	deleteKeys = []string{"path", "time"}
	indexKeys  = []string{"path", "size", "sha256", "time"}
)

// value returns the value of a "key value" line whose key must be key.
func value(line, key string) (string, error) {
	k, v, ok := strings.Cut(line, " ")
	if !ok || k != key {
		return "", malformed("line %q: want %q", line, key+" ...")
	}
	if v == "" {
		return "", malformed("line %q has an empty value", line)
	}
	return v, nil
}

func parseSigstore(lines []string) (*Sigstore, error) {
	s := &Sigstore{}
	required := []string{"sigstore-artifact-sha256", "sigstore-issuer", "sigstore-san"}
	optional := []string{"sigstore-source-repo", "sigstore-build-config", "sigstore-rekor-index", "sigstore-rekor-log"}
	i := 0
	for _, key := range required {
		if i >= len(lines) {
			return nil, malformed("sigstore lines end before %q", key)
		}
		v, err := value(lines[i], key)
		if err != nil {
			return nil, err
		}
		switch key {
		case "sigstore-artifact-sha256":
			if s.ArtifactSHA256, err = parseHex32(v); err != nil {
				return nil, malformed("%s: %v", key, err)
			}
		case "sigstore-issuer":
			s.Issuer = v
		case "sigstore-san":
			s.SAN = v
		}
		i++
	}
	for _, key := range optional {
		if i >= len(lines) {
			break
		}
		k, _, _ := strings.Cut(lines[i], " ")
		if k != key {
			continue
		}
		v, err := value(lines[i], key)
		if err != nil {
			return nil, err
		}
		switch key {
		case "sigstore-source-repo":
			s.SourceRepo = v
		case "sigstore-build-config":
			s.BuildConfig = v
		case "sigstore-rekor-index":
			n, err := parseDecimal(v)
			if err != nil {
				return nil, malformed("%s: %v", key, err)
			}
			s.RekorIndex = &n
		case "sigstore-rekor-log":
			s.RekorLog = v
		}
		i++
	}
	if i < len(lines) {
		return nil, malformed("unexpected line %q", lines[i])
	}
	return s, nil
}

func parseDecimal(s string) (uint64, error) {
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("%q has a leading zero", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a decimal number", s)
		}
	}
	return strconv.ParseUint(s, 10, 64)
}

// hexDigit maps the lower-case hex digits to their values, and every
// other byte to 0xff.
var hexDigit = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "0123456789abcdef" {
		t[c] = byte(i)
	}
	return t
}()

func parseHex32(s string) ([32]byte, error) {
	var h [32]byte
	if len(s) != 64 {
		return h, fmt.Errorf("%q is not 64 lower-case hex digits", s)
	}
	for i := range h {
		hi, lo := hexDigit[s[2*i]], hexDigit[s[2*i+1]]
		if hi > 15 || lo > 15 {
			return h, fmt.Errorf("%q is not 64 lower-case hex digits", s)
		}
		h[i] = hi<<4 | lo
	}
	return h, nil
}

// String is the entry's leaf text, or a description of why it has none.
func (e *Entry) String() string {
	b, err := e.Marshal()
	if err != nil {
		return "invalid entry: " + err.Error()
	}
	return string(b)
}

// isLowerHex reports whether s is non-empty and all lower-case hex digits.
func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return s != ""
}
