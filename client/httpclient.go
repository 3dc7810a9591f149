package client

import (
	"net/http"
	"time"
)

// NewHTTPClient returns the HTTP client every cpan-tlog part uses to fetch
// files it hashes: transparent decompression is off, so a mirror answering
// with Content-Encoding: gzip is hashed as the bytes it served (the file
// CPAN published), not as what Go's transport would un-gzip them to.
// timeout bounds each request.
func NewHTTPClient(timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableCompression = true
	// Parallel fetchers (the monitor's workers, the proxy's clients) talk
	// to one host: with Go's default of 2 idle connections per host, the
	// others were closed after every request and dialled again.
	tr.MaxIdleConnsPerHost = 16
	return &http.Client{Transport: tr, Timeout: timeout}
}
