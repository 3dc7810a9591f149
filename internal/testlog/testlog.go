// Package testlog runs a real cpan-tlog log server, and real witnesses, on
// loopback for tests of the parts around them (client, monitor, proxy,
// deploy). Only tests import it.
package testlog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
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
	"github.com/CPAN-Security/cpan-tlog/internal/httpserver"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/witness"
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
		l.PutIndexFile(t, content)
		body = fmt.Sprintf(`{"kind":"index","path":%q,"size":%d,"sha256":"%x","time":%q}`, path, len(content), sha256.Sum256(content), when)
	} else {
		id := strings.Split(path, "/")[4]
		body = fmt.Sprintf(`{"path":%q,"size":%d,"sha256":"%x","uploader":%q,"time":%q}`, path, len(content), sha256.Sum256(content), id, when)
	}
	u := l.URL + "/add"
	if wait {
		u += "?wait=1"
	}
	if code, b := l.send(t, "POST", u, []byte(body)); code != 200 {
		t.Fatalf("add %s: %d %s", path, code, b)
	}
}

// AddBundle logs a Sigstore bundle at path (the signed file's path +
// ".sigstore.json") through POST /add with the bundle's bytes, as PAUSE
// hands them over, and waits for a checkpoint covering it. It returns the
// log's answer (which says what it verified).
func (l *Log) AddBundle(t testing.TB, path string, bundle []byte, when string) string {
	t.Helper()
	id := strings.Split(path, "/")[4]
	body := fmt.Sprintf(`{"path":%q,"size":%d,"sha256":"%x","uploader":%q,"time":%q,"bundle":%q}`,
		path, len(bundle), sha256.Sum256(bundle), id, when, base64.StdEncoding.EncodeToString(bundle))
	code, b := l.send(t, "POST", l.URL+"/add?wait=1", []byte(body))
	if code != 200 {
		t.Fatalf("add %s: %d %s", path, code, b)
	}
	return string(b)
}

// PutIndexFile stores an index file version's bytes in the log, as it
// requires before the version is logged.
func (l *Log) PutIndexFile(t testing.TB, content []byte) {
	t.Helper()
	if code, b := l.send(t, "PUT", fmt.Sprintf("%s/index-files/%x", l.URL, sha256.Sum256(content)), content); code != 200 && code != 201 {
		t.Fatalf("PUT index file: %d %s", code, b)
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

// Witness is a real cpan-tlog witness on loopback for one log.
type Witness struct {
	URL, VKey string
	stop      func()
}

// Stop stops the witness (it also stops when the test ends).
func (w *Witness) Stop() { w.stop() }

// StartWitness serves a real witness named name for the log with logVKey.
func StartWitness(t testing.TB, name, logVKey string) *Witness {
	t.Helper()
	return StartWitnessWith(t, name, logVKey, witness.Ed25519)
}

// StartWitnessWith is StartWitness with a key of algorithm alg (Ed25519
// or ML-DSA-44).
func StartWitnessWith(t testing.TB, name, logVKey string, alg witness.Algorithm) *Witness {
	t.Helper()
	dir := t.TempDir()
	vkey, err := witness.KeygenWith(dir, name, alg)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := witness.ParseConfig([]byte("log " + logVKey + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := witness.Open(dir, cfg, 1000, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { httpserver.Run(ctx, httpserver.New(w.Handler(), 10*time.Second), ln, time.Second); close(done) }()
	var once sync.Once
	tw := &Witness{URL: "http://" + ln.Addr().String(), VKey: vkey, stop: func() { once.Do(func() { cancel(); <-done }) }}
	t.Cleanup(tw.stop)
	return tw
}

// AddCheckpoint asks a witness to cosign a checkpoint, as a log does
// (C2SP tlog-witness add-checkpoint), and fails the test if it refuses.
func AddCheckpoint(t testing.TB, witnessURL string, old uint64, proof [][]byte, cp []byte) {
	t.Helper()
	body := (&witness.Request{OldSize: old, Proof: proof, Checkpoint: cp}).Marshal()
	resp, err := http.Post(witnessURL+"/add-checkpoint", "text/plain", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("witness refused the checkpoint: %d %s", resp.StatusCode, b)
	}
}

// SyncBuffer collects log lines from several goroutines.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// send makes an authorized request to the log and returns the answer.
func (l *Log) send(t testing.TB, method, url string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+l.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
