package notify

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"mime/quotedprintable"
	"net/mail"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Mail is one plain-text message to one address.
type Mail struct {
	To      string // a bare address: no display name, no angle brackets
	Subject string
	Text    string // the body, UTF-8; line ends may be LF or CRLF
	// ListUnsubscribe is the URL of the one-click unsubscribe (RFC 8058):
	// the mail then carries List-Unsubscribe: <URL> and
	// List-Unsubscribe-Post: List-Unsubscribe=One-Click.
	ListUnsubscribe string
	// MessageID, if set, is the Message-ID (with or without its angle
	// brackets): stable, so that a mail sent again after a crash is
	// recognised as the same. Empty: a random one.
	MessageID string
}

// Bounds on what a header may hold: a line stays within RFC 5322's 998
// characters once folded, and nothing a caller builds should come close.
const (
	maxSubject   = 2000
	maxURL       = 900
	maxMessageID = 250
	maxAddress   = 254 // RFC 5321's path limit, less the brackets
	// maxEncodedWord keeps "Subject: " and one encoded-word within 78.
	maxEncodedWord = 78 - len("Subject: ")
)

var errInjection = errors.New("contains CR or LF (header injection)")

// parseTo checks that s is one bare ASCII address.
func parseTo(s string) (string, error) {
	if strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("notify: To %q %w", s, errInjection)
	}
	if len(s) > maxAddress {
		return "", fmt.Errorf("notify: To is %d bytes, over %d", len(s), maxAddress)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", fmt.Errorf("notify: To %q: %v", s, err)
	}
	// One bare address: "Name <a@b>", "<a@b>" and "a@b (comment)" all
	// parse, and all are refused, so what is shown is what is used.
	if a.Name != "" || a.Address != s {
		return "", fmt.Errorf("notify: To %q is not a bare address", s)
	}
	if err := checkAddrChars(s); err != nil {
		return "", fmt.Errorf("notify: To %q: %v", s, err)
	}
	return a.Address, nil
}

// parseFrom accepts "addr" or "Name <addr>".
func parseFrom(s string) (*mail.Address, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("notify: From %q %w", s, errInjection)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("notify: From %q: %v", s, err)
	}
	if len(a.Address) > maxAddress {
		return nil, fmt.Errorf("notify: From address is %d bytes, over %d", len(a.Address), maxAddress)
	}
	if err := checkAddrChars(a.Address); err != nil {
		return nil, fmt.Errorf("notify: From %q: %v", s, err)
	}
	return a, nil
}

// checkAddrChars keeps addresses to printable ASCII without spaces: the
// envelope then needs no SMTPUTF8, and no quoted local part can carry a
// space, bracket or control character into MAIL FROM or RCPT TO.
func checkAddrChars(s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '"' || c == '\\' {
			return fmt.Errorf("byte %q not allowed in an address", c)
		}
	}
	return nil
}

func checkUnsubscribeURL(s string) error {
	if strings.ContainsAny(s, "\r\n") {
		return fmt.Errorf("notify: ListUnsubscribe %q %w", s, errInjection)
	}
	if len(s) > maxURL {
		return fmt.Errorf("notify: ListUnsubscribe is %d bytes, over %d", len(s), maxURL)
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("notify: ListUnsubscribe: %v", err)
	}
	// RFC 8058 wants an HTTPS URI; http is let through for tests and
	// loopback deployments behind a TLS proxy that rewrites nothing.
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("notify: ListUnsubscribe %q is not an absolute http(s) URL", s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' {
			return fmt.Errorf("notify: ListUnsubscribe %q: byte %q not allowed (percent-encode it)", s, c)
		}
	}
	return nil
}

func messageID(given, fromAddr string) (string, error) {
	if given == "" {
		b := make([]byte, 16)
		rand.Read(b)
		domain := fromAddr[strings.LastIndexByte(fromAddr, '@')+1:]
		return "<" + hex.EncodeToString(b) + "@" + domain + ">", nil
	}
	if strings.ContainsAny(given, "\r\n") {
		return "", fmt.Errorf("notify: MessageID %q %w", given, errInjection)
	}
	id := strings.TrimSuffix(strings.TrimPrefix(given, "<"), ">")
	if len(id) > maxMessageID {
		return "", fmt.Errorf("notify: MessageID is %d bytes, over %d", len(id), maxMessageID)
	}
	left, right, ok := strings.Cut(id, "@")
	if !ok || left == "" || right == "" || strings.Contains(right, "@") {
		return "", fmt.Errorf("notify: MessageID %q is not left@right", given)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`<>()[]\",;:`, c) >= 0 {
			return "", fmt.Errorf("notify: MessageID %q: byte %q not allowed", given, c)
		}
	}
	return "<" + id + ">", nil
}

// encodeSubject returns the Subject header's value: as is when it is
// printable ASCII, else RFC 2047 encoded-words; then folded so that no
// line passes 78 characters where a space allows it (and 998 ever).
func encodeSubject(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c >= 0x7f {
			plain = false
			break
		}
	}
	if plain {
		// A word too long for one line could only be folded inside
		// itself; encoded-words can be split anywhere.
		for _, w := range strings.Fields(s) {
			if len(w) > 900 {
				plain = false
				break
			}
		}
		// Leading/trailing or repeated spaces would not survive unfolding
		// exactly; encoding keeps them.
		if strings.Contains(s, "  ") || strings.HasPrefix(s, " ") || strings.HasSuffix(s, " ") || strings.Contains(s, "\t") {
			plain = false
		}
		// Text that looks like an encoded-word would be decoded by readers.
		if strings.Contains(s, "=?") {
			plain = false
		}
	}
	if !plain {
		s = encodeWords(s)
	}
	return fold(s, len("Subject: "))
}

// encodeWords Q-encodes s (RFC 2047) whole, in encoded-words short
// enough that "Subject: " and one word fit in 78 characters. (mime's
// QEncoding makes words of up to 75, and leaves text it finds safe as it
// is.)
func encodeWords(s string) string {
	var words []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			words = append(words, "=?utf-8?q?"+cur.String()+"?=")
			cur.Reset()
		}
	}
	for _, r := range s {
		var enc string
		switch {
		case r == ' ':
			enc = "_"
		case r < 0x80 && r > ' ' && r != '=' && r != '?' && r != '_' && r != 0x7f:
			enc = string(r)
		default:
			var buf [utf8.UTFMax]byte
			n := utf8.EncodeRune(buf[:], r)
			for _, b := range buf[:n] {
				enc += fmt.Sprintf("=%02X", b)
			}
		}
		if cur.Len()+len(enc) > maxEncodedWord-len("=?utf-8?q??=") {
			flush()
		}
		cur.WriteString(enc)
	}
	flush()
	return strings.Join(words, " ")
}

// fold breaks s at spaces so lines stay under 78 characters where it can;
// start is the length of what precedes s on its first line.
func fold(s string, start int) string {
	words := strings.Split(s, " ")
	var b strings.Builder
	col := start
	for i, w := range words {
		if i > 0 {
			// Never before an empty word: that could leave a line of
			// whitespace only, which RFC 5322 forbids.
			if w != "" && col+1+len(w) > 78 {
				b.WriteString("\r\n")
				col = 0
			}
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += len(w)
	}
	return b.String()
}

// normalizeBody makes s valid UTF-8 with LF line ends.
func normalizeBody(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

// build returns the message (header and quoted-printable body, CRLF line
// ends, not yet dot-stuffed) and its envelope recipient. Quoted-printable
// keeps every line within 76 characters and the body 7-bit, whatever the
// text holds, so no relay has to convert it.
func build(from *mail.Address, m Mail, now time.Time) (msg []byte, rcpt string, err error) {
	rcpt, err = parseTo(m.To)
	if err != nil {
		return nil, "", err
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return nil, "", fmt.Errorf("notify: Subject %q %w", m.Subject, errInjection)
	}
	if len(m.Subject) > maxSubject {
		return nil, "", fmt.Errorf("notify: Subject is %d bytes, over %d", len(m.Subject), maxSubject)
	}
	if m.ListUnsubscribe != "" {
		if err := checkUnsubscribeURL(m.ListUnsubscribe); err != nil {
			return nil, "", err
		}
	}
	id, err := messageID(m.MessageID, from.Address)
	if err != nil {
		return nil, "", err
	}

	var b bytes.Buffer
	h := func(name, value string) { b.WriteString(name + ": " + value + "\r\n") }
	h("From", fold(from.String(), len("From: ")))
	h("To", rcpt)
	h("Subject", encodeSubject(m.Subject))
	h("Date", now.Format(time.RFC1123Z))
	h("Message-ID", id)
	h("Auto-Submitted", "auto-generated")
	if m.ListUnsubscribe != "" {
		h("List-Unsubscribe", "<"+m.ListUnsubscribe+">")
		h("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
	}
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	// Text mode: the writer turns each LF into CRLF and encodes the rest.
	if _, err := qp.Write([]byte(normalizeBody(m.Text))); err != nil {
		return nil, "", err
	}
	if err := qp.Close(); err != nil {
		return nil, "", err
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return b.Bytes(), rcpt, nil
}
