package testbrowser

import (
	"bytes"
	"html"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestFormRoundTrip drives a real Chromium through a form: type into a
// field, tick a box, press the button, and read what the server received
// on the page it answered with.
func TestFormRoundTrip(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if r.Method == http.MethodPost {
			r.ParseForm()
			got = append(got, r.PostForm.Encode())
			w.Write([]byte(`<!doctype html><title>done</title><p id="echo">` + html.EscapeString(r.PostForm.Get("name")) + `</p>`))
			return
		}
		w.Write([]byte(`<!doctype html><title>form</title><form method="post"><input id="name" name="name" value="old">` +
			`<input type="checkbox" id="box" name="box"><button id="go">Go</button></form>`))
	}))
	defer srv.Close()

	b := Start(t, Options{Width: 640, Height: 480})
	b.Navigate(srv.URL)
	if title := b.Title(); title != "form" {
		t.Fatalf("title %q", title)
	}
	if v := b.Find("#name").Property("value"); v != "old" {
		t.Errorf("value property %v, want old", v)
	}
	if b.Find("#box").Selected() {
		t.Error("an unticked box reads as selected")
	}
	b.Find("#name").Clear()
	b.Find("#name").Type("Ünïcode <b>")
	b.Find("#box").Click()
	b.Find("#go").Click()
	if txt := b.WaitFor("#echo").Text(); txt != "Ünïcode <b>" {
		t.Errorf("echoed %q", txt)
	}
	if len(got) != 1 || !strings.Contains(got[0], "box=on") {
		t.Errorf("server received %q", got)
	}
	if len(b.FindAll("#name")) != 0 {
		t.Error("FindAll found an element of the previous page")
	}
	if !strings.Contains(b.Source(), `id="echo"`) || !strings.HasSuffix(b.URL(), "/") {
		t.Errorf("source or URL of the answer page: %s %.300s", b.URL(), b.Source())
	}
	shot := b.FullScreenshot()
	cfg, err := png.DecodeConfig(bytes.NewReader(shot))
	if err != nil || cfg.Width != 640 {
		t.Errorf("screenshot: %v, width %d (want 640)", err, cfg.Width)
	}
}
