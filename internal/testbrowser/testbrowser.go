// Package testbrowser drives a real headless Chromium from Go tests
// through ChromeDriver's W3C WebDriver HTTP API: plain JSON over HTTP on
// loopback, no dependency beyond the standard library. Debian's chromium
// and chromium-driver packages provide the two programs (.ci/run installs
// them).
//
// Start skips the test when chromedriver or chromium is missing, unless
// CI is set: then their absence fails it, so CI never passes a browser
// test it did not run. Every call that fails fails the test (t.Fatal), so
// a test reads as the steps a person would take.
package testbrowser

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// elementKey is the W3C name of an element reference in JSON.
const elementKey = "element-6066-11e4-a52e-4f735466cecf"

// Browser is one WebDriver session in its own chromedriver process and
// its own Chromium profile. It is ended when the test ends.
type Browser struct {
	t       testing.TB
	base    string // http://127.0.0.1:PORT/session/ID
	client  *http.Client
	Timeout time.Duration // for WaitFor; default 10s
	// viewport is the emulated viewport (width, height), zero when the
	// window's own is used.
	viewport [2]int
}

// Element is a reference to one element of the current page.
type Element struct {
	b  *Browser
	id string
	// CSS is the selector it was found by, for failure messages.
	CSS string
}

// Options of Start. The zero value is a 1280×900 window. A width under
// 500 (Chromium's smallest window) is emulated, as a phone: see
// EmulateViewport.
type Options struct {
	Width, Height int
}

// Binaries: Debian's paths, overridable for other systems.
var (
	ChromeDriver = "/usr/bin/chromedriver"
	Chromium     = "/usr/bin/chromium"
)

// Start runs chromedriver on a loopback port and opens a headless
// Chromium session in it.
func Start(t testing.TB, opts Options) *Browser {
	t.Helper()
	for _, bin := range []string{ChromeDriver, Chromium} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s missing in CI: .ci/run installs Debian's chromium and chromium-driver", bin)
			}
			t.Skipf("%s not installed (Debian: apt-get install chromium chromium-driver)", bin)
		}
	}
	if opts.Width == 0 {
		opts.Width, opts.Height = 1280, 900
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(t.TempDir(), "chromedriver.log")
	// --allowed-ips empty (the default) accepts loopback only.
	cmd := exec.Command(ChromeDriver, "--port="+strconv.Itoa(port), "--log-path="+logFile)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromedriver: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	// Only the process this test started is ended.
	stop := func() {
		cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
	}
	root := "http://127.0.0.1:" + strconv.Itoa(port)
	b := &Browser{t: t, client: &http.Client{Timeout: 60 * time.Second}, Timeout: 10 * time.Second}
	ready := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var st struct {
			Ready bool `json:"ready"`
		}
		if err := b.do(http.MethodGet, root+"/status", nil, &st); err == nil && st.Ready {
			ready = true
			break
		}
		select {
		case <-done:
			stop()
			log, _ := os.ReadFile(logFile)
			t.Fatalf("chromedriver exited at start:\n%.2000s", log)
		default:
		}
	}
	if !ready {
		stop()
		t.Fatal("chromedriver did not become ready within 20s")
	}
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		// Console messages (CSP violations among them) are kept for Console.
		"goog:loggingPrefs": map[string]string{"browser": "ALL"},
		"goog:chromeOptions": map[string]any{
			"binary": Chromium,
			"args": []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
				"--no-first-run", "--disable-background-networking", "--disable-component-update",
				"--disable-sync", "--disable-quic", "--hide-scrollbars", "--user-data-dir=" + t.TempDir(),
				fmt.Sprintf("--window-size=%d,%d", opts.Width, opts.Height)},
		},
	}}}
	var sess struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.do(http.MethodPost, root+"/session", caps, &sess); err != nil || sess.SessionID == "" {
		stop()
		log, _ := os.ReadFile(logFile)
		t.Fatalf("new WebDriver session: %v\n%.3000s", err, log)
	}
	b.base = root + "/session/" + sess.SessionID
	t.Cleanup(func() {
		b.do(http.MethodDelete, b.base, nil, nil)
		stop()
	})
	if opts.Width < 500 {
		b.EmulateViewport(opts.Width, opts.Height)
	}
	return b
}

// EmulateViewport makes the page see a mobile viewport of width × height
// CSS pixels (Chrome DevTools' device emulation, through chromedriver's
// goog/cdp/execute): a window cannot be made narrower than 500 px.
func (b *Browser) EmulateViewport(width, height int) {
	b.t.Helper()
	b.must(b.cdp("Emulation.setDeviceMetricsOverride", map[string]any{
		"width": width, "height": height, "deviceScaleFactor": 1, "mobile": true}), "emulate a viewport")
	b.viewport = [2]int{width, height}
}

// cdp sends one Chrome DevTools Protocol command (a chromedriver
// extension of WebDriver).
func (b *Browser) cdp(cmd string, params map[string]any) error {
	return b.do(http.MethodPost, b.base+"/goog/cdp/execute", map[string]any{"cmd": cmd, "params": params}, nil)
}

// freePort asks the kernel for a free loopback port. chromedriver binds
// it a moment later; another process taking it in between makes Start
// fail, not pass.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// wdError is WebDriver's error answer.
type wdError struct {
	Status  int
	Code    string `json:"error"`
	Message string `json:"message"`
}

func (e *wdError) Error() string {
	msg, _, _ := strings.Cut(e.Message, "\n")
	return fmt.Sprintf("webdriver %d %s: %s", e.Status, e.Code, msg)
}

// do sends one WebDriver command and decodes the answer's "value" into
// out (when not nil).
func (b *Browser) do(method, url string, in, out any) error {
	var body io.Reader
	if in != nil {
		j, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(j)
	} else if method == http.MethodPost {
		body = strings.NewReader("{}")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("webdriver %s %s: %d, not JSON: %.200s", method, url, resp.StatusCode, raw)
	}
	if resp.StatusCode != http.StatusOK {
		e := &wdError{Status: resp.StatusCode}
		json.Unmarshal(env.Value, e)
		return e
	}
	if out != nil {
		return json.Unmarshal(env.Value, out)
	}
	return nil
}

func (b *Browser) must(err error, what string) {
	b.t.Helper()
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// Navigate loads url and waits for the page to load.
func (b *Browser) Navigate(url string) {
	b.t.Helper()
	b.must(b.do(http.MethodPost, b.base+"/url", map[string]string{"url": url}, nil), "navigate to "+url)
}

// URL is the current page's address.
func (b *Browser) URL() string {
	b.t.Helper()
	var u string
	b.must(b.do(http.MethodGet, b.base+"/url", nil, &u), "current URL")
	return u
}

// Title is the current page's title.
func (b *Browser) Title() string {
	b.t.Helper()
	var s string
	b.must(b.do(http.MethodGet, b.base+"/title", nil, &s), "title")
	return s
}

// Source is the current page's DOM, serialized.
func (b *Browser) Source() string {
	b.t.Helper()
	var s string
	b.must(b.do(http.MethodGet, b.base+"/source", nil, &s), "page source")
	return s
}

// FindAll returns the elements matching a CSS selector (none is no error).
func (b *Browser) FindAll(css string) []*Element {
	b.t.Helper()
	var refs []map[string]string
	b.must(b.do(http.MethodPost, b.base+"/elements", map[string]string{"using": "css selector", "value": css}, &refs), "find "+css)
	els := make([]*Element, 0, len(refs))
	for _, r := range refs {
		els = append(els, &Element{b: b, id: r[elementKey], CSS: css})
	}
	return els
}

// Find returns the first element matching a CSS selector, failing the
// test when there is none.
func (b *Browser) Find(css string) *Element {
	b.t.Helper()
	var ref map[string]string
	if err := b.do(http.MethodPost, b.base+"/element", map[string]string{"using": "css selector", "value": css}, &ref); err != nil {
		b.t.Fatalf("find %q on %s: %v\n%.3000s", css, b.URL(), err, b.Source())
	}
	return &Element{b: b, id: ref[elementKey], CSS: css}
}

// WaitFor polls until an element matches css (a page a click led to has
// loaded), failing the test after b.Timeout.
func (b *Browser) WaitFor(css string) *Element {
	b.t.Helper()
	deadline := time.Now().Add(b.Timeout)
	for {
		if els := b.FindAll(css); len(els) > 0 {
			return els[0]
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("no %q on %s within %v:\n%.3000s", css, b.URL(), b.Timeout, b.Source())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Execute runs a script in the page (as a function body; arguments in
// `arguments`) and decodes its return value into out (when not nil).
func (b *Browser) Execute(out any, script string, args ...any) {
	b.t.Helper()
	if args == nil {
		args = []any{}
	}
	b.must(b.do(http.MethodPost, b.base+"/execute/sync", map[string]any{"script": script, "args": args}, out), "execute script")
}

// SetWindowSize resizes the window to width × height.
func (b *Browser) SetWindowSize(width, height int) {
	b.t.Helper()
	b.must(b.do(http.MethodPost, b.base+"/window/rect", map[string]int{"width": width, "height": height}, nil), "resize window")
}

// Screenshot returns a PNG of the viewport.
func (b *Browser) Screenshot() []byte {
	b.t.Helper()
	var s string
	b.must(b.do(http.MethodGet, b.base+"/screenshot", nil, &s), "screenshot")
	png, err := base64.StdEncoding.DecodeString(s)
	b.must(err, "screenshot is not base64")
	return png
}

// FullScreenshot returns a PNG of the whole page: the window (or the
// emulated viewport) is made as tall as the document for the shot, then
// restored.
func (b *Browser) FullScreenshot() []byte {
	b.t.Helper()
	if w, h := b.viewport[0], b.viewport[1]; w > 0 {
		var docH int
		b.Execute(&docH, "return Math.ceil(document.documentElement.scrollHeight)")
		if docH > h {
			b.EmulateViewport(w, min(docH, 8000))
			defer b.EmulateViewport(w, h)
		}
		return b.Screenshot()
	}
	var size struct{ W, H int }
	b.Execute(&size, "return {W: window.outerWidth, H: window.outerHeight}")
	var docH int
	b.Execute(&docH, "return Math.ceil(document.documentElement.scrollHeight)")
	if docH > size.H {
		// The window's frame is outerHeight - innerHeight.
		var frame int
		b.Execute(&frame, "return window.outerHeight - window.innerHeight")
		b.SetWindowSize(size.W, min(docH+frame, 8000))
		defer b.SetWindowSize(size.W, size.H)
	}
	return b.Screenshot()
}

// SaveScreenshot writes a full-page PNG named name (".png" added) to
// $CPANTLOG_ARTIFACTS when it is set, and returns the path ("" when not).
func (b *Browser) SaveScreenshot(name string) string {
	b.t.Helper()
	dir := os.Getenv("CPANTLOG_ARTIFACTS")
	if dir == "" {
		return ""
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, b.FullScreenshot(), 0o644); err != nil {
		b.t.Fatal(err)
	}
	return p
}

// Click clicks the element (a button submitting a form loads the next
// page; follow it with WaitFor).
func (e *Element) Click() {
	e.b.t.Helper()
	e.b.must(e.b.do(http.MethodPost, e.b.base+"/element/"+e.id+"/click", nil, nil), "click "+e.CSS)
}

// Clear empties an input or text area.
func (e *Element) Clear() {
	e.b.t.Helper()
	e.b.must(e.b.do(http.MethodPost, e.b.base+"/element/"+e.id+"/clear", nil, nil), "clear "+e.CSS)
}

// Type types text into the element, as keystrokes.
func (e *Element) Type(text string) {
	e.b.t.Helper()
	e.b.must(e.b.do(http.MethodPost, e.b.base+"/element/"+e.id+"/value", map[string]string{"text": text}, nil), "type into "+e.CSS)
}

// Text is the element's rendered text.
func (e *Element) Text() string {
	e.b.t.Helper()
	var s string
	e.b.must(e.b.do(http.MethodGet, e.b.base+"/element/"+e.id+"/text", nil, &s), "text of "+e.CSS)
	return s
}

// Property is a DOM property of the element (value, checked, href ...),
// as JSON decodes it (nil when absent).
func (e *Element) Property(name string) any {
	e.b.t.Helper()
	var v any
	e.b.must(e.b.do(http.MethodGet, e.b.base+"/element/"+e.id+"/property/"+name, nil, &v), "property "+name+" of "+e.CSS)
	return v
}

// Selected reports whether a checkbox, radio button or option is selected.
func (e *Element) Selected() bool {
	e.b.t.Helper()
	var v bool
	e.b.must(e.b.do(http.MethodGet, e.b.base+"/element/"+e.id+"/selected", nil, &v), "selected "+e.CSS)
	return v
}

// LogEntry is one console message of the page.
type LogEntry struct {
	Level   string `json:"level"`
	Message string `json:"message"`
}

// Console returns the console messages since the last call (a refused
// style sheet or script, a Content-Security-Policy violation, errors of
// the page's own scripts): chromedriver's log of type "browser".
func (b *Browser) Console() []LogEntry {
	b.t.Helper()
	var out []LogEntry
	b.must(b.do(http.MethodPost, b.base+"/se/log", map[string]string{"type": "browser"}, &out), "read the console")
	return out
}
