package monitor

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
)

// TestViewsComparedWithWitnesses: with a real log and a real witness, and
// a fork signed with the log's key that the witness cosigned (the log
// shows the world one tree and this monitor another), the monitor uses the
// policy's witness as a peer with no --peer flag, reports the frozen view
// as checkpoint-stale-view after the lag bound (once), and as a split
// view once the log's view reaches that size; the evidence holds both
// notes byte for byte.
func TestViewsComparedWithWitnesses(t *testing.T) {
	dir := t.TempDir()
	logVKey, err := tlog.Keygen(dir, tlog.DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	tl := testlog.Start(t, tlog.Config{DataDir: dir})
	smp := samples(t)
	for _, s := range smp {
		tl.Add(t, s.path, s.content, "2024-01-02T03:04:05Z", true)
	}
	w1 := testlog.StartWitness(t, "w1.example", logVKey)
	wURL, wVKey := w1.URL, w1.VKey
	// The witness has cosigned the log's genuine checkpoint of size 8.
	cp8, err := tl.Reader().ReadCheckpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	testlog.AddCheckpoint(t, wURL, 0, nil, cp8)

	policy, err := client.ParsePolicy([]byte(fmt.Sprintf("log %s %s\nwitness w1 %s %s\nquorum none\n", logVKey, tl.URL, wVKey, wURL)))
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	logs := &testlog.SyncBuffer{}
	round := func() run {
		t.Helper()
		m, err := New(Config{Policy: policy, StateDir: state, MaxViewLag: 500 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		err = m.Sync(context.Background())
		fs, derr := m.Deliver(context.Background(), WriterSink{W: io.Discard})
		if derr != nil {
			t.Fatal(derr)
		}
		return run{findings: fs, err: err}
	}
	if r := round(); r.err != nil || len(r.findings) != 0 {
		t.Fatalf("consistent witness: %v %s", r.err, r.kinds())
	}

	// A fork: the log's 8 entries and an evil ninth, signed with the log's
	// key and cosigned by the witness; the log keeps showing us size 8.
	fork, proof := tl.Fork(t, 8, mkUpload(t, "authors/id/E/EV/EVIL/Evil-1.0.tar.gz", "EVIL", "evil", time.Unix(1700000000, 0), nil))
	testlog.AddCheckpoint(t, wURL, 8, proof, fork)

	if r := round(); r.err != nil || len(r.findings) != 0 {
		t.Fatalf("a view ahead, within the lag: %v %s", r.err, r.kinds())
	}
	time.Sleep(600 * time.Millisecond)
	r := round()
	if r.err != nil || r.kinds() != KindStaleView || !r.findings[0].Security {
		t.Fatalf("frozen view after the lag: %v %s", r.err, r.kinds())
	}
	ev := r.findings[0].Evidence
	peerNote, _ := os.ReadFile(filepath.Join(ev, "peer.checkpoint"))
	ourNote, _ := os.ReadFile(filepath.Join(ev, "ours.checkpoint"))
	if !bytes.HasPrefix(peerNote, fork) || !bytes.Contains(peerNote, []byte("\u2014 w1.example ")) || !bytes.Equal(ourNote, cp8) {
		t.Errorf("evidence:\npeer:\n%s\nours:\n%s", peerNote, ourNote)
	}
	if r := round(); r.err != nil || len(r.findings) != 0 {
		t.Errorf("the stale view was reported again: %s", r.kinds())
	}

	// The log's view reaches size 9, with another ninth entry: split view.
	tl.Add(t, "authors/id/E/ET/ETHER/Other-1.0.tar.gz", []byte("other"), "2024-01-02T03:04:05Z", true)
	if r := round(); r.err != nil || r.kinds() != KindSplitView {
		t.Fatalf("log reached the peer's size with another root: %v %s", r.err, r.kinds())
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("warnings:\n%s", logs)
	}
}

// TestWitnessWithoutReadEndpoint: a witness that does not serve the
// latest-checkpoint endpoint (404, as litewitness) is skipped with one
// INFO line, not an error or a warning.
func TestWitnessWithoutReadEndpoint(t *testing.T) {
	dir := t.TempDir()
	tl := testlog.Start(t, tlog.Config{DataDir: dir})
	tl.Add(t, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", []byte("x"), "2024-01-02T03:04:05Z", true)
	lite := httptest.NewServer(http.NotFoundHandler())
	defer lite.Close()
	wvkey := testlog.StartWitness(t, "lite.example", tl.VerifierKey()).VKey
	policy, _ := client.ParsePolicy([]byte(fmt.Sprintf("log %s %s\nwitness lite %s %s\nquorum none\n", tl.VerifierKey(), tl.URL, wvkey, lite.URL)))
	logs := &testlog.SyncBuffer{}
	m, err := New(Config{Policy: policy, StateDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for range 2 {
		if err := m.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), "does not serve the latest-checkpoint endpoint"); n != 1 || strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("want one INFO line about the skipped witness, got %d:\n%s", n, logs)
	}
}
