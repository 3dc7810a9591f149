package log

import (
	"encoding/json"
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
	ro := startServer(t, secondWriter(t, s.dir), func(c *Config) { c.Storage, c.S3, c.ReadOnly = cfg.Storage, cfg.S3, true })
	smp := samples(t)
	s.mustAdd(smp[0].request())
	// A read-only front end answers 503 with Retry-After, never 500, when
	// what a request needs is away, and its /healthz names it.
	frontEnd := func(dep, path string) {
		t.Helper()
		if code, b, ok := ro.healthzBecomes(503, "storage: "+dep, 15*time.Second); !ok {
			t.Errorf("read-only /healthz with %s down: %d %s, want 503 naming it", dep, code, b)
		}
		code, b, h := ro.do("GET", path, "", "")
		if code != 503 || h.Get("Retry-After") == "" || !strings.Contains(string(b), dep) {
			t.Errorf("read-only GET %s with %s down: %d (Retry-After %q) %s, want 503 naming it", path, dep, code, h.Get("Retry-After"), b)
		}
	}

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
	if code, b, ok := s.healthzBecomes(503, "storage: mysql", 15*time.Second); !ok {
		t.Errorf("/healthz with MariaDB down: %d %s, want 503 naming mysql", code, b)
	}
	_, m, _ := s.do("GET", "/metrics", "", "")
	if !strings.Contains(string(m), `cpantlog_storage_errors_total{dependency="mysql"}`) {
		t.Errorf("no storage error counted for mysql")
	}
	frontEnd("mysql", "/lookup?path="+smp[0].path)

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
	healthy := func(s *server, what string) {
		t.Helper()
		if code, b, ok := s.healthzBecomes(200, "ok", 15*time.Second); !ok {
			t.Fatalf("/healthz did not recover after %s: %d %s", what, code, b)
		}
	}
	healthy(s, "MariaDB came back")

	// The object store cut off: the health says so, by name.
	obj.cut()
	if code, b, ok := s.healthzBecomes(503, "storage: s3", 30*time.Second); !ok {
		t.Errorf("/healthz with S3 down: %d %s, want 503 naming s3", code, b)
	}
	frontEnd("s3", "/checkpoint")
	obj.restore()
	healthy(s, "S3 came back")
	healthy(ro, "the outages (read-only front end)")
}

// healthzBecomes polls /healthz until it answers code with text in its
// body, for up to within; it returns the last answer and whether it did.
func (s *server) healthzBecomes(code int, text string, within time.Duration) (int, []byte, bool) {
	var got int
	var b []byte
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if got, b, _ = s.do("GET", "/healthz", "", ""); got == code && strings.Contains(string(b), text) {
			return got, b, true
		}
	}
	return got, b, false
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

// TestStorageOutagesUnderLoad kills the test's own MariaDB, then its S3
// server, then both, with SIGKILL under load from 8 clients that retry
// what is not acknowledged (as PAUSE's hook does), and restarts them. The
// log is never restarted: no add is answered 500 (503 with Retry-After
// while a dependency is away), /healthz is 503 naming the dependency
// during each outage and 200 after, and every acknowledged add is in the
// log once, at its index.
func TestStorageOutagesUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts MariaDB and S3 under load; skipped in -short mode")
	}
	db, gw, cfg := ownServices(t)
	s := startServer(t, t.TempDir(), func(c *Config) {
		c.Storage, c.S3 = cfg.Storage, cfg.S3
		c.CheckpointInterval = time.Second
		c.claimLease = 3 * time.Second
	})
	var mu sync.Mutex
	acked := map[string]uint64{}
	codes := map[int]int{}
	var noRetryAfter, bad []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() {
			hc := &http.Client{Timeout: 30 * time.Second}
			for i := 0; ; i++ {
				p := fmt.Sprintf("authors/id/O/OU/OUTAGE/C%d-%d.tar.gz", c, i)
				for {
					select {
					case <-stop:
						return
					default:
					}
					req, _ := http.NewRequest("POST", s.url+"/add", strings.NewReader(addBody(p, c*1000000+i)))
					req.Header.Set("Authorization", "Bearer "+s.log.Token())
					resp, err := hc.Do(req)
					if err != nil {
						t.Errorf("add %s: %v", p, err)
						return
					}
					var res struct{ Index uint64 }
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					mu.Lock()
					codes[resp.StatusCode]++
					switch {
					case resp.StatusCode == 200 && json.Unmarshal(body, &res) == nil:
						acked[p] = res.Index
					case resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "":
						noRetryAfter = append(noRetryAfter, string(body))
					case resp.StatusCode != 503:
						bad = append(bad, fmt.Sprintf("%d %s", resp.StatusCode, body))
					}
					mu.Unlock()
					if resp.StatusCode == 200 {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		})
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()
	health := func(wantCode int, wantText string) {
		t.Helper()
		if code, b, ok := s.healthzBecomes(wantCode, wantText, 90*time.Second); !ok {
			stopLoad()
			t.Fatalf("/healthz: %d %s, want %d with %q", code, b, wantCode, wantText)
		}
	}
	ackedNow := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	progress := func(what string) {
		t.Helper()
		n := ackedNow()
		for deadline := time.Now().Add(60 * time.Second); ackedNow() < n+50; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				stopLoad()
				t.Fatalf("after %s: %d adds acknowledged in a minute, want 50", what, ackedNow()-n)
			}
		}
	}
	progress("start")
	for _, outage := range []struct {
		name string
		down []*ownService
		says string
	}{
		{"MariaDB", []*ownService{db}, "storage: mysql"},
		{"S3", []*ownService{gw}, "storage: s3"},
		{"both", []*ownService{db, gw}, "storage: "},
	} {
		for _, svc := range outage.down {
			svc.kill()
		}
		health(503, outage.says)
		time.Sleep(2 * time.Second) // adds meet the outage
		for _, svc := range outage.down {
			svc.start()
		}
		health(200, "ok")
		progress(outage.name + " came back")
	}
	stopLoad()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("answers: %v; %d adds acknowledged", codes, len(acked))
	if len(bad) > 0 {
		t.Errorf("%d answers neither 200 nor 503, e.g. %s", len(bad), bad[0])
	}
	if len(noRetryAfter) > 0 {
		t.Errorf("%d 503 answers without Retry-After, e.g. %s", len(noRetryAfter), noRetryAfter[0])
	}
	if codes[503] == 0 {
		t.Errorf("no add met an outage: the test did not test anything")
	}
	checkAll(t, s.url, s.dir, acked)
}
