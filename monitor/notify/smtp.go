package notify

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"
)

// SMTP sends mail through one submission server, one connection per
// mail. It speaks SMTP with STARTTLS (ports 587 and 25), not implicit TLS
// (port 465).
type SMTP struct {
	Addr     string // host:port of the server (e.g. smtp.example.org:587)
	From     string // "addr" or "Name <addr>"; the envelope sender is addr
	Username string // empty: no AUTH
	Password string
	HeloName string // EHLO name; default "localhost"
	// StartTLS is "opportunistic" (the default: STARTTLS whenever the
	// server offers it, and required when Username is set: no AUTH in
	// clear) or "require" (refuse a server that does not offer it).
	StartTLS string
	// TLSConfig verifies the server (its RootCAs, for one); ServerName
	// defaults to Addr's host. Certificates are always verified.
	TLSConfig *tls.Config
	// Timeout bounds one whole Send, dial to QUIT; default 60s.
	Timeout time.Duration
}

const defaultSMTPTimeout = 60 * time.Second

// Send delivers m to its one recipient. It checks m (addresses, header
// values) before connecting. The error is permanent (IsPermanent) when
// the server answers 5xx to MAIL, RCPT or DATA.
func (s *SMTP) Send(ctx context.Context, m Mail) error {
	from, err := parseFrom(s.From)
	if err != nil {
		return err
	}
	msg, rcpt, err := build(from, m, time.Now())
	if err != nil {
		return err
	}
	switch s.StartTLS {
	case "", "opportunistic", "require":
	default:
		return fmt.Errorf("notify: StartTLS %q: want \"opportunistic\" or \"require\"", s.StartTLS)
	}
	if s.TLSConfig != nil && s.TLSConfig.InsecureSkipVerify {
		return errors.New("notify: TLSConfig.InsecureSkipVerify is refused: the server's certificate must be verified")
	}
	helo := s.HeloName
	if helo == "" {
		helo = "localhost"
	}
	if strings.ContainsAny(helo, "\r\n ") {
		return fmt.Errorf("notify: HeloName %q is not a host name", helo)
	}
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return fmt.Errorf("notify: SMTP Addr %q: %v", s.Addr, err)
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = defaultSMTPTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	d := net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("notify: SMTP %s: %w", s.Addr, err)
	}
	defer conn.Close()
	// net/smtp takes no context: the deadline bounds every read and
	// write, and a cancelled ctx moves it to now.
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	err = s.dialogue(conn, host, helo, from.Address, rcpt, msg)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("notify: SMTP %s: %w (%v)", s.Addr, ctx.Err(), err)
	}
	return err
}

func (s *SMTP) dialogue(conn net.Conn, host, helo, from, rcpt string, msg []byte) error {
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return fmt.Errorf("notify: SMTP %s greeting: %w", s.Addr, err)
	}
	defer c.Close()
	if err := c.Hello(helo); err != nil {
		return fmt.Errorf("notify: SMTP %s EHLO: %w", s.Addr, err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if s.TLSConfig != nil {
			cfg = s.TLSConfig.Clone()
			if cfg.MinVersion < tls.VersionTLS12 {
				cfg.MinVersion = tls.VersionTLS12
			}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		if err := c.StartTLS(cfg); err != nil {
			return fmt.Errorf("notify: SMTP %s STARTTLS: %w", s.Addr, err)
		}
	} else if s.StartTLS == "require" || s.Username != "" {
		why := "StartTLS is \"require\""
		if s.Username != "" {
			why = "a password is never sent in clear"
		}
		c.Quit()
		return fmt.Errorf("notify: SMTP %s does not offer STARTTLS, and %s", s.Addr, why)
	}
	if s.Username != "" {
		if _, isTLS := c.TLSConnectionState(); !isTLS {
			return fmt.Errorf("notify: SMTP %s: not encrypted, no AUTH", s.Addr) // unreachable: STARTTLS is checked above
		}
		ok, mechs := c.Extension("AUTH")
		if !ok {
			return fmt.Errorf("notify: SMTP %s offers no AUTH, and a Username is set", s.Addr)
		}
		var a smtp.Auth
		switch fields := strings.Fields(strings.ToUpper(mechs)); {
		case contains(fields, "PLAIN"):
			a = &plainAuth{s.Username, s.Password}
		case contains(fields, "LOGIN"):
			a = &loginAuth{s.Username, s.Password}
		default:
			return fmt.Errorf("notify: SMTP %s offers AUTH %s, neither PLAIN nor LOGIN", s.Addr, mechs)
		}
		if err := c.Auth(a); err != nil {
			return fmt.Errorf("notify: SMTP %s AUTH: %w", s.Addr, err)
		}
	}
	if err := c.Mail(from); err != nil {
		return replyErr(s.Addr, "MAIL FROM", err)
	}
	if err := c.Rcpt(rcpt); err != nil {
		return replyErr(s.Addr, "RCPT TO", err)
	}
	w, err := c.Data()
	if err != nil {
		return replyErr(s.Addr, "DATA", err)
	}
	// The DATA writer dot-stuffs lines that start with ".".
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("notify: SMTP %s DATA: %w", s.Addr, err)
	}
	if err := w.Close(); err != nil {
		return replyErr(s.Addr, "DATA", err)
	}
	// The message is accepted: a failing QUIT changes nothing.
	c.Quit()
	return nil
}

// replyErr marks a 5xx reply as permanent (a bounce).
func replyErr(addr, stage string, err error) error {
	err = fmt.Errorf("notify: SMTP %s %s: %w", addr, stage, err)
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 && te.Code <= 599 {
		return &PermanentError{Err: err}
	}
	return err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// plainAuth is AUTH PLAIN (RFC 4616) that refuses an unencrypted
// connection, whatever the host (net/smtp's PlainAuth lets localhost
// through in clear).
type plainAuth struct{ user, pass string }

func (a *plainAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS {
		return "", nil, errors.New("notify: refusing AUTH PLAIN over an unencrypted connection")
	}
	return "PLAIN", []byte("\x00" + a.user + "\x00" + a.pass), nil
}

func (a *plainAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if more {
		return nil, errors.New("notify: unexpected server challenge during AUTH PLAIN")
	}
	return nil, nil
}

// loginAuth is AUTH LOGIN, for servers that offer nothing else.
type loginAuth struct{ user, pass string }

func (a *loginAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS {
		return "", nil, errors.New("notify: refusing AUTH LOGIN over an unencrypted connection")
	}
	return "LOGIN", nil, nil
}

func (a *loginAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	// net/smtp has already base64-decoded the challenge.
	// "Username:" by custom, "User Name\x00" from some (aiosmtpd).
	switch strings.TrimRight(strings.ToLower(strings.TrimSpace(string(fromServer))), "\x00: ") {
	case "username", "user name":
		return []byte(a.user), nil
	case "password":
		return []byte(a.pass), nil
	}
	return nil, fmt.Errorf("notify: unexpected AUTH LOGIN challenge %q", base64.StdEncoding.EncodeToString(fromServer))
}
