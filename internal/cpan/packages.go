package cpan

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// ErrBadIndex is wrapped by every error of the 02packages and 06perms
// readers.
var ErrBadIndex = errors.New("malformed CPAN index file")

func badIndex(line int, format string, args ...any) error {
	return fmt.Errorf("%w: line %d: "+format, append([]any{ErrBadIndex, line}, args...)...)
}

// Limits on index files: the real 02packages has about 270,000 lines of
// under 200 bytes; these leave ample room and bound a hostile one.
const (
	MaxIndexLine  = 4096
	MaxIndexLines = 10_000_000
	maxHeaders    = 64
)

var (
	packageRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(?:(?:::|')[A-Za-z0-9_]+)*(?:::)?$`)
	headerRE  = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9-]*):[ \t]+(.*)$`)
)

// ValidPackage reports whether s is a Perl package name as PAUSE indexes
// them (Foo::Bar, Foo'Bar, and the odd trailing ::).
func ValidPackage(s string) bool { return len(s) <= 256 && packageRE.MatchString(s) }

// indexReader reads the "Key: value" header block and then one record a
// line, bounded in line length and count. It never evaluates anything.
type indexReader struct {
	sc     *bufio.Scanner
	line   int
	header map[string]string
	count  int
}

func newIndexReader(r io.Reader) (*indexReader, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), MaxIndexLine)
	ir := &indexReader{sc: sc, header: map[string]string{}}
	last := ""
	for {
		text, err := ir.next()
		if err == io.EOF {
			return nil, badIndex(ir.line, "ends inside the header (no blank line)")
		}
		if err != nil {
			return nil, err
		}
		if text == "" {
			break
		}
		if last != "" && (text[0] == ' ' || text[0] == '\t') {
			// A continuation of the previous header (06perms' Description).
			ir.header[last] += " " + strings.TrimSpace(text)
			continue
		}
		m := headerRE.FindStringSubmatch(text)
		if m == nil {
			return nil, badIndex(ir.line, "header line %q is not \"Key: value\"", text)
		}
		if _, dup := ir.header[m[1]]; dup {
			return nil, badIndex(ir.line, "header %s given twice", m[1])
		}
		if len(ir.header) >= maxHeaders {
			return nil, badIndex(ir.line, "more than %d header lines", maxHeaders)
		}
		ir.header[m[1]] = m[2]
		last = m[1]
	}
	if _, ok := ir.header["File"]; !ok {
		return nil, badIndex(ir.line, "header has no File: line")
	}
	return ir, nil
}

// next returns the next line without its end, or io.EOF.
func (ir *indexReader) next() (string, error) {
	if !ir.sc.Scan() {
		if err := ir.sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				return "", badIndex(ir.line+1, "longer than %d bytes", MaxIndexLine)
			}
			return "", err
		}
		return "", io.EOF
	}
	ir.line++
	if ir.line > MaxIndexLines {
		return "", badIndex(ir.line, "more than %d lines", MaxIndexLines)
	}
	text := strings.TrimSuffix(ir.sc.Text(), "\r")
	for i := 0; i < len(text); i++ {
		if c := text[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return "", badIndex(ir.line, "control byte 0x%02x", c)
		}
	}
	return text, nil
}

// checkCount compares the records read with the header's Line-Count, if any.
func (ir *indexReader) checkCount() error {
	lc, ok := ir.header["Line-Count"]
	if !ok {
		return nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(lc))
	if err != nil || n < 0 {
		return badIndex(0, "Line-Count %q is not a number", lc)
	}
	if n != ir.count {
		return badIndex(ir.line, "Line-Count says %d records, the file has %d (truncated?)", n, ir.count)
	}
	return nil
}

// Package is one line of 02packages.details.txt: a package, its version
// ("undef" when it has none) and the distribution file, relative to
// authors/id/.
type Package struct {
	Name    string
	Version string
	Path    string // A/AB/ID/Dist-1.0.tar.gz
}

// CPANPath is the distribution file's path from the CPAN root.
func (p Package) CPANPath() string { return AuthorsPrefix + p.Path }

// PackagesReader reads 02packages.details.txt (uncompressed) line by line,
// so memory stays flat whatever its size.
type PackagesReader struct{ ir *indexReader }

// NewPackagesReader reads the header of an 02packages file.
func NewPackagesReader(r io.Reader) (*PackagesReader, error) {
	ir, err := newIndexReader(r)
	if err != nil {
		return nil, err
	}
	return &PackagesReader{ir: ir}, nil
}

// Header is the file's "Key: value" header.
func (p *PackagesReader) Header() map[string]string { return p.ir.header }

// Next returns the next package line; io.EOF after the last, once the
// count matches the header's Line-Count.
func (p *PackagesReader) Next() (Package, error) {
	text, err := p.ir.next()
	if err == io.EOF {
		if err := p.ir.checkCount(); err != nil {
			return Package{}, err
		}
		return Package{}, io.EOF
	}
	if err != nil {
		return Package{}, err
	}
	f := strings.Fields(text)
	if len(f) != 3 {
		return Package{}, badIndex(p.ir.line, "want \"package version path\", got %q", text)
	}
	pkg := Package{Name: f[0], Version: f[1], Path: f[2]}
	if !ValidPackage(pkg.Name) {
		return Package{}, badIndex(p.ir.line, "%q is not a package name", pkg.Name)
	}
	if len(pkg.Version) > 128 {
		return Package{}, badIndex(p.ir.line, "version of %s is longer than 128 bytes", pkg.Name)
	}
	if _, err := ValidatePath(pkg.CPANPath()); err != nil {
		return Package{}, badIndex(p.ir.line, "path of %s: %v", pkg.Name, err)
	}
	p.ir.count++
	return pkg, nil
}

// Perm is one line of 06perms.txt: a PAUSE id's permission on a package,
// "m" (maintainer, the first to register it), "f" (first-come) or "c"
// (co-maintainer).
type Perm struct {
	Package string
	ID      string
	Perm    string
}

// PermsReader reads 06perms.txt (uncompressed) line by line.
type PermsReader struct{ ir *indexReader }

// NewPermsReader reads the header of a 06perms file.
func NewPermsReader(r io.Reader) (*PermsReader, error) {
	ir, err := newIndexReader(r)
	if err != nil {
		return nil, err
	}
	return &PermsReader{ir: ir}, nil
}

// Header is the file's "Key: value" header.
func (p *PermsReader) Header() map[string]string { return p.ir.header }

// Next returns the next permission; io.EOF after the last.
func (p *PermsReader) Next() (Perm, error) {
	text, err := p.ir.next()
	if err == io.EOF {
		if err := p.ir.checkCount(); err != nil {
			return Perm{}, err
		}
		return Perm{}, io.EOF
	}
	if err != nil {
		return Perm{}, err
	}
	f := strings.Split(text, ",")
	if len(f) != 3 {
		return Perm{}, badIndex(p.ir.line, "want \"package,userid,perm\", got %q", text)
	}
	perm := Perm{Package: f[0], ID: f[1], Perm: f[2]}
	switch {
	case !ValidPackage(perm.Package):
		return Perm{}, badIndex(p.ir.line, "%q is not a package name", perm.Package)
	case !ValidID(perm.ID):
		return Perm{}, badIndex(p.ir.line, "%q is not a PAUSE id", perm.ID)
	case perm.Perm != "m" && perm.Perm != "f" && perm.Perm != "c":
		return Perm{}, badIndex(p.ir.line, "permission %q is not m, f or c", perm.Perm)
	}
	p.ir.count++
	return perm, nil
}
