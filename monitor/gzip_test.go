package monitor

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// gzipLog serves the log in dir as the log's own server does: entry
// bundles gzip-compressed to a client that accepts gzip (tlog-tiles),
// everything else as it is. encode makes the compressed body from the
// bundle; asked counts the bundle requests that accepted gzip.
func gzipLog(t *testing.T, dir string, encode func(p string, b []byte) []byte, asked *atomic.Int64) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimPrefix(r.URL.Path, "/")
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		if strings.HasPrefix(p, "tile/entries/") && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			asked.Add(1)
			w.Header().Set("Content-Encoding", "gzip")
			b = encode(p, b)
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// TestBundlesReadGzipCompressed: the monitor asks for entry bundles
// compressed and audits what is under the compression; gzip that does not
// decode, or that decodes into more than a bundle can hold, is the log's
// doing (log-unauditable, security), and the audit resumes once the log
// serves bundles that decode.
func TestBundlesReadGzipCompressed(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var leaves [][]byte
	for i := range 300 {
		leaves = append(leaves, mkUpload(t, fmt.Sprintf("authors/id/S/SY/SYNTH/D-%d.tar.gz", i), "SYNTH", fmt.Sprint(i), t0, nil))
	}
	// 64 MiB of zeros: 32 Mi empty entries once decompressed, 64 KiB on
	// the wire. The reader must stop after 256 of them.
	bomb := gzipped(make([]byte, 64<<20))
	for _, tc := range []struct {
		name    string
		encode  func(p string, b []byte) []byte
		why     string // in the log-unauditable finding; "" for none
		audited uint64
	}{
		{"compressed bundles", func(_ string, b []byte) []byte { return gzipped(b) }, "", 300},
		{"not gzip", func(p string, b []byte) []byte {
			if p == "tile/entries/001.p/44" {
				return b
			}
			return gzipped(b)
		}, "not gzip", 256},
		{"a corrupt gzip stream", func(p string, b []byte) []byte {
			z := gzipped(b)
			if p == "tile/entries/001.p/44" {
				z[len(z)-5] ^= 0xff // the CRC-32 of what is under it
			}
			return z
		}, "does not decode", 256},
		{"a gzip bomb", func(p string, b []byte) []byte {
			if p == "tile/entries/000" {
				return bomb
			}
			return gzipped(b)
		}, "more than 256 entries", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, dir, vkey, _ := craftedLog(t, leaves, nil, "")
			var asked atomic.Int64
			encode := tc.encode
			logURL := gzipLog(t, dir, func(p string, b []byte) []byte { return encode(p, b) }, &asked)
			state := t.TempDir()
			r := monitorOnce(t, logURL, vkey, state, nil)
			if asked.Load() == 0 {
				t.Fatal("the monitor never asked for a compressed bundle")
			}
			if tc.why == "" {
				if r.err != nil || len(r.findings) != 0 {
					t.Fatalf("a log serving compressed bundles: %v %s", r.err, r.kinds())
				}
			} else if r.err == nil || r.kinds() != KindLogUnauditable || !r.findings[0].Security || !strings.Contains(r.findings[0].Message, tc.why) {
				t.Fatalf("want one security log-unauditable finding naming %q, got %v %+v", tc.why, r.err, r.findings)
			}
			m, err := New(Config{Policy: mustPolicy(t, vkey, logURL), StateDir: state, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := m.Audited(); n != tc.audited {
				t.Errorf("audited %d entries, want %d", n, tc.audited)
			}
			m.Close()
			encode = func(_ string, b []byte) []byte { return gzipped(b) }
			if r := monitorOnce(t, logURL, vkey, state, nil); r.err != nil || len(r.findings) != 0 {
				t.Errorf("once the log serves bundles that decode: %v %s", r.err, r.kinds())
			}
		})
	}
}
