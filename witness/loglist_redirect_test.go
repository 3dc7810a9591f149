package witness

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A log list's redirect is followed only on its own host and scheme: one
// to another host, another loopback port included, is refused (the list
// is not applied, a WARN names where it pointed), as a list that moved
// to someone else's server should be reconfigured, not followed.
func TestLogListRedirectToAnotherHost(t *testing.T) {
	a := namedLog(t, "a.example/log", 10)
	list := "logs/v0\n" + listEntry(a.vkey, "", 24, "a@example")
	var elsewhereHits int
	elsewhere := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		elsewhereHits++
		io.WriteString(rw, list)
	}))
	defer elsewhere.Close()
	src := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved":
			http.Redirect(rw, r, "/list", http.StatusFound)
		case "/away":
			http.Redirect(rw, r, elsewhere.URL+"/list", http.StatusFound)
		default:
			io.WriteString(rw, list)
		}
	}))
	defer src.Close()

	// The same host and scheme: followed.
	lw := openListWitness(t, t.TempDir(), nil, LogListOptions{Source: src.URL + "/moved"})
	if err := lw.ll.Refresh(context.Background()); err != nil || len(lw.ll.Learned()) != 1 {
		t.Fatalf("a redirect on the list's own host: %v, learned %d", err, len(lw.ll.Learned()))
	}

	// Another port of loopback: refused.
	lw = openListWitness(t, t.TempDir(), nil, LogListOptions{Source: src.URL + "/away"})
	if err := lw.ll.Refresh(context.Background()); err == nil {
		t.Fatal("a redirect to another host was followed and the list applied")
	}
	if n := len(lw.ll.Learned()); n != 0 || elsewhereHits != 0 {
		t.Errorf("learned %d logs; the other host was asked %d times", n, elsewhereHits)
	}
	if got := lw.logs.lines("level=WARN", "unchanged", "outcome=unreachable", strings.TrimPrefix(elsewhere.URL, "http://")); len(got) != 1 {
		t.Errorf("want one WARN naming %s:\n%s", elsewhere.URL, strings.Join(lw.logs.lines(""), "\n"))
	}
}
