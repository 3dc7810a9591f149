package web

import (
	"net/http"
)

// feed serves a subscriber's Atom feed.
// TEMPORARY until community.Feed and notify.WriteAtom land.
func (h *handler) feed(w http.ResponseWriter, r *http.Request) {
	h.message(w, http.StatusNotFound, "Not found", "Feeds are not served yet.")
}
