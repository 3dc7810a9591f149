package notify

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// Webhook URLs such as Slack's or Discord's carry their secret in the
// path: an error (logged by the monitor) names the host only.
func TestHostileWebhookErrorKeepsPathSecret(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	const secret = "T0000/B0000/XXXXSECRETXXXX"
	for name, wh := range map[string]*Webhook{"refused address": {}, "5xx answer": {AllowPrivate: true}} {
		err := wh.Post(context.Background(), srv.URL+"/services/"+secret+"?token=q", []byte(`{}`), "id1", nil)
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "token=q") {
			t.Errorf("%s: the error shows the URL's secret: %v", name, err)
		}
	}
}

// An invalid webhook URL's error does not quote it either.
func TestHostileWebhookURLErrorKeepsSecret(t *testing.T) {
	for _, u := range []string{"ftp://h/SECRET", "http://h/SECRET%zz", "http:///SECRET"} {
		if err := CheckWebhookURL(u); err == nil || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: %v", u, err)
		}
	}
}

// IPv6 forms that embed an IPv4 address (the deprecated IPv4-compatible
// ::a.b.c.d, SIIT's IPv4-translated ::ffff:0:a.b.c.d) reach that IPv4
// address on networks that translate them: never public.
func TestHostileEmbeddedIPv4IsNotPublic(t *testing.T) {
	for _, s := range []string{"::7f00:1", "::a9fe:a9fe", "::ffff:0:7f00:1", "::ffff:0:a9fe:a9fe", "::ffff:127.0.0.1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1"} {
		if PublicAddr(netip.MustParseAddr(s)) {
			t.Errorf("%s is taken for a public address", s)
		}
	}
	if !PublicAddr(netip.MustParseAddr("2a00:1450:4001:80b::200e")) {
		t.Error("a public IPv6 address is refused")
	}
}
