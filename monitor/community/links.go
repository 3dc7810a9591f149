package community

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"strings"
)

// Link purposes. A link made for one purpose is refused for another: the
// unsubscribe link in every mail (RFC 8058's one-click target) cannot
// change rules, and the feed link, which feed readers may share, can
// neither.
const (
	purposeManage      = "manage"
	purposeUnsubscribe = "unsubscribe"
	purposeFeed        = "feed"
)

// linkKeys are derived from community.key, one per use.
type linkKeys struct {
	mac     []byte       // tags a link token
	enc     cipher.Block // hides the subscriber ID inside it
	webhook []byte       // derives each subscriber's webhook secret
	msgID   []byte       // derives Message-IDs that do not reveal IDs
}

func deriveKeys(key []byte) linkKeys {
	sub := func(label string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte("cpan-tlog community " + label))
		return m.Sum(nil)
	}
	blk, err := aes.NewCipher(sub("link encryption")[:16])
	if err != nil {
		panic(err) // a 16-byte key is always accepted
	}
	return linkKeys{mac: sub("link mac"), enc: blk, webhook: sub("webhook secret"), msgID: sub("message id")}
}

// linkToken makes the token of a link: a synthetic IV (the HMAC of the
// purpose and the ID, 16 bytes) and the ID encrypted under it (AES-CTR).
// Deterministic, so a link in an old mail keeps working without anything
// stored, yet the token shows neither the ID nor the address, and only the
// holder of community.key can make one.
func (k linkKeys) linkToken(purpose, id string) string {
	raw, err := hex.DecodeString(id)
	if err != nil || len(raw) != 16 {
		return ""
	}
	tag := k.tag(purpose, raw)
	ct := make([]byte, 16)
	cipher.NewCTR(k.enc, tag).XORKeyStream(ct, raw)
	return base64.RawURLEncoding.EncodeToString(append(tag, ct...))
}

func (k linkKeys) tag(purpose string, raw []byte) []byte {
	m := hmac.New(sha256.New, k.mac)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write(raw)
	return m.Sum(nil)[:16]
}

// openLink returns the subscriber ID a token was made for with purpose,
// or "" when it was not made by this key for this purpose.
func (k linkKeys) openLink(purpose, token string) string {
	if len(token) != 43 {
		return ""
	}
	// Strict: the last character's unused bits must be zero, so each
	// link has one spelling (a lenient decoder accepts four).
	b, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(b) != 32 {
		return ""
	}
	tag, ct := b[:16], b[16:]
	raw := make([]byte, 16)
	cipher.NewCTR(k.enc, tag).XORKeyStream(raw, ct)
	if subtle.ConstantTimeCompare(tag, k.tag(purpose, raw)) != 1 {
		return ""
	}
	return hex.EncodeToString(raw)
}

// newConfirmToken is 256 random bits; only its sha256 is stored.
func newConfirmToken() (token string, hash []byte) {
	b := make([]byte, 32)
	rand.Read(b)
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, hashToken(token)
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func (c *Community) pageURL(page, token string) string {
	return strings.TrimSuffix(c.cfg.BaseURL, "/") + "/" + page + "?t=" + url.QueryEscape(token)
}

// ManageURL is the subscriber's manage page; it keeps working while the
// subscription exists.
func (c *Community) ManageURL(s *Subscriber) string {
	return c.pageURL("manage", c.keys.linkToken(purposeManage, s.ID))
}

// UnsubscribeURL is the subscriber's unsubscribe page and the RFC 8058
// one-click target of List-Unsubscribe.
func (c *Community) UnsubscribeURL(s *Subscriber) string {
	return c.pageURL("unsubscribe", c.keys.linkToken(purposeUnsubscribe, s.ID))
}

// FeedURL is the subscriber's Atom feed.
func (c *Community) FeedURL(s *Subscriber) string {
	return c.pageURL("feed", c.keys.linkToken(purposeFeed, s.ID))
}

func (c *Community) confirmURL(token string) string { return c.pageURL("confirm", token) }

// WebhookSecret is the key a subscriber's webhook bodies are signed with
// (X-Cpantlog-Signature: sha256=HMAC(body)); the manage page shows it.
func (c *Community) WebhookSecret(s *Subscriber) string {
	m := hmac.New(sha256.New, c.keys.webhook)
	m.Write([]byte(s.ID))
	return hex.EncodeToString(m.Sum(nil))
}

// messageID is a stable Message-ID for a message made of these parts (a
// subscriber and its queue keys): a resend after a crash carries the same
// one, and it reveals neither.
func (c *Community) messageID(parts ...[]byte) string {
	m := hmac.New(sha256.New, c.keys.msgID)
	for _, p := range parts {
		m.Write(p)
		m.Write([]byte{0})
	}
	host := "cpan-tlog.invalid"
	if u, err := url.Parse(c.cfg.BaseURL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	return "<" + hex.EncodeToString(m.Sum(nil)[:20]) + "@" + host + ">"
}
