// Package confline reads the line-oriented configuration files cpan-tlog
// shares with C2SP and Sigsum (policies, witness configs, watch files):
// '#' starts a comment, blank lines are skipped, fields are separated by
// white space, and every error names its line.
package confline

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// Error is a problem on one line.
type Error struct {
	File string // what kind of file, e.g. "policy"
	Line int
	Text string // the line as written, trimmed
	Err  error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s line %d (%q): %v", e.File, e.Line, e.Text, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Each calls fn with the fields of every non-blank line of b, comments
// removed. An error from fn is returned wrapped in an *Error naming the
// line.
func Each(kind string, b []byte, fn func(fields []string) error) error {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if err := fn(f); err != nil {
			return &Error{File: kind, Line: n, Text: strings.TrimSpace(sc.Text()), Err: err}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	return nil
}
