package log

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"github.com/go-sql-driver/mysql"
)

// forwarder is a TCP forwarder to a real service that the test can cut
// (every connection closed, new ones refused) and restore: an outage of
// MariaDB or the S3 server without stopping the services other tests use.
type forwarder struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
}

func newForwarder(t *testing.T, target string) *forwarder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); f.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			down := f.down
			f.mu.Unlock()
			if down {
				c.Close()
				continue
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, u)
			f.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	return f
}

func (f *forwarder) addr() string { return f.ln.Addr().String() }

func (f *forwarder) cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = true
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

func (f *forwarder) restore() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = false
}

// TestStorageOutageIs503: with MariaDB cut off, /add answers 503 with
// Retry-After (never 500: nothing is wrong with the request), /healthz
// names the dependency, the metric counts it, and all recovers by itself
// when MariaDB is back.
func TestStorageOutageIs503(t *testing.T) {
	if !slices.Contains(storages(t), StorageS3) {
		t.Skip("needs CPANTLOG_TEST_S3_ENDPOINT and CPANTLOG_TEST_MYSQL_DSN")
	}
	var cfg Config
	onStorage(t, StorageS3)(&cfg)
	dsn, err := mysql.ParseDSN(cfg.S3.DSN)
	if err != nil {
		t.Fatal(err)
	}
	db := newForwarder(t, dsn.Addr)
	dsn.Addr = db.addr()
	cfg.S3.DSN = dsn.FormatDSN()
	obj := newForwarder(t, strings.TrimPrefix(cfg.S3.Endpoint, "http://"))
	cfg.S3.Endpoint = "http://" + obj.addr()
	s := startServer(t, t.TempDir(), func(c *Config) { c.Storage, c.S3 = cfg.Storage, cfg.S3 })
	smp := samples(t)
	s.mustAdd(smp[0].request())

	db.cut()
	var codes []int
	var answer string
	var retryAfter string
	for i := 1; i < 4; i++ {
		code, b, h := s.do("POST", "/add", s.log.Token(), smp[i].request())
		codes = append(codes, code)
		answer, retryAfter = string(b), h.Get("Retry-After")
	}
	if slices.Contains(codes, http.StatusInternalServerError) || !slices.Contains(codes, http.StatusServiceUnavailable) {
		t.Errorf("adds while MariaDB is down: %v, want 503s and no 500\n%s", codes, answer)
	}
	if !strings.Contains(answer, "storage: mysql unavailable") || retryAfter == "" {
		t.Errorf("503 answer %q (Retry-After %q), want it to name mysql and say when to retry", answer, retryAfter)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		code, b, _ := s.do("GET", "/healthz", "", "")
		if code == 503 && strings.Contains(string(b), "storage: mysql") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("/healthz with MariaDB down: %d %s, want 503 naming mysql", code, b)
			break
		}
	}
	_, m, _ := s.do("GET", "/metrics", "", "")
	if !strings.Contains(string(m), `cpantlog_storage_errors_total{dependency="mysql"}`) {
		t.Errorf("no storage error counted for mysql")
	}

	db.restore()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		code, b := s.add(smp[4].request())
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("adds after MariaDB came back: %d %s", code, b)
		}
	}
	healthy := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			if code, _, _ := s.do("GET", "/healthz", "", ""); code == 200 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/healthz did not recover after %s", what)
			}
		}
	}
	healthy("MariaDB came back")

	// The object store cut off: the health says so, by name.
	obj.cut()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		code, b, _ := s.do("GET", "/healthz", "", "")
		if code == 503 && strings.Contains(string(b), "storage: s3") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("/healthz with S3 down: %d %s, want 503 naming s3", code, b)
			break
		}
	}
	obj.restore()
	healthy("S3 came back")
}

func TestStorageDependency(t *testing.T) {
	s3 := &Log{cfg: Config{Storage: StorageS3, S3: S3Config{DSN: "u:p@tcp(127.0.0.1:3399)/db", Endpoint: "http://127.0.0.1:7999"}}}
	posix := &Log{cfg: Config{Storage: StoragePOSIX}}
	for _, c := range []struct {
		l    *Log
		err  error
		want string
	}{
		{s3, nil, ""},
		{s3, &mysql.MySQLError{Number: 2013, Message: "lost connection"}, "mysql"},
		{s3, fmt.Errorf("failed to read IntCoord: %v", mysql.ErrInvalidConn), "mysql"},
		{s3, &smithy.OperationError{ServiceID: "S3", OperationName: "GetObject", Err: errors.New("dial")}, "s3"},
		{s3, &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3399}, Err: errors.New("connection refused")}, "mysql"},
		{s3, fmt.Errorf("put tile: dial tcp 127.0.0.1:7999: connect: connection refused"), "s3"},
		{s3, errors.New("a different file is already logged"), ""},
		{posix, &mysql.MySQLError{Number: 2013}, ""},
	} {
		if got := c.l.storageDependency(c.err); got != c.want {
			t.Errorf("storageDependency(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
