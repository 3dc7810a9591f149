package httpserver

import (
	"bytes"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// overCapacity is what a connection over the cap gets before it is closed:
// a complete HTTP answer, so a client sees a clean refusal, not a hang.
const overCapacity = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n" +
	"Retry-After: 1\r\nConnection: close\r\nContent-Length: 43\r\n\r\ntoo many open connections, retry in a while\n"

// Limit returns a listener that keeps at most max connections open at
// once. A connection beyond that gets a 503 and is closed at once, so
// idle clients can never use up the file descriptors the daemon needs for
// its own files (Tessera's POSIX driver panics when it cannot open one).
// max <= 0 means DefaultMaxConns().
func Limit(ln net.Listener, max int) net.Listener {
	if l, ok := ln.(*limitListener); ok {
		return l
	}
	if max <= 0 {
		max = DefaultMaxConns()
	}
	return &limitListener{Listener: ln, slots: make(chan struct{}, max), refusing: make(chan struct{}, 64)}
}

type limitListener struct {
	net.Listener
	slots    chan struct{}
	refusing chan struct{} // refusals being written, bounded
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			select {
			case l.refusing <- struct{}{}:
				go func() { refuse(c); <-l.refusing }()
			default:
				c.Close() // a flood: no time for manners
			}
		}
	}
}

// refuse answers 503 and closes c. It waits (briefly) for the request's
// head first: an answer sent before the request is one clients discard as
// unsolicited. It reads what follows too, so that the close is not a reset
// that would hide the answer.
func refuse(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	var head []byte
	buf := make([]byte, 4096)
	for len(head) < 16<<10 && !bytes.Contains(head, []byte("\r\n\r\n")) {
		n, err := c.Read(buf)
		head = append(head, buf[:n]...)
		if err != nil {
			break
		}
	}
	if _, err := c.Write([]byte(overCapacity)); err != nil {
		return
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	io.Copy(io.Discard, io.LimitReader(c, 64<<10))
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

var raiseOnce sync.Once

// DefaultMaxConns raises the soft limit on open files to the hard limit
// (once per process, where allowed) and returns the connection cap that
// leaves a quarter of it, at least 64 and at most 1024 descriptors, for the
// daemon's own files; the cap is at most 16384.
func DefaultMaxConns() int {
	var rl syscall.Rlimit
	raiseOnce.Do(func() {
		if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil && rl.Cur < rl.Max {
			rl.Cur = rl.Max
			syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
		}
	})
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 1024
	}
	return connsFor(uint64(rl.Cur)) // int64 on some systems
}

func connsFor(nofile uint64) int {
	reserve := min(max(nofile/4, 64), 1024)
	if nofile <= reserve+16 {
		return 16
	}
	return int(min(nofile-reserve, 16384))
}
