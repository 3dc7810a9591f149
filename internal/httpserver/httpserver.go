// Package httpserver builds the http.Server every cpan-tlog daemon uses,
// with timeouts, header limits and a cap on open connections, and runs it
// until a context ends.
package httpserver

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// New returns an http.Server for h. writeTimeout bounds the longest
// response the daemon ever makes.
func New(h http.Handler, writeTimeout time.Duration) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      writeTimeout,
		// Idle keep-alive connections hold a file descriptor each.
		IdleTimeout:    30 * time.Second,
		MaxHeaderBytes: 16 << 10,
	}
}

// Run serves srv on ln until ctx ends, then shuts it down gracefully,
// letting requests in flight finish within grace. ln is capped with Limit
// unless it already is.
func Run(ctx context.Context, srv *http.Server, ln net.Listener, grace time.Duration) error {
	ln = Limit(ln, 0)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// DefaultCSP is the Content-Security-Policy of every response whose
// handler sets none: a browser that renders it (a text error, JSON, an
// Atom feed, a tile opened by mistake) loads and runs nothing, and no
// other site frames it.
const DefaultCSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; sandbox"

// SecureHeaders gives every response of h X-Content-Type-Options: nosniff
// (a browser never guesses a type and runs what the server says is text or
// bytes) and DefaultCSP, unless h sets a Content-Security-Policy of its own
// (the explorer's pages do).
func SecureHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Content-Security-Policy", DefaultCSP)
		h.ServeHTTP(w, r)
	})
}
