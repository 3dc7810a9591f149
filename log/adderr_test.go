package log

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/log/adderr"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// TestAddErrorsAreAdderrs: the errors a real log's Add returns match
// package adderr's values with errors.Is and errors.As (the HTTP API
// answers them by those), and this package's names are the same values,
// so callers matching log.ErrFutureTime or *log.ConflictError match too;
// over HTTP each gets its status.
func TestAddErrorsAreAdderrs(t *testing.T) {
	s := startServer(t, t.TempDir())
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	upload := func(content string, at time.Time) *entry.Entry {
		return &entry.Entry{Kind: entry.Upload, Path: "authors/id/A/AB/ABC/Foo-1.0.tar.gz", Size: uint64(len(content)),
			SHA256: sha256.Sum256([]byte(content)), Uploader: "ABC", Time: at}
	}
	first, err := s.log.Add(ctx, upload("one", now))
	if err != nil {
		t.Fatal(err)
	}

	_, err = s.log.Add(ctx, upload("two", now))
	var conflict *adderr.ConflictError
	if !errors.As(err, &conflict) || conflict.Existing.Index != first.Index {
		t.Errorf("another file at the path: %v, want an *adderr.ConflictError naming index %d", err, first.Index)
	}
	var logConflict *ConflictError
	if !errors.As(err, &logConflict) {
		t.Errorf("another file at the path: %v does not match *log.ConflictError", err)
	}

	_, err = s.log.Add(ctx, upload("three", now.Add(time.Hour)))
	if !errors.Is(err, adderr.ErrFutureTime) || !errors.Is(err, ErrFutureTime) {
		t.Errorf("a time an hour ahead: %v, want adderr.ErrFutureTime and log.ErrFutureTime", err)
	}

	sum := sha256.Sum256([]byte("index"))
	_, err = s.log.Add(ctx, &entry.Entry{Kind: entry.Index, Path: "modules/02packages.details.txt.gz", Size: 5, SHA256: sum, Time: now})
	if !errors.Is(err, adderr.ErrIndexBytesMissing) || !errors.Is(err, ErrIndexBytesMissing) {
		t.Errorf("an index version without its bytes: %v, want adderr.ErrIndexBytesMissing", err)
	}

	for name, pair := range map[string][2]error{
		"ErrOverloaded": {ErrOverloaded, adderr.ErrOverloaded},
		"ErrShutdown":   {ErrShutdown, adderr.ErrShutdown},
		"ErrPathBusy":   {ErrPathBusy, adderr.ErrPathBusy},
	} {
		if !errors.Is(pair[0], pair[1]) {
			t.Errorf("log.%s is not adderr.%s", name, name)
		}
	}

	// The same refusals over HTTP, through the API's mapping.
	for body, want := range map[string]int{
		`{"path":"authors/id/A/AB/ABC/Foo-1.0.tar.gz","size":3,"sha256":"` + hexSum("four") + `","uploader":"ABC","time":"` + now.Format(entry.TimeFormat) + `"}`:                409,
		`{"path":"authors/id/A/AB/ABC/Foo-2.0.tar.gz","size":3,"sha256":"` + hexSum("five") + `","uploader":"ABC","time":"` + now.Add(time.Hour).Format(entry.TimeFormat) + `"}`: 400,
		`{"kind":"index","path":"modules/02packages.details.txt.gz","size":5,"sha256":"` + hexSum("index") + `","time":"` + now.Format(entry.TimeFormat) + `"}`:                  422,
	} {
		if code, b := s.add(body); code != want {
			t.Errorf("POST /add %s: %d %s, want %d", body, code, b, want)
		}
	}
}

func hexSum(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
