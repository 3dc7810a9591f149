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

// TestPhoneViewport: a width under Chromium's smallest window is
// emulated; the page sees it and the screenshot has it.
func TestPhoneViewport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<!doctype html><meta name="viewport" content="width=device-width, initial-scale=1"><title>p</title>` +
			`<div style="height:3000px">tall</div>`))
	}))
	defer srv.Close()
	b := Start(t, Options{Width: 390, Height: 844})
	b.Navigate(srv.URL)
	var inner int
	b.Execute(&inner, "return window.innerWidth")
	if inner != 390 {
		t.Errorf("innerWidth %d, want 390", inner)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(b.FullScreenshot()))
	if err != nil || cfg.Width != 390 || cfg.Height < 3000 {
		t.Errorf("full screenshot: %v, %dx%d (want 390 wide, the page's height)", err, cfg.Width, cfg.Height)
	}
	b.Execute(&inner, "return window.innerHeight")
	if inner != 844 {
		t.Errorf("after the full screenshot the viewport is %d high, want 844", inner)
	}
}

// TestConsole: a Content-Security-Policy violation reaches Console.
func TestConsole(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<!doctype html><title>c</title><style>body{color:red}</style><p>x</p>`))
	}))
	defer srv.Close()
	b := Start(t, Options{})
	b.Navigate(srv.URL)
	found := false
	for _, e := range b.Console() {
		found = found || strings.Contains(e.Message, "Content Security Policy")
	}
	if !found {
		t.Error("the refused inline style is not in the console")
	}
	if n := len(b.Console()); n != 0 {
		t.Errorf("a second Console call repeats %d messages", n)
	}
}
