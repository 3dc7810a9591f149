package api

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// C2SP tlog-tiles: "Entry bundles SHOULD be compressed at the HTTP layer".
// The log compresses an entry bundle for a client that accepts gzip, on
// the way out: Tessera stores the bundle as it is, a tile's hash covers
// the entries as they are, and a client that does not ask (curl without
// --compressed, a verifier reading raw bytes) gets them as they are.
// Every answer says Vary: Accept-Encoding, so a cache keeps both.

// bundleGzipLevel is the compression level of entry bundles: level 1
// (nginx's default too) takes a 256-entry bundle to 40% of its size in
// half the time of level 6, whose output is only 5% smaller
// (BENCHMARKS.md, "Entry bundles over HTTP").
const bundleGzipLevel = gzip.BestSpeed

var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, bundleGzipLevel)
	return w
}}

// writeCompressible writes data as the body, gzip-compressed when the
// request accepts gzip.
func writeCompressible(w http.ResponseWriter, r *http.Request, data []byte) {
	w.Header().Add("Vary", "Accept-Encoding")
	if !acceptsGzip(r.Header.Values("Accept-Encoding")) {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Write(data)
		return
	}
	var buf bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(&buf)
	zw.Write(data)
	zw.Close()
	gzipWriters.Put(zw)
	w.Header().Set("Content-Encoding", "gzip")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Write(buf.Bytes())
}

// acceptsGzip reads Accept-Encoding (RFC 9110, section 12.5.3): gzip (or
// x-gzip, or *) with a quality above zero, and gzip not refused by name.
func acceptsGzip(values []string) bool {
	gzipQ, starQ := -1.0, -1.0
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(item, ";")
			q := 1.0
			for _, p := range strings.Split(params, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
					f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
					if err != nil || f < 0 || f > 1 {
						f = 0 // a quality that does not parse accepts nothing
					}
					q = f
				}
			}
			switch strings.ToLower(strings.TrimSpace(coding)) {
			case "gzip", "x-gzip":
				gzipQ = max(gzipQ, q)
			case "*":
				starQ = max(starQ, q)
			}
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}
