package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const hookBody = `{"finding":"unexpected upload","dist":"Try-Tiny"}`

// TestWebhookSignatureVerifies: the receiver sees the JSON body, its
// Content-Type, the Idempotency-Key, and a signature it can verify with
// the shared secret (and that fails with another).
func TestWebhookSignatureVerifies(t *testing.T) {
	secret := []byte("s3cret-of-the-subscriber")
	type seen struct {
		body                 []byte
		ctype, key, sig, mth string
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{b, r.Header.Get("Content-Type"), r.Header.Get("Idempotency-Key"), r.Header.Get(SignatureHeader), r.Method}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	w := &Webhook{AllowPrivate: true}
	if err := w.Post(context.Background(), srv.URL+"/hook?x=1", []byte(hookBody), "finding-42", secret); err != nil {
		t.Fatal(err)
	}
	s := <-got
	if s.mth != "POST" || string(s.body) != hookBody || s.ctype != "application/json" || s.key != "finding-42" {
		t.Errorf("received %s %q, Content-Type %q, Idempotency-Key %q", s.mth, s.body, s.ctype, s.key)
	}
	hexsig, ok := strings.CutPrefix(s.sig, "sha256=")
	if !ok {
		t.Fatalf("signature %q lacks sha256=", s.sig)
	}
	sig, _ := hex.DecodeString(hexsig)
	verify := func(key []byte) bool {
		m := hmac.New(sha256.New, key)
		m.Write(s.body)
		return hmac.Equal(m.Sum(nil), sig)
	}
	if !verify(secret) {
		t.Errorf("signature %q does not verify", s.sig)
	}
	if verify([]byte("another secret")) {
		t.Error("signature verifies under another secret")
	}

	// No secret, no signature header.
	if err := w.Post(context.Background(), srv.URL, []byte(hookBody), "finding-43", nil); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s.sig != "" {
		t.Errorf("signature %q without a secret", s.sig)
	}
}

// TestWebhookRefusesLoopback: by default neither 127.0.0.1 nor a name
// resolving to it (localhost) is dialled; the server sees nothing. With
// AllowPrivate it is.
func TestWebhookRefusesLoopback(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	w := &Webhook{}
	for _, u := range []string{srv.URL, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1), strings.Replace(srv.URL, "127.0.0.1", "[::ffff:127.0.0.1]", 1)} {
		err := w.Post(context.Background(), u, []byte(hookBody), "id", nil)
		if !errors.Is(err, ErrForbiddenAddress) || !IsPermanent(err) {
			t.Errorf("Post %s: %v, want a permanent ErrForbiddenAddress", u, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("server hit %d times", n)
	}
	if err := (&Webhook{AllowPrivate: true}).Post(context.Background(), srv.URL, []byte(hookBody), "id", nil); err != nil {
		t.Errorf("AllowPrivate: %v", err)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("server hit %d times with AllowPrivate, want 1", n)
	}
}

// TestWebhookTLS: an https URL with the Client's RootCAs.
func TestWebhookTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	if err := (&Webhook{Client: srv.Client(), AllowPrivate: true}).Post(context.Background(), srv.URL, []byte(hookBody), "id", nil); err != nil {
		t.Fatal(err)
	}
	// Without the CA: the certificate is not trusted.
	if err := (&Webhook{AllowPrivate: true}).Post(context.Background(), srv.URL, []byte(hookBody), "id", nil); err == nil || IsPermanent(err) {
		t.Errorf("untrusted certificate: %v, want a transient error", err)
	}
}

// TestWebhookNoRedirect: a 302 is not followed (the target sees nothing)
// and is permanent.
func TestWebhookNoRedirect(t *testing.T) {
	var hits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer target.Close()
	srv := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusFound))
	defer srv.Close()
	err := (&Webhook{AllowPrivate: true}).Post(context.Background(), srv.URL, []byte(hookBody), "id", nil)
	if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), "302") {
		t.Errorf("redirect: %v", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("redirect followed: target hit %d times", n)
	}
}

// TestWebhookStatus: which answers are permanent.
func TestWebhookStatus(t *testing.T) {
	for _, tc := range []struct {
		code     int
		ok, perm bool
	}{
		{200, true, false}, {202, true, false}, {204, true, false},
		{500, false, false}, {503, false, false}, {429, false, false}, {408, false, false},
		{404, false, true}, {400, false, true}, {401, false, true}, {410, false, true},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(tc.code) }))
		err := (&Webhook{AllowPrivate: true}).Post(context.Background(), srv.URL, []byte(hookBody), "id", nil)
		srv.Close()
		if (err == nil) != tc.ok || IsPermanent(err) != tc.perm {
			t.Errorf("%d: %v (permanent %v), want ok %v permanent %v", tc.code, err, IsPermanent(err), tc.ok, tc.perm)
		}
	}
}

// TestWebhookBoundedAndTimely: an endless answer is read only so far,
// and a server that never answers is given up on after the timeout.
func TestWebhookBoundedAndTimely(t *testing.T) {
	endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 32<<10)
		for {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}))
	defer endless.Close()
	start := time.Now()
	if err := (&Webhook{AllowPrivate: true}).Post(context.Background(), endless.URL, []byte(hookBody), "id", nil); err != nil {
		t.Errorf("endless 200: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("endless answer took %v", d)
	}

	release := make(chan struct{})
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer silent.Close()
	defer close(release)
	start = time.Now()
	err := (&Webhook{Client: &http.Client{Timeout: 300 * time.Millisecond}, AllowPrivate: true}).Post(context.Background(), silent.URL, []byte(hookBody), "id", nil)
	if err == nil || IsPermanent(err) || time.Since(start) > 5*time.Second {
		t.Errorf("silent server: %v after %v, want a transient error within the timeout", err, time.Since(start))
	}
}

// TestWebhookBadInput: refused before any request.
func TestWebhookBadInput(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	w := &Webhook{AllowPrivate: true}
	for _, tc := range []struct{ url, body, id string }{
		{"ftp://example.org/hook", hookBody, "id"},
		{"file:///etc/passwd", hookBody, "id"},
		{"gopher://127.0.0.1:70/", hookBody, "id"},
		{"http://", hookBody, "id"},
		{"/relative/hook", hookBody, "id"},
		{"http://user:pw@" + strings.TrimPrefix(srv.URL, "http://"), hookBody, "id"},
		{srv.URL + "/" + strings.Repeat("a", maxWebhookURL), hookBody, "id"},
		{srv.URL, "not json", "id"},
		{srv.URL, hookBody, ""},
		{srv.URL, hookBody, "id\r\nX-Injected: 1"},
	} {
		if err := w.Post(context.Background(), tc.url, []byte(tc.body), tc.id, nil); err == nil {
			t.Errorf("Post(%.60q, %q, %q) succeeded", tc.url, tc.body, tc.id)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("server hit %d times", n)
	}
	// The same Webhook still works.
	if err := w.Post(context.Background(), srv.URL, []byte(hookBody), "id", nil); err != nil || hits.Load() != 1 {
		t.Errorf("valid post after bad ones: %v, %d hits", err, hits.Load())
	}
}

func TestPublicAddr(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		public bool
	}{
		{"93.184.215.14", true}, {"8.8.8.8", true}, {"2606:4700::1111", true},
		{"127.0.0.1", false}, {"127.5.5.5", false}, {"::1", false},
		{"10.1.2.3", false}, {"172.16.0.1", false}, {"192.168.1.1", false},
		{"169.254.169.254", false}, {"fe80::1", false}, {"fc00::1", false}, {"fd12::1", false},
		{"0.0.0.0", false}, {"::", false}, {"224.0.0.1", false}, {"ff02::1", false},
		{"255.255.255.255", false}, {"100.64.0.1", false}, {"::ffff:127.0.0.1", false},
		{"::ffff:10.0.0.1", false}, {"::ffff:100.64.0.1", false}, {"::ffff:8.8.8.8", true}, {"64:ff9b::a00:1", false}, {"2002:7f00:1::", false},
	} {
		if got := PublicAddr(netip.MustParseAddr(tc.addr)); got != tc.public {
			t.Errorf("PublicAddr(%s) = %v, want %v", tc.addr, got, tc.public)
		}
	}
}

// TestWebhookIgnoresProxy: a Client whose transport names a proxy does
// not send through it (the dial check would see the proxy's address, not
// the destination's).
func TestWebhookIgnoresProxy(t *testing.T) {
	var hits atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer proxy.Close()
	pu, _ := url.Parse(proxy.URL)
	tr := &http.Transport{Proxy: http.ProxyURL(pu)}
	w := &Webhook{Client: &http.Client{Transport: tr, Timeout: 5 * time.Second}, AllowPrivate: true}
	err := w.Post(context.Background(), "http://cpan-tlog-webhook.invalid/hook", []byte(hookBody), "id", nil)
	if err == nil || hits.Load() != 0 {
		t.Errorf("through a proxy: %v, proxy hit %d times", err, hits.Load())
	}
}
