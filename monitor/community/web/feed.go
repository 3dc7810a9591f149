package web

import (
	"bytes"
	"net/http"
	"strconv"

	"github.com/CPAN-Security/cpan-tlog/monitor/community"
	"github.com/CPAN-Security/cpan-tlog/monitor/notify"
)

// feed serves a subscriber's Atom feed. It is written whole before it is
// sent, so a failure is a clean error, never half a feed.
func (h *handler) feed(w http.ResponseWriter, r *http.Request) {
	t := token(r)
	if t == "" {
		h.fail(w, r, community.ErrBadToken)
		return
	}
	f, err := h.c.Feed(t)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var buf bytes.Buffer
	if err := notify.WriteAtom(&buf, f); err != nil {
		h.fail(w, r, err)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/atom+xml; charset=utf-8")
	hd.Set("Content-Length", strconv.Itoa(buf.Len()))
	// Not a page: a browser opening it runs and loads nothing.
	hd.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; sandbox")
	w.Write(buf.Bytes())
}
