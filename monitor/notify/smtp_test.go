package notify

import (
	"context"
	"crypto/tls"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/internal/testsmtp"
)

func sender(s *testsmtp.Server) *SMTP {
	return &SMTP{
		Addr:      s.Addr,
		From:      "cpan-tlog monitor <monitor@tlog.example>",
		Username:  s.Username,
		Password:  s.Password,
		HeloName:  "monitor.tlog.example",
		TLSConfig: &tls.Config{RootCAs: s.RootCAs},
		Timeout:   20 * time.Second,
	}
}

// TestSMTPSendsThroughSTARTTLSAndAUTH: the message arrives with its
// envelope, every header the contract promises, and the body as given.
func TestSMTPSendsThroughSTARTTLSAndAUTH(t *testing.T) {
	srv := testsmtp.Start(t)
	text := "Hello ETHER,\n.a line starting with a dot\n..two dots\n.\nTry-Tiny-0.32 — uploaded by ETHER\n" +
		strings.Repeat("long ", 300) + "\ntrailing space \nlast line without newline"
	m := Mail{
		To:              "ether@cpan.example",
		Subject:         "[cpan-tlog] Try-Tiny 0.32 — uploaded by ETHER (é)",
		Text:            text,
		ListUnsubscribe: "https://tlog.example/unsubscribe?t=abc.DEF_123",
		MessageID:       "<n-42.7@tlog.example>",
	}
	before := time.Now().Truncate(time.Second)
	if err := sender(srv).Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := srv.WaitFor(t, 1, 10*time.Second)[0]
	if got.From != "monitor@tlog.example" || !slices.Equal(got.To, []string{"ether@cpan.example"}) {
		t.Errorf("envelope from %q to %q", got.From, got.To)
	}
	if !got.TLS || !got.Authenticated {
		t.Errorf("TLS %v, authenticated %v: want both", got.TLS, got.Authenticated)
	}
	h := got.Header
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(h.Get("Subject"))
	if err != nil || subject != m.Subject {
		t.Errorf("Subject %q (%v), decoded %q, want %q", h.Get("Subject"), err, subject, m.Subject)
	}
	if !strings.HasPrefix(h.Get("Subject"), "=?utf-8?") {
		t.Errorf("non-ASCII Subject not RFC 2047 encoded: %q", h.Get("Subject"))
	}
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Address != "monitor@tlog.example" || from[0].Name != "cpan-tlog monitor" {
		t.Errorf("From %q: %v %v", h.Get("From"), from, err)
	}
	for name, want := range map[string]string{
		"To":                        "ether@cpan.example",
		"Message-ID":                "<n-42.7@tlog.example>",
		"List-Unsubscribe":          "<https://tlog.example/unsubscribe?t=abc.DEF_123>",
		"List-Unsubscribe-Post":     "List-Unsubscribe=One-Click",
		"Auto-Submitted":            "auto-generated",
		"Content-Type":              "text/plain; charset=utf-8",
		"Content-Transfer-Encoding": "quoted-printable",
		"MIME-Version":              "1.0",
	} {
		if h.Get(name) != want {
			t.Errorf("%s: %q, want %q", name, h.Get(name), want)
		}
	}
	date, err := h.Date()
	if err != nil || date.Before(before) || date.After(time.Now().Add(time.Second)) {
		t.Errorf("Date %q (%v): not the time of sending", h.Get("Date"), err)
	}
	for _, line := range strings.Split(string(got.Raw), "\r\n") {
		if len(line) > 78 {
			t.Errorf("line of %d characters: %q", len(line), line)
		}
	}
	body, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(string(got.Body))))
	if err != nil {
		t.Fatal(err)
	}
	// On the wire every line ends in CRLF (and the body ends in one).
	if want := strings.ReplaceAll(text, "\n", "\r\n") + "\r\n"; string(body) != want {
		t.Errorf("body differs:\n got %q\nwant %q", body, want)
	}
	cmds := strings.Join(srv.Commands(), "\n")
	if i, j := strings.Index(cmds, "STARTTLS"), strings.Index(cmds, "AUTH PLAIN"); i < 0 || j < i {
		t.Errorf("want STARTTLS before AUTH PLAIN:\n%s", cmds)
	}
}

// TestSMTPRandomMessageID: without a MessageID each mail gets its own.
func TestSMTPRandomMessageID(t *testing.T) {
	srv := testsmtp.Start(t)
	s := sender(srv)
	for range 2 {
		if err := s.Send(context.Background(), Mail{To: "a@b.example", Subject: "x", Text: "y"}); err != nil {
			t.Fatal(err)
		}
	}
	msgs := srv.WaitFor(t, 2, 10*time.Second)
	a, b := msgs[0].Header.Get("Message-ID"), msgs[1].Header.Get("Message-ID")
	if a == b || !strings.HasSuffix(a, "@tlog.example>") || !strings.HasPrefix(a, "<") {
		t.Errorf("Message-IDs %q and %q", a, b)
	}
}

// TestSMTPNoAuthInClear: a server offering no STARTTLS (but AUTH in
// clear) gets no AUTH and no mail when a Username is set, nor when
// StartTLS is "require"; opportunistic without a Username sends in clear.
func TestSMTPNoAuthInClear(t *testing.T) {
	srv := testsmtp.Start(t, testsmtp.WithoutTLS())
	s := sender(srv)
	err := s.Send(context.Background(), Mail{To: "a@b.example", Subject: "x", Text: "y"})
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("Send with Username to a server without STARTTLS: %v, want a refusal", err)
	}
	if IsPermanent(err) {
		t.Errorf("refusal is permanent: %v", err)
	}
	s.Username, s.Password = "", ""
	s.StartTLS = "require"
	if err := s.Send(context.Background(), Mail{To: "a@b.example", Subject: "x", Text: "y"}); err == nil {
		t.Fatal(`StartTLS "require" sent to a server without STARTTLS`)
	}
	cmds := srv.Commands()
	for _, c := range cmds {
		if strings.HasPrefix(strings.ToUpper(c), "AUTH") || strings.HasPrefix(strings.ToUpper(c), "MAIL") {
			t.Errorf("the client sent %q to a server without STARTTLS", c)
		}
	}
	if !slices.ContainsFunc(cmds, func(c string) bool { return strings.HasPrefix(c, "EHLO") }) {
		t.Errorf("no EHLO recorded: the command log sees nothing (%q)", cmds)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages received", n)
	}
	s.StartTLS = ""
	if err := s.Send(context.Background(), Mail{To: "a@b.example", Subject: "x", Text: "y"}); err != nil {
		t.Fatalf("opportunistic, no Username: %v", err)
	}
	if m := srv.WaitFor(t, 1, 10*time.Second)[0]; m.TLS {
		t.Error("TLS on a server without it")
	}
}

// TestSMTPWrongPassword: an error, not a bounce, and no mail.
func TestSMTPWrongPassword(t *testing.T) {
	srv := testsmtp.Start(t)
	s := sender(srv)
	s.Password += "x"
	err := s.Send(context.Background(), Mail{To: "a@b.example", Subject: "x", Text: "y"})
	if err == nil || !strings.Contains(err.Error(), "AUTH") || !strings.Contains(err.Error(), "535") {
		t.Fatalf("wrong password: %v, want the server's 535 to AUTH", err)
	}
	if IsPermanent(err) {
		t.Errorf("a wrong password is not a bounce: %v", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages received", n)
	}
}

// TestSMTPUntrustedCertificate: without the server's CA, STARTTLS fails
// and nothing is sent.
func TestSMTPUntrustedCertificate(t *testing.T) {
	srv := testsmtp.Start(t)
	s := sender(srv)
	s.TLSConfig = nil
	err := s.Send(context.Background(), Mail{To: "a@b.example", Subject: "x", Text: "y"})
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("untrusted certificate: %v", err)
	}
	s.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	if err := s.Send(context.Background(), Mail{To: "a@b.example", Subject: "x", Text: "y"}); err == nil {
		t.Fatal("InsecureSkipVerify accepted")
	}
	for _, c := range srv.Commands() {
		if strings.HasPrefix(c, "AUTH") {
			t.Errorf("sent %q", c)
		}
	}
}

// TestSMTPBounces: 550 to RCPT is permanent, 451 is not.
func TestSMTPBounces(t *testing.T) {
	srv := testsmtp.Start(t, testsmtp.Reject550("gone@cpan.example"), testsmtp.Defer451("later@cpan.example"))
	s := sender(srv)
	err := s.Send(context.Background(), Mail{To: "gone@cpan.example", Subject: "x", Text: "y"})
	if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), "550") {
		t.Errorf("550: %v (permanent %v), want permanent", err, IsPermanent(err))
	}
	err = s.Send(context.Background(), Mail{To: "later@cpan.example", Subject: "x", Text: "y"})
	if err == nil || IsPermanent(err) || !strings.Contains(err.Error(), "451") {
		t.Errorf("451: %v (permanent %v), want transient", err, IsPermanent(err))
	}
	if err := s.Send(context.Background(), Mail{To: "here@cpan.example", Subject: "x", Text: "y"}); err != nil {
		t.Errorf("accepted recipient: %v", err)
	}
	if n := len(srv.WaitFor(t, 1, 10*time.Second)); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}

// TestSMTPRefusesInjectionBeforeConnecting: a listener that counts
// connections sees none for a Mail with CR/LF in a header value or an
// address that is not bare.
func TestSMTPRefusesInjectionBeforeConnecting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := make(chan struct{}, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- struct{}{}
			c.Close()
		}
	}()
	s := &SMTP{Addr: ln.Addr().String(), From: "m@tlog.example", Timeout: 2 * time.Second}
	for _, m := range []Mail{
		{To: "a@b.example", Subject: "hi\r\nBcc: victim@evil.example"},
		{To: "a@b.example", Subject: "hi\nBcc: victim@evil.example"},
		{To: "a@b.example", Subject: "hi\rBcc: victim@evil.example"},
		{To: "a@b.example\r\nBcc: victim@evil.example"},
		{To: "a@b.example\nRCPT TO:<victim@evil.example>"},
		{To: "Evil <a@b.example>"},
		{To: "<a@b.example>"},
		{To: "a@b.example, c@d.example"},
		{To: "a@b.example (comment)"},
		{To: `"a b"@b.example`},
		{To: "ä@b.example"},
		{To: ""},
		{To: "a@b.example", ListUnsubscribe: "https://x.example/u\r\nBcc: v@evil.example"},
		{To: "a@b.example", ListUnsubscribe: "https://x.example/u> , <mailto:v@evil.example"},
		{To: "a@b.example", ListUnsubscribe: "javascript:alert(1)"},
		{To: "a@b.example", ListUnsubscribe: "/relative"},
		{To: "a@b.example", MessageID: "<x@y>\r\nBcc: v@evil.example"},
		{To: "a@b.example", MessageID: "no-at-sign"},
		{To: "a@b.example", MessageID: "<a b@c>"},
		{To: "a@b.example", Subject: strings.Repeat("x", maxSubject+1)},
	} {
		if err := s.Send(context.Background(), m); err == nil {
			t.Errorf("Send(%+q) succeeded", m)
		}
	}
	for _, from := range []string{"m@tlog.example\r\nBcc: v@evil.example", "not an address"} {
		s := &SMTP{Addr: ln.Addr().String(), From: from}
		if err := s.Send(context.Background(), Mail{To: "a@b.example"}); err == nil {
			t.Errorf("From %q accepted", from)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(conns); n != 0 {
		t.Errorf("%d connections made for refused mail", n)
	}
	// The listener does count: a valid mail connects (and fails on the
	// closed connection).
	if err := s.Send(context.Background(), Mail{To: "a@b.example", Subject: "ok"}); err == nil {
		t.Error("send to a closing listener succeeded")
	}
	select {
	case <-conns:
	case <-time.After(2 * time.Second):
		t.Error("the counting listener saw no connection for a valid mail")
	}
}

// TestSMTPTimeout: a server that accepts and never answers is given up
// on after Timeout, and a cancelled context ends the wait at once.
func TestSMTPTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, silent
		}
	}()
	s := &SMTP{Addr: ln.Addr().String(), From: "m@tlog.example", Timeout: 300 * time.Millisecond}
	start := time.Now()
	err = s.Send(context.Background(), Mail{To: "a@b.example"})
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("silent server: %v after %v", err, time.Since(start))
	}
	s.Timeout = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start = time.Now()
	err = s.Send(ctx, Mail{To: "a@b.example"})
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("cancelled: %v after %v", err, time.Since(start))
	}
}

// TestSMTPAuthLogin: a server offering only AUTH LOGIN gets LOGIN (after
// STARTTLS), and the mail goes through; a wrong password still fails.
func TestSMTPAuthLogin(t *testing.T) {
	srv := testsmtp.Start(t, testsmtp.LoginOnly())
	s := sender(srv)
	if err := s.Send(context.Background(), Mail{To: "a@b.example", Subject: "x", Text: "y"}); err != nil {
		t.Fatal(err)
	}
	if m := srv.WaitFor(t, 1, 10*time.Second)[0]; !m.Authenticated || !m.TLS {
		t.Errorf("authenticated %v TLS %v", m.Authenticated, m.TLS)
	}
	cmds := strings.Join(srv.Commands(), "\n")
	if !strings.Contains(cmds, "AUTH LOGIN") || strings.Contains(cmds, "AUTH PLAIN") {
		t.Errorf("want AUTH LOGIN only:\n%s", cmds)
	}
	s.Password = "wrong"
	if err := s.Send(context.Background(), Mail{To: "a@b.example", Subject: "x", Text: "y"}); err == nil || IsPermanent(err) {
		t.Errorf("wrong password over LOGIN: %v", err)
	}
}
