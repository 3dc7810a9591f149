// Package testlog runs a real cpan-tlog log server on loopback for tests
// of the parts around it (client, monitor, proxy, deploy). Only tests
// import it.
package testlog

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
)

// Log is a running log and its URL.
type Log struct {
	*tlog.Log
	URL  string
	Dir  string
	stop func()
}

// Start serves a log with cfg on a loopback port until the test ends (or
// Stop). Unset intervals get test-friendly values.
func Start(t testing.TB, cfg tlog.Config) *Log {
	t.Helper()
	if cfg.CheckpointInterval == 0 {
		cfg.CheckpointInterval = 100 * time.Millisecond
	}
	if cfg.BatchMaxAge == 0 {
		cfg.BatchMaxAge = 10 * time.Millisecond
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	l, err := tlog.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tlog.Serve(ctx, l, ln); close(done) }()
	var once sync.Once
	tl := &Log{Log: l, URL: "http://" + ln.Addr().String(), Dir: cfg.DataDir}
	tl.stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(tl.stop)
	return tl
}

// Stop shuts the log down gracefully.
func (l *Log) Stop() { l.stop() }

// Add logs content at path through POST /add; with wait it returns once a
// checkpoint covers it. An index file's path (cpan.IndexPaths) is logged as
// an index version.
func (l *Log) Add(t testing.TB, path string, content []byte, when string, wait bool) {
	t.Helper()
	var body string
	if cpan.IsIndexPath(path) {
		body = fmt.Sprintf(`{"kind":"index","path":%q,"size":%d,"sha256":"%x","time":%q}`, path, len(content), sha256.Sum256(content), when)
	} else {
		id := strings.Split(path, "/")[4]
		body = fmt.Sprintf(`{"path":%q,"size":%d,"sha256":"%x","uploader":%q,"time":%q}`, path, len(content), sha256.Sum256(content), id, when)
	}
	u := l.URL + "/add"
	if wait {
		u += "?wait=1"
	}
	req, _ := http.NewRequest("POST", u, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+l.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("add %s: %d %s", path, resp.StatusCode, b)
	}
}

// Fork signs, with the log's own key, a checkpoint of the log's first n
// entries followed by extra leaves: a history the log could show someone
// else. It returns the signed note and the consistency proof from size n,
// as a witness would be asked to cosign it.
func (l *Log) Fork(t testing.TB, n uint64, extra ...[]byte) ([]byte, [][]byte) {
	t.Helper()
	skey, err := os.ReadFile(filepath.Join(l.Dir, tlog.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if size, _ := l.Index().Size(); size >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("lookup index did not catch up")
		}
	}
	tree := testonly.New(rfc6962.DefaultHasher)
	for i := range n {
		leaf, err := l.Index().Leaf(i)
		if err != nil {
			t.Fatal(err)
		}
		tree.AppendData(leaf)
	}
	tree.AppendData(extra...)
	proof, err := tree.ConsistencyProof(n, tree.Size())
	if err != nil {
		t.Fatal(err)
	}
	cp, err := note.Sign(&note.Note{Text: string(flog.Checkpoint{Origin: signer.Name(), Size: tree.Size(), Hash: tree.Hash()}.Marshal())}, signer)
	if err != nil {
		t.Fatal(err)
	}
	return cp, proof
}
