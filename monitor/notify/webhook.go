package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Webhook POSTs JSON to subscribers' URLs.
//
// The URL is the subscriber's, so the request must not become a way into
// the monitor's own network: the destination is checked when the
// connection is made, against the address actually dialled (a name that
// resolves, or later re-resolves, to 127.0.0.1 is refused like the
// literal), and redirects are not followed. No proxy from the environment
// is used: through one, the address dialled would be the proxy's.
type Webhook struct {
	// Client, if set, supplies the transport's TLS settings and timeout
	// (its Transport must be an *http.Transport, or nil); its dialer,
	// proxy and redirect policy are replaced. Nil: a 10s timeout.
	Client *http.Client
	// AllowPrivate lets loopback, private, link-local and unspecified
	// destinations through (tests; an intranet deployment).
	AllowPrivate bool

	once   sync.Once
	client *http.Client
	err    error
}

const (
	webhookTimeout  = 10 * time.Second
	maxWebhookReply = 64 << 10
	maxWebhookURL   = 2048
	maxWebhookID    = 200
)

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body
// under the subscriber's secret.
const SignatureHeader = "X-Cpantlog-Signature"

// ErrForbiddenAddress is wrapped by the error for a destination the
// Webhook refuses to connect to.
var ErrForbiddenAddress = errors.New("destination address not allowed")

// Post sends body (JSON) to url with Idempotency-Key: id, and the
// signature header when secret is not empty. A 2xx answer is success;
// 408, 429 and 5xx are transient; any other answer, an invalid URL or a
// refused destination is permanent (IsPermanent).
func (w *Webhook) Post(ctx context.Context, rawURL string, body []byte, id string, secret []byte) error {
	u, err := checkWebhookURL(rawURL)
	if err != nil {
		return &PermanentError{Err: err}
	}
	if id == "" || len(id) > maxWebhookID || strings.IndexFunc(id, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
		return fmt.Errorf("notify: webhook Idempotency-Key %q: want 1 to %d printable ASCII characters", id, maxWebhookID)
	}
	if !json.Valid(body) {
		return errors.New("notify: webhook body is not JSON")
	}
	w.once.Do(w.init)
	if w.err != nil {
		return w.err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return &PermanentError{Err: fmt.Errorf("notify: webhook %s: %v", redact(u), err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cpan-tlog-monitor")
	req.Header.Set("Idempotency-Key", id)
	if len(secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(body, secret))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		// *url.Error quotes the whole URL, query and all.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		err = fmt.Errorf("notify: webhook %s: %w", redact(u), err)
		if errors.Is(err, ErrForbiddenAddress) {
			return &PermanentError{Err: err}
		}
		return err
	}
	// Read a bounded amount so the connection can be reused; the content
	// is of no interest.
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxWebhookReply))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c <= 299:
		return nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return fmt.Errorf("notify: webhook %s: %s", redact(u), resp.Status)
	default:
		// 3xx included: a redirect is not followed, and will not be.
		return &PermanentError{Err: fmt.Errorf("notify: webhook %s: %s", redact(u), resp.Status)}
	}
}

// Sign returns the X-Cpantlog-Signature value of body under secret:
// "sha256=" and the hex HMAC-SHA256. A receiver recomputes it and
// compares in constant time (hmac.Equal).
func Sign(body, secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// CheckWebhookURL tells whether rawURL is one Post would try: absolute
// http or https, a host, no user:password, within 2048 bytes. (Whether
// its host is allowed is only known when it is dialled.)
func CheckWebhookURL(rawURL string) error {
	_, err := checkWebhookURL(rawURL)
	return err
}

func checkWebhookURL(rawURL string) (*url.URL, error) {
	if len(rawURL) > maxWebhookURL {
		return nil, fmt.Errorf("notify: webhook URL is %d bytes, over %d", len(rawURL), maxWebhookURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // not the URL itself, which may hold a secret
		}
		return nil, fmt.Errorf("notify: webhook URL: %v", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("notify: webhook URL: scheme must be http or https")
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("notify: webhook URL has no host")
	}
	if u.User != nil {
		return nil, fmt.Errorf("notify: webhook URL has a user:password part; use the signing secret instead")
	}
	return u, nil
}

// redact shows the URL's scheme and host only: its path (Slack's and
// Discord's webhooks) or query may hold the subscriber's secret, and
// errors are logged.
func redact(u *url.URL) string {
	return u.Scheme + "://" + u.Host
}

func (w *Webhook) init() {
	base := &http.Transport{}
	timeout := webhookTimeout
	if w.Client != nil {
		if w.Client.Timeout > 0 {
			timeout = w.Client.Timeout
		}
		switch t := w.Client.Transport.(type) {
		case nil:
		case *http.Transport:
			base = t.Clone()
		default:
			w.err = fmt.Errorf("notify: Webhook.Client.Transport is a %T, not an *http.Transport: its dialing cannot be checked", t)
			return
		}
	}
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if !w.AllowPrivate {
		d.Control = refusePrivate
	}
	base.Proxy = nil
	base.DialContext = d.DialContext
	base.DialTLSContext = nil
	base.TLSHandshakeTimeout = timeout
	base.ResponseHeaderTimeout = timeout
	base.MaxResponseHeaderBytes = 64 << 10
	if base.TLSClientConfig != nil && base.TLSClientConfig.InsecureSkipVerify {
		w.err = errors.New("notify: Webhook.Client's TLS InsecureSkipVerify is refused")
		return
	}
	w.client = &http.Client{
		Transport: base,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// refusePrivate is the dialer's Control: it runs for each address about
// to be connected, after name resolution.
func refusePrivate(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrForbiddenAddress, address, err)
	}
	if !PublicAddr(ap.Addr()) {
		return fmt.Errorf("%w: %s is not a public address", ErrForbiddenAddress, ap.Addr())
	}
	return nil
}

// Ranges that are neither private in netip's sense nor reachable on the
// public Internet, or that embed an IPv4 address which could be.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: reaches an embedded IPv4
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2002::/16"),       // 6to4: reaches an embedded IPv4
	netip.MustParsePrefix("2001::/32"),       // Teredo
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("100::/64"),        // discard
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated): embeds an IPv4
	netip.MustParsePrefix("::ffff:0:0:0/96"), // SIIT IPv4-translated: embeds an IPv4
}

// PublicAddr reports whether a is an address a webhook may reach by
// default: not loopback, private (RFC 1918, fc00::/7), link-local,
// unspecified, multicast or another special-purpose range.
func PublicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() ||
		a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() || a.IsMulticast() ||
		a.IsUnspecified() || a.Zone() != "" {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}
