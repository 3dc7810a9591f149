package testsmtp

import (
	"crypto/tls"
	"errors"
	"io"
	"net/smtp"
	"net/textproto"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestServerReceives drives the server with net/smtp: STARTTLS, AUTH
// PLAIN, one message kept with its envelope; the 550 and 451 recipients
// answer as configured.
func TestServerReceives(t *testing.T) {
	s := Start(t, Reject550("gone@example.org"), Defer451("later@example.org"))
	c, err := smtp.Dial(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.StartTLS(&tls.Config{ServerName: "127.0.0.1", RootCAs: s.RootCAs}); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(smtp.PlainAuth("", s.Username, s.Password, "127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("from@example.org"); err != nil {
		t.Fatal(err)
	}
	var te *textproto.Error
	if err := c.Rcpt("gone@example.org"); !errors.As(err, &te) || te.Code != 550 {
		t.Errorf("RCPT gone: %v, want 550", err)
	}
	if err := c.Rcpt("later@example.org"); !errors.As(err, &te) || te.Code != 451 {
		t.Errorf("RCPT later: %v, want 451", err)
	}
	if err := c.Rcpt("to@example.org"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("Subject: hi\r\n\r\n.leading dot\r\nline\r\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	m := s.WaitFor(t, 1, 10*time.Second)[0]
	if m.From != "from@example.org" || !slices.Equal(m.To, []string{"to@example.org"}) || !m.TLS || !m.Authenticated {
		t.Errorf("envelope %+v", m)
	}
	if got := m.Header.Get("Subject"); got != "hi" {
		t.Errorf("Subject %q", got)
	}
	if string(m.Body) != ".leading dot\r\nline\r\n" {
		t.Errorf("body %q", m.Body)
	}
	cmds := strings.Join(s.Commands(), "\n")
	for _, want := range []string{"STARTTLS", "AUTH PLAIN", "MAIL FROM:<from@example.org>"} {
		if !strings.Contains(cmds, want) {
			t.Errorf("commands lack %q:\n%s", want, cmds)
		}
	}
	if strings.Contains(cmds, s.Password) {
		t.Errorf("commands log holds the password")
	}
}

// TestServerWithoutTLS: no STARTTLS offered, AUTH offered in clear.
func TestServerWithoutTLS(t *testing.T) {
	s := Start(t, WithoutTLS())
	c, err := smtp.Dial(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered")
	}
	if ok, _ := c.Extension("AUTH"); !ok {
		t.Error("AUTH not offered in clear")
	}
}

// TestHoldReply: the held message is stored before the reply, which comes
// only after the hold; the next message to the address is not held.
func TestHoldReply(t *testing.T) {
	s := Start(t, HoldReply("slow@example.org", "hold me", 3*time.Second))
	send := func(held bool) time.Duration {
		before := len(s.Messages())
		c := dialAuthed(t, s)
		defer c.Close()
		c.Mail("m@example.org")
		c.Rcpt("slow@example.org")
		w, err := c.Data()
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, "Subject: x\r\n\r\nhold me\r\n")
		start := time.Now()
		stored := make(chan int, 1)
		go func() {
			for time.Since(start) < 10*time.Second {
				if n := len(s.Messages()); n > before {
					stored <- n
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		select {
		case <-stored:
		default:
			if held {
				t.Error("the reply came before the message was stored")
			}
		}
		return took
	}
	if took := send(true); took < 2*time.Second {
		t.Errorf("first reply after %v, want the 3s hold", took)
	}
	if took := send(false); took > 2*time.Second {
		t.Errorf("second reply after %v: held again", took)
	}
	if n := len(s.Messages()); n != 2 {
		t.Errorf("%d messages stored, want 2", n)
	}
}

// TestHoldReplyMatchesDecodedText: a marker split by a quoted-printable
// soft line break still holds the reply.
func TestHoldReplyMatchesDecodedText(t *testing.T) {
	s := Start(t, HoldReply("slow@example.org", "Crash-1.0.tar.gz", 2*time.Second))
	c := dialAuthed(t, s)
	defer c.Close()
	if err := c.Mail("m@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("slow@example.org"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: alert\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nupload Crash-1.0.ta=\r\nr.gz\r\n")
	start := time.Now()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Errorf("reply after %v: the split marker was not found", took)
	}
}

// dialAuthed connects to s, starts TLS and authenticates, as a sender must.
func dialAuthed(t *testing.T, s *Server) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.StartTLS(&tls.Config{RootCAs: s.RootCAs, ServerName: "127.0.0.1"}); err != nil {
		c.Close()
		t.Fatal(err)
	}
	if err := c.Auth(smtp.PlainAuth("", s.Username, s.Password, "127.0.0.1")); err != nil {
		c.Close()
		t.Fatal(err)
	}
	return c
}
