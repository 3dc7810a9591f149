package testlog

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"testing"
)

// FlipSignature changes one base64 digit in the middle of every signature
// line of name in b: the line keeps its length, key name and key ID, and
// its signature no longer verifies.
func FlipSignature(b []byte, name string) []byte {
	prefix := []byte("\u2014 " + name + " ")
	out := bytes.Clone(b)
	for i := 0; ; {
		j := bytes.Index(out[i:], prefix)
		if j < 0 {
			return out
		}
		start := i + j + len(prefix)
		end := start + bytes.IndexByte(out[start:], '\n')
		if end < start {
			end = len(out)
		}
		if k := start + (end-start)/2; out[k] == 'A' {
			out[k] = 'B'
		} else {
			out[k] = 'A'
		}
		i = end
	}
}

// FlippingFront serves the log at target, flipping (FlipSignature) the
// signature lines of name in every checkpoint and proof it relays: a log,
// or a network between, whose cosignatures do not verify. Compressed
// answers (tiles and bundles carry no signature lines) pass as they are.
func FlippingFront(t testing.TB, target, name string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(r *http.Response) error {
		if r.Header.Get("Content-Encoding") != "" {
			return nil
		}
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return err
		}
		b = FlipSignature(b, name)
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.ContentLength = int64(len(b))
		r.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL
}
