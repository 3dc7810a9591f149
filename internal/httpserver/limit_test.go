package httpserver

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestConnsFor(t *testing.T) {
	for _, c := range []struct {
		nofile uint64
		want   int
	}{{64, 16}, {256, 192}, {1024, 768}, {4096, 3072}, {65536, 16384}, {1 << 20, 16384}} {
		if got := connsFor(c.nofile); got != c.want {
			t.Errorf("connsFor(%d) = %d, want %d", c.nofile, got, c.want)
		}
	}
}

// TestLimitRefusesCleanly: past the cap a client reads a complete 503,
// and once a connection closes a new one is served again.
func TestLimitRefusesCleanly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }), time.Second)
	go srv.Serve(Limit(ln, 2))
	defer srv.Close()
	status := func(c net.Conn) string {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err.Error()
		}
		return strings.TrimSpace(line)
	}
	var open []net.Conn
	for i := range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
		want := "HTTP/1.1 200 OK"
		if i == 2 {
			want = "HTTP/1.1 503 Service Unavailable"
		}
		if got := status(c); got != want {
			t.Errorf("connection %d: %q, want %q", i, got, want)
		}
	}
	open[0].Close()
	time.Sleep(100 * time.Millisecond)
	c, _ := net.Dial("tcp", ln.Addr().String())
	defer c.Close()
	if got := status(c); got != "HTTP/1.1 200 OK" {
		t.Errorf("after one closed: %q", got)
	}
}
