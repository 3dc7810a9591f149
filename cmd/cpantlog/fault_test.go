package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/internal/httpserver"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/witness"
)

// TestHangingWitness: a witness that accepts connections and never answers
// holds back checkpoints (fail closed) but not adds; once it answers again
// the log publishes a cosigned checkpoint covering everything acknowledged.
func TestHangingWitness(t *testing.T) {
	logDir, logVKey := newLogKey(t)
	wDir := t.TempDir()
	wVKey, _ := witness.Keygen(wDir, "w1.example")
	cfg, _ := witness.ParseConfig([]byte("log " + logVKey + "\n"))
	w, err := witness.Open(wDir, cfg, 1000, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var hang atomic.Bool
	hang.Store(true)
	release := make(chan struct{})
	h := w.Handler()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go httpserver.Run(ctx, httpserver.New(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if hang.Load() {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		h.ServeHTTP(rw, r)
	}), time.Minute), ln, time.Second)
	wURL := "http://" + ln.Addr().String()
	policy := fmt.Sprintf("log %s\nwitness w1 %s %s\nquorum w1\n", logVKey, wVKey, wURL)
	tl := startLogWith(t, tlog.Config{DataDir: logDir, WitnessPolicy: []byte(policy), WitnessTimeout: 500 * time.Millisecond})
	smp := samples(t)
	for _, s := range smp[:3] {
		body := fmt.Sprintf(`{"path":%q,"size":%d,"sha256":"%x","uploader":%q,"time":"2024-01-02T03:04:05Z"}`, s.path, len(s.content), sha(s.content), strings.Split(s.path, "/")[4])
		req, _ := http.NewRequest("POST", tl.url+"/add", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tl.log.Token())
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("add with the witness hanging: %v %v", err, resp)
		}
		resp.Body.Close()
	}
	time.Sleep(time.Second)
	if resp, err := http.Get(tl.url + "/checkpoint"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && strings.Contains(string(b), "\n3\n") {
			t.Fatalf("a checkpoint was published while the witness hung:\n%s", b)
		}
	}
	hang.Store(false)
	close(release)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(tl.url + "/checkpoint")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), "\n3\n") && strings.Contains(string(b), "\u2014 w1.example ") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the log did not recover once the witness answered")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
