// Package testsmtp starts a real SMTP server for tests: aiosmtpd (Debian's
// python3-aiosmtpd) under /usr/bin/python3, on 127.0.0.1, offering
// STARTTLS with a certificate the test generates and AUTH PLAIN/LOGIN with
// a username and password of its own. Each message it accepts is kept
// (raw bytes and envelope) for the test to read; every command line a
// client sends is recorded. One recipient can be made to answer 550 (a
// bounce) and another 451 (try again later).
//
// Python, not a Go fake: the SMTP client under test then meets a server
// it was not written alongside, with its own reading of the RFCs.
package testsmtp

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

//go:embed server.py
var script []byte

// Python is the interpreter the server runs under: Debian's, whose
// dist-packages hold python3-aiosmtpd (a python3 first on PATH, such as a
// pyenv one, does not see them).
const Python = "/usr/bin/python3"

// Server is a running aiosmtpd.
type Server struct {
	Addr     string // 127.0.0.1:port
	Username string
	Password string
	// RootCAs holds the server's self-signed certificate (for 127.0.0.1);
	// CertFile is that certificate as PEM, for a client in another process.
	RootCAs  *x509.CertPool
	CertFile string
	// TLS tells whether the server offers STARTTLS (and then requires it).
	TLS bool

	dir      string
	commands string
}

// Received is one message the server accepted.
type Received struct {
	From          string   // envelope MAIL FROM
	To            []string // envelope RCPT TO (accepted ones)
	MailOptions   []string // MAIL FROM parameters (BODY=8BITMIME, ...)
	TLS           bool     // sent after STARTTLS
	Authenticated bool
	Raw           []byte // the message as received (dots unstuffed, CRLF line ends)
	Header        mail.Header
	Body          []byte // after the header's blank line, still transfer-encoded
}

type config struct {
	Dir      string          `json:"dir"`
	Commands string          `json:"commands"`
	Username string          `json:"username"`
	Password string          `json:"password"`
	Cert     string          `json:"cert"`
	Key      string          `json:"key"`
	TLS      bool            `json:"tls"`
	Reject   []string        `json:"reject"`
	Defer    []string        `json:"defer"`
	NoPlain  bool            `json:"no_plain"`
	Hold     map[string]hold `json:"hold"`
}

// Option changes how Start runs the server.
type Option func(*config)

// WithoutTLS makes a server that offers no STARTTLS and offers and
// accepts AUTH in clear: what a client must refuse to send a password to.
func WithoutTLS() Option { return func(c *config) { c.TLS = false } }

// LoginOnly makes the server offer AUTH LOGIN only (no PLAIN).
func LoginOnly() Option { return func(c *config) { c.NoPlain = true } }

// Reject550 makes RCPT TO:<addr> answer "550 5.1.1" (a permanent failure).
func Reject550(addr string) Option { return func(c *config) { c.Reject = append(c.Reject, addr) } }

// Defer451 makes RCPT TO:<addr> answer "451 4.3.0" (a transient failure).
func Defer451(addr string) Option { return func(c *config) { c.Defer = append(c.Defer, addr) } }

type hold struct {
	Marker  string  `json:"marker"`
	Seconds float64 `json:"seconds"`
}

// HoldReply makes the server, for the first message to addr that holds
// marker, store the message and then keep the client waiting d for the
// reply to DATA: a test can kill the sender while it waits, after the
// message arrived and before the sender knows it did.
func HoldReply(addr, marker string, d time.Duration) Option {
	return func(c *config) {
		if c.Hold == nil {
			c.Hold = map[string]hold{}
		}
		c.Hold[addr] = hold{Marker: marker, Seconds: d.Seconds()}
	}
}

// Start starts a server for the length of t. It skips t when
// /usr/bin/python3 cannot import aiosmtpd, unless CI is set: then it fails.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	if out, err := exec.Command(Python, "-c", "import aiosmtpd").CombinedOutput(); err != nil {
		msg := fmt.Sprintf("testsmtp: %s cannot import aiosmtpd (%v: %s): apt-get install python3-aiosmtpd (.ci/run does)", Python, err, bytes.TrimSpace(out))
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	cfg := config{
		Dir:      filepath.Join(dir, "messages"),
		Commands: filepath.Join(dir, "commands.log"),
		Username: "tlog-" + randHex(4),
		Password: "pw-" + randHex(12),
		Cert:     filepath.Join(dir, "cert.pem"),
		Key:      filepath.Join(dir, "key.pem"),
		TLS:      true,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if err := os.Mkdir(cfg.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	pool := writeCert(t, cfg.Cert, cfg.Key)
	scriptPath := filepath.Join(dir, "server.py")
	cfgPath := filepath.Join(dir, "config.json")
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(scriptPath, script, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(Python, scriptPath, cfgPath)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		stdin.Close() // the script stops its controller and exits
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("aiosmtpd stderr:\n%s", stderr.String())
		}
	})

	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if port, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- port
			}
		}
	}()
	var port string
	select {
	case port = <-ready:
	case <-done:
		t.Fatalf("testsmtp: aiosmtpd exited before listening:\n%s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("testsmtp: aiosmtpd not listening after 30s:\n%s", stderr.String())
	}
	s := &Server{
		Addr:     net.JoinHostPort("127.0.0.1", port),
		Username: cfg.Username,
		Password: cfg.Password,
		RootCAs:  pool,
		CertFile: cfg.Cert,
		TLS:      cfg.TLS,
		dir:      cfg.Dir,
		commands: cfg.Commands,
	}
	// READY is printed after the controller's own connection test; check
	// once more that the port accepts connections.
	c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second)
	if err != nil {
		t.Fatalf("testsmtp: %v\n%s", err, stderr.String())
	}
	c.Close()
	return s
}

// Messages returns the messages received so far, oldest first.
func (s *Server) Messages() []Received {
	names, _ := filepath.Glob(filepath.Join(s.dir, "*.json"))
	sort.Strings(names)
	var out []Received
	for _, name := range names {
		meta, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		var m struct {
			MailFrom      string   `json:"mail_from"`
			RcptTos       []string `json:"rcpt_tos"`
			MailOptions   []string `json:"mail_options"`
			TLS           bool     `json:"tls"`
			Authenticated bool     `json:"authenticated"`
		}
		if err := json.Unmarshal(meta, &m); err != nil {
			continue
		}
		raw, err := os.ReadFile(strings.TrimSuffix(name, ".json") + ".eml")
		if err != nil {
			continue
		}
		r := Received{From: m.MailFrom, To: m.RcptTos, MailOptions: m.MailOptions, TLS: m.TLS, Authenticated: m.Authenticated, Raw: raw}
		if msg, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
			r.Header = msg.Header
			r.Body, _ = io.ReadAll(msg.Body)
		}
		out = append(out, r)
	}
	return out
}

// WaitFor waits until the server has received n messages and returns
// them; it fails t after timeout.
func (s *Server) WaitFor(t testing.TB, n int, timeout time.Duration) []Received {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs := s.Messages()
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("testsmtp: %d messages after %v, want %d", len(msgs), timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Commands returns the command lines clients have sent, in order (AUTH
// arguments masked by aiosmtpd; message content not included).
func (s *Server) Commands() []string {
	b, _ := os.ReadFile(s.commands)
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func writeCert(t testing.TB, certPath, keyPath string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "testsmtp"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) Len() int { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Len() }
func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
