package cpan

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxChecksumsSize bounds a CHECKSUMS file; the largest author directories
// have a few thousand files, a few MB.
const MaxChecksumsSize = 32 << 20

// Checksum is what a CHECKSUMS file says of one file in its directory.
type Checksum struct {
	Size      *uint64
	SHA256    *[32]byte
	MD5       string
	Mtime     string
	IsDir     bool
	CPANPath  string
	HasSHA256 bool
}

// ErrBadChecksums is wrapped by every ParseChecksums error.
var ErrBadChecksums = errors.New("malformed CHECKSUMS")

// ParseChecksums reads a CPAN CHECKSUMS file as CPAN::Checksums writes it:
// comment lines, then a Data::Dumper "$cksum = { 'file' => { 'key' =>
// 'value', ... }, ... };", optionally followed by __END__, and optionally
// wrapped in a PGP clear-signed message, of which only the signed body is
// read (the signature itself is not checked here). It never evaluates
// Perl: anything beyond quoted strings, integers, hashes, => and commas is
// an error. Signed reports whether the body was clear-signed.
func ParseChecksums(b []byte) (files map[string]Checksum, signed bool, err error) {
	if len(b) > MaxChecksumsSize {
		return nil, false, fmt.Errorf("%w: %d bytes, more than %d", ErrBadChecksums, len(b), MaxChecksumsSize)
	}
	body, signed, err := clearSignedBody(b)
	if err != nil {
		return nil, false, err
	}
	p := &perlParser{s: body}
	files, err = p.parseFile()
	if err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrBadChecksums, err)
	}
	return files, signed, nil
}

// clearSignedBody returns the signed text of an OpenPGP clear-signed
// message (RFC 4880 section 7), dash-unescaped, or b itself.
func clearSignedBody(b []byte) ([]byte, bool, error) {
	const begin = "-----BEGIN PGP SIGNED MESSAGE-----"
	t := bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	if !bytes.HasPrefix(bytes.TrimLeft(t, "\n"), []byte(begin)) {
		if bytes.Contains(t, []byte("-----BEGIN PGP")) {
			return nil, false, fmt.Errorf("%w: PGP armour that is not a clear-signed message at the start", ErrBadChecksums)
		}
		return b, false, nil
	}
	t = bytes.TrimLeft(t, "\n")[len(begin):]
	// Armour headers ("Hash: SHA256") end at the first empty line.
	_, rest, ok := bytes.Cut(t, []byte("\n\n"))
	if !ok {
		return nil, false, fmt.Errorf("%w: clear-signed message without a body", ErrBadChecksums)
	}
	body, _, ok := bytes.Cut(rest, []byte("\n-----BEGIN PGP SIGNATURE-----"))
	if !ok {
		return nil, false, fmt.Errorf("%w: clear-signed message without a signature", ErrBadChecksums)
	}
	lines := strings.Split(string(body), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "- ") {
			lines[i] = l[2:]
		} else if strings.HasPrefix(l, "-") {
			return nil, false, fmt.Errorf("%w: line %q in the signed body is not dash-escaped", ErrBadChecksums, l)
		}
	}
	return []byte(strings.Join(lines, "\n") + "\n"), true, nil
}

// perlParser reads the tiny subset of Perl that Data::Dumper writes here.
type perlParser struct {
	s   []byte
	pos int
}

func (p *perlParser) skipSpace() {
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			p.pos++
		case c == '#':
			for p.pos < len(p.s) && p.s[p.pos] != '\n' {
				p.pos++
			}
		default:
			return
		}
	}
}

func (p *perlParser) expect(tok string) error {
	p.skipSpace()
	if !bytes.HasPrefix(p.s[p.pos:], []byte(tok)) {
		return fmt.Errorf("at byte %d: want %q, found %q", p.pos, tok, p.peek(20))
	}
	p.pos += len(tok)
	return nil
}

func (p *perlParser) peek(n int) string {
	end := min(len(p.s), p.pos+n)
	return string(p.s[p.pos:end])
}

func (p *perlParser) accept(tok string) bool {
	p.skipSpace()
	if bytes.HasPrefix(p.s[p.pos:], []byte(tok)) {
		p.pos += len(tok)
		return true
	}
	return false
}

// scalar reads a single-quoted string or an unsigned integer.
func (p *perlParser) scalar() (string, error) {
	p.skipSpace()
	if p.pos >= len(p.s) {
		return "", errors.New("unexpected end of file")
	}
	if c := p.s[p.pos]; c >= '0' && c <= '9' {
		start := p.pos
		for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
			p.pos++
		}
		return string(p.s[start:p.pos]), nil
	}
	if p.s[p.pos] != '\'' {
		return "", fmt.Errorf("at byte %d: want a quoted string or a number, found %q", p.pos, p.peek(20))
	}
	p.pos++
	var b strings.Builder
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
		case c == '\\' && p.pos+1 < len(p.s) && (p.s[p.pos+1] == '\\' || p.s[p.pos+1] == '\''):
			b.WriteByte(p.s[p.pos+1])
			p.pos += 2
		case c == '\'':
			p.pos++
			return b.String(), nil
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
	return "", errors.New("unterminated string")
}

func (p *perlParser) parseFile() (map[string]Checksum, error) {
	if err := p.expect("$cksum"); err != nil {
		return nil, err
	}
	if err := p.expect("="); err != nil {
		return nil, err
	}
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	files := map[string]Checksum{}
	for !p.accept("}") {
		name, err := p.scalar()
		if err != nil {
			return nil, err
		}
		if name == "" || strings.ContainsAny(name, "/\x00\n") || name == "." || name == ".." {
			return nil, fmt.Errorf("file name %q is not a plain file name", name)
		}
		if _, dup := files[name]; dup {
			return nil, fmt.Errorf("file %q listed twice", name)
		}
		if err := p.expect("=>"); err != nil {
			return nil, err
		}
		c, err := p.parseEntry(name)
		if err != nil {
			return nil, err
		}
		files[name] = c
		if !p.accept(",") {
			if err := p.expect("}"); err != nil {
				return nil, err
			}
			break
		}
	}
	if err := p.expect(";"); err != nil {
		return nil, err
	}
	p.skipSpace()
	if rest := strings.TrimSpace(string(p.s[p.pos:])); rest != "" && !strings.HasPrefix(rest, "__END__") {
		return nil, fmt.Errorf("unexpected text after the hash: %q", p.peek(20))
	}
	return files, nil
}

func (p *perlParser) parseEntry(name string) (Checksum, error) {
	var c Checksum
	if err := p.expect("{"); err != nil {
		return c, err
	}
	seen := map[string]bool{}
	for !p.accept("}") {
		k, err := p.scalar()
		if err != nil {
			return c, err
		}
		if seen[k] {
			return c, fmt.Errorf("%s: key %q twice", name, k)
		}
		seen[k] = true
		if err := p.expect("=>"); err != nil {
			return c, err
		}
		v, err := p.scalar()
		if err != nil {
			return c, err
		}
		switch k {
		case "size":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return c, fmt.Errorf("%s: size %q", name, v)
			}
			c.Size = &n
		case "sha256":
			h, err := hex.DecodeString(v)
			if err != nil || len(h) != 32 {
				return c, fmt.Errorf("%s: sha256 %q is not 64 hex digits", name, v)
			}
			var s [32]byte
			copy(s[:], h)
			c.SHA256, c.HasSHA256 = &s, true
		case "md5":
			if h, err := hex.DecodeString(v); err != nil || len(h) != 16 {
				return c, fmt.Errorf("%s: md5 %q is not 32 hex digits", name, v)
			}
			c.MD5 = v
		case "mtime":
			c.Mtime = v
		case "isdir":
			c.IsDir = v == "1"
		case "cpan_path":
			c.CPANPath = v
		default:
			// md5-ungz, sha256-ungz and keys of future versions.
		}
		if !p.accept(",") {
			if err := p.expect("}"); err != nil {
				return c, err
			}
			break
		}
	}
	return c, nil
}
