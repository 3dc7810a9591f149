package witness

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
)

// syncBuffer collects a witness's log lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines returns the log lines that contain every one of parts.
func (s *syncBuffer) lines(parts ...string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(s.b.Bytes()))
	sc.Buffer(nil, 1<<20)
next:
	for sc.Scan() {
		for _, p := range parts {
			if !strings.Contains(sc.Text(), p) {
				continue next
			}
		}
		out = append(out, sc.Text())
	}
	return out
}

// namedLog is a log whose key is called name.
func namedLog(t testing.TB, name string, size int) *fakeLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	tr := testonly.New(rfc6962.DefaultHasher)
	for i := range size {
		tr.AppendData(fmt.Appendf(nil, "%s leaf %d", name, i))
	}
	return &fakeLog{signer: s, vkey: vkey, tree: tr}
}

// requestFor is an add-checkpoint request for l's checkpoint of size
// under origin, with a proof from old.
func requestFor(t testing.TB, l *fakeLog, origin string, old, size uint64) []byte {
	t.Helper()
	cp, err := note.Sign(&note.Note{Text: string(flog.Checkpoint{Origin: origin, Size: size, Hash: l.tree.HashAt(size)}.Marshal())}, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	r := &Request{OldSize: old, Checkpoint: cp}
	if old > 0 && old < size {
		if r.Proof, err = l.tree.ConsistencyProof(old, size); err != nil {
			t.Fatal(err)
		}
	}
	return r.Marshal()
}

func listEntry(vkey, origin string, qpd int, contact string) string {
	s := "\nvkey " + vkey + "\n"
	if origin != "" {
		s += "origin " + origin + "\n"
	}
	return s + fmt.Sprintf("qpd %d\ncontact %s\n", qpd, contact)
}

// listWitness is a witness with a list, served over HTTP on loopback.
type listWitness struct {
	w    *Witness
	ll   *LogList
	srv  *httptest.Server
	logs *syncBuffer
}

func openListWitness(t *testing.T, dir string, base *Config, opts LogListOptions) *listWitness {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, KeyFile)); err != nil {
		if _, err := Keygen(dir, "w1.example"); err != nil {
			t.Fatal(err)
		}
	}
	if base == nil {
		base = &Config{Logs: map[string][]note.Verifier{}}
	}
	logs := &syncBuffer{}
	w, err := Open(dir, base, 1000, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ll, err := OpenLogList(w, base, opts)
	if err != nil {
		t.Fatal(err)
	}
	lw := &listWitness{w: w, ll: ll, srv: httptest.NewServer(w.Handler()), logs: logs}
	t.Cleanup(lw.srv.Close)
	return lw
}

func (lw *listWitness) post(t *testing.T, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(lw.srv.URL+"/add-checkpoint", "text/plain", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric is the value of the metric line that starts with name.
func (lw *listWitness) metric(t *testing.T, name string) string {
	t.Helper()
	resp, err := http.Get(lw.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return "(none)"
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The witness configures a log from a tlog-list file and cosigns its
// checkpoints; the list then drops the log: still cosigned; the list
// gives the log another key: refused, the old key still works; the
// witness restarts with the list gone: the log is still cosigned, from the
// state it had.
func TestLogListFileConfiguresAndKeeps(t *testing.T) {
	l := newFakeLog(t, 20)
	dir := t.TempDir()
	list := filepath.Join(t.TempDir(), "log-list")
	writeFile(t, list, "# test list\nlogs/v0\n"+listEntry(l.vkey, "", 86400, "ops@localhost"))
	lw := openListWitness(t, dir, nil, LogListOptions{Source: list})
	ctx := context.Background()

	if code, _ := lw.post(t, l.request(t, 0, 5)); code != http.StatusNotFound {
		t.Fatalf("before the list is read: %d, want 404", code)
	}
	if err := lw.ll.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	code, sig := lw.post(t, l.request(t, 0, 5))
	if code != http.StatusOK {
		t.Fatalf("a log from the list: %d %s", code, sig)
	}
	verifyCosignature(t, lw.w.VerifierKey(), string(flog.Checkpoint{Origin: origin, Size: 5, Hash: l.tree.HashAt(5)}.Marshal()), sig)
	if got := lw.logs.lines("level=INFO", "witnessing a new log", "origin="+origin, "qpd=86400"); len(got) != 1 {
		t.Errorf("INFO lines for the new log: %q", got)
	}
	if got := lw.ll.Learned(); len(got) != 1 || got[0].VKey != l.vkey || got[0].QPD != 86400 || got[0].Contact != "ops@localhost" {
		t.Errorf("learned %+v", got)
	}

	// The list drops the log (and lists another).
	z := namedLog(t, "z.example/log", 5)
	writeFile(t, list, "logs/v0\n"+listEntry(z.vkey, "", 24, "z@example"))
	for range 3 {
		if err := lw.ll.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if code, body := lw.post(t, l.request(t, 5, 10)); code != http.StatusOK {
		t.Fatalf("after the list dropped the log: %d %s", code, body)
	}
	if got := lw.logs.lines("level=INFO", "no longer in it: still witnessed", "origin="+origin); len(got) != 1 {
		t.Errorf("INFO lines for the dropped log (want one over three reads): %q", got)
	}

	// The list gives the log another key.
	other := newFakeLog(t, 20)
	writeFile(t, list, "logs/v0\n"+listEntry(other.vkey, "", 86400, "attacker@localhost"))
	for range 2 {
		if err := lw.ll.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	warn := lw.logs.lines("level=WARN", "another key: refused", "origin="+origin, "kept_key="+l.vkey, "listed_key="+other.vkey)
	if len(warn) != 1 {
		t.Errorf("WARN lines naming the origin and both keys (want one over two reads): %q\nall:\n%s", warn, strings.Join(lw.logs.lines(""), "\n"))
	}
	if code, _ := lw.post(t, requestFor(t, other, origin, 10, 12)); code != http.StatusForbidden {
		t.Errorf("a checkpoint signed by the list's new key: %d, want 403", code)
	}
	if code, body := lw.post(t, l.request(t, 10, 12)); code != http.StatusOK {
		t.Errorf("a checkpoint signed by the old key: %d %s", code, body)
	}
	if got := lw.ll.Learned(); len(got) != 2 || got[0].VKey != l.vkey || got[0].Contact != "ops@localhost" {
		t.Errorf("learned %+v: the list changed it", got)
	}
	for name, want := range map[string]string{
		`cpantlog_witness_log_list_reads_total{outcome="ok"}`: "6",
		"cpantlog_witness_log_list_key_conflicts":             "1",
		"cpantlog_witness_logs":                               "2",
		"cpantlog_witness_logs_learned":                       "2",
	} {
		if got := lw.metric(t, name); got != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}

	// Restart with the list gone.
	lw.srv.Close()
	if err := os.Remove(list); err != nil {
		t.Fatal(err)
	}
	lw = openListWitness(t, dir, nil, LogListOptions{Source: list})
	if err := lw.ll.Refresh(ctx); err == nil {
		t.Fatal("reading a missing list succeeded")
	}
	if got := lw.logs.lines("level=WARN", "unchanged", "outcome=unreachable"); len(got) != 1 {
		t.Errorf("WARN for the missing list: %q", got)
	}
	if code, body := lw.post(t, l.request(t, 12, 15)); code != http.StatusOK {
		t.Errorf("after a restart without the list: %d %s", code, body)
	}
	if code, body := lw.post(t, l.request(t, 0, 16)); code != http.StatusConflict || body != "15\n" {
		t.Errorf("a request from size 0 after the restart: %d %q, want 409 \"15\\n\" (the state never goes back)", code, body)
	}
	if got := lw.metric(t, "cpantlog_witness_logs_learned"); got != "2" {
		t.Errorf("logs learned after the restart: %s", got)
	}
}

// A list served over HTTP: logs with an origin line other than their
// key's name, logs added later, and Run reading the list when poked.
func TestLogListOverHTTP(t *testing.T) {
	a := namedLog(t, "a.example/log", 10)
	b := newFakeLog(t, 10)
	c := namedLog(t, "c.example/log", 10)
	var list atomic.Value
	list.Store("logs/v0\n" + listEntry(a.vkey, "a.example/log/2026", 24, "a@example") + listEntry(b.vkey, "", 1440, "b@example"))
	var agent atomic.Value
	agent.Store("")
	src := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		agent.Store(r.UserAgent())
		io.WriteString(rw, list.Load().(string))
	}))
	defer src.Close()
	lw := openListWitness(t, t.TempDir(), nil, LogListOptions{Source: src.URL + "/lists/testing/log-list.1"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { lw.ll.Run(ctx, time.Hour); close(done) }()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("the first read", func() bool { return len(lw.ll.Learned()) == 2 })
	if code, body := lw.post(t, requestFor(t, a, "a.example/log/2026", 0, 4)); code != http.StatusOK {
		t.Errorf("log with an origin line: %d %s", code, body)
	}
	if code, _ := lw.post(t, requestFor(t, a, "a.example/log", 0, 4)); code != http.StatusNotFound {
		t.Errorf("the key's name is not the origin: %d, want 404", code)
	}
	if code, body := lw.post(t, b.request(t, 0, 4)); code != http.StatusOK {
		t.Errorf("log without an origin line: %d %s", code, body)
	}
	resp, err := http.Get(lw.srv.URL + "/" + OriginID("a.example/log/2026") + "/checkpoint")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("read endpoint of a log from the list: %v %v", err, resp.Status)
	}
	resp.Body.Close()
	if got := agent.Load().(string); got != "cpantlog-witness" {
		t.Errorf("User-Agent %q", got)
	}

	list.Store(list.Load().(string) + listEntry(c.vkey, "", 86400, "c@example"))
	lw.ll.Poke()
	waitFor("the poked read", func() bool { return len(lw.ll.Learned()) == 3 })
	if code, body := lw.post(t, requestFor(t, c, "c.example/log", 0, 3)); code != http.StatusOK {
		t.Errorf("a log added to the list later: %d %s", code, body)
	}
	cancel()
	<-done
	learned, err := os.ReadFile(filepath.Join(lw.w.dataDir, LearnedLogsFile))
	if err != nil {
		t.Fatal(err)
	}
	logs, err := ParseLogList(learned)
	if err != nil || len(logs) != 3 || logs[0].Origin != "a.example/log/2026" || logs[2].VKey != c.vkey {
		t.Errorf("learned-logs file: %v %+v\n%s", err, logs, learned)
	}
}

// An unreachable, oversized, slow or malformed list changes nothing, and
// says so at WARN with its outcome.
func TestLogListBadListChangesNothing(t *testing.T) {
	a := newFakeLog(t, 10)
	b := namedLog(t, "b.example/log", 10)
	good := "logs/v0\n" + listEntry(a.vkey, "", 24, "a@example")
	// Every bad list would add b and give a another key.
	withB := "logs/v0\n" + listEntry(namedLog(t, origin, 1).vkey, "", 24, "x") + listEntry(b.vkey, "", 24, "b@example")
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	for _, tc := range []struct {
		name, outcome string
		handler       http.HandlerFunc // serves the list, or
		file          func(dir string) string
		source        string
		timeout       time.Duration
	}{
		{name: "connection refused", outcome: "unreachable", source: dead.URL + "/list"},
		{name: "404", outcome: "unreachable", handler: func(rw http.ResponseWriter, r *http.Request) { http.Error(rw, withB, 404) }},
		{name: "500", outcome: "unreachable", handler: func(rw http.ResponseWriter, r *http.Request) { http.Error(rw, withB, 500) }},
		{name: "timeout", outcome: "unreachable", timeout: 500 * time.Millisecond, handler: func(rw http.ResponseWriter, r *http.Request) {
			io.WriteString(rw, withB[:20])
			rw.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}},
		{name: "redirect to another scheme", outcome: "unreachable", handler: func(rw http.ResponseWriter, r *http.Request) {
			http.Redirect(rw, r, "ftp://127.0.0.1/list", http.StatusFound)
		}},
		{name: "too large, streamed", outcome: "too_large", handler: func(rw http.ResponseWriter, r *http.Request) {
			io.WriteString(rw, withB)
			rw.(http.Flusher).Flush()
			// Without end: only the witness's bound stops the read.
			pad := bytes.Repeat([]byte("#\n"), 1<<16)
			for r.Context().Err() == nil {
				if _, err := rw.Write(pad); err != nil {
					return
				}
			}
		}},
		{name: "too large, by Content-Length", outcome: "too_large", handler: func(rw http.ResponseWriter, r *http.Request) {
			rw.Header().Set("Content-Length", fmt.Sprint(MaxLogListSize+1))
			io.WriteString(rw, withB)
		}},
		{name: "malformed", outcome: "malformed", handler: func(rw http.ResponseWriter, r *http.Request) {
			io.WriteString(rw, withB+"\nvkey "+b.vkey+"\nqpd 024\ncontact x\n")
		}},
		{name: "two logs with one origin", outcome: "malformed", handler: func(rw http.ResponseWriter, r *http.Request) {
			io.WriteString(rw, withB+listEntry(b.vkey, "", 1, "again"))
		}},
		{name: "file missing", outcome: "unreachable", file: func(dir string) string { return filepath.Join(dir, "missing") }},
		{name: "file is a directory", outcome: "unreachable", file: func(dir string) string { return dir }},
		{name: "file too large", outcome: "too_large", file: func(dir string) string {
			p := filepath.Join(dir, "big")
			writeFile(t, p, withB+strings.Repeat("#", MaxLogListSize))
			return p
		}},
		{name: "file malformed", outcome: "malformed", file: func(dir string) string {
			p := filepath.Join(dir, "bad")
			writeFile(t, p, strings.Replace(withB, "logs/v0", "logs/v1", 1))
			return p
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			goodList := filepath.Join(t.TempDir(), "good")
			writeFile(t, goodList, good)
			lw := openListWitness(t, dir, nil, LogListOptions{Source: goodList})
			if err := lw.ll.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			before, err := os.ReadFile(filepath.Join(dir, LearnedLogsFile))
			if err != nil {
				t.Fatal(err)
			}
			source := tc.source
			switch {
			case tc.handler != nil:
				src := httptest.NewServer(tc.handler)
				defer src.Close()
				source = src.URL + "/list"
			case tc.file != nil:
				source = tc.file(t.TempDir())
			}
			// The same witness, now reading the bad list.
			ll, err := OpenLogList(lw.w, &Config{Logs: map[string][]note.Verifier{}}, LogListOptions{Source: source, Timeout: tc.timeout})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := ll.Refresh(context.Background()); err == nil {
				t.Fatal("a bad list was applied")
			}
			if d := time.Since(start); tc.timeout > 0 && d > 5*time.Second {
				t.Errorf("the read took %v", d)
			}
			if got := lw.logs.lines("level=WARN", "unchanged", "outcome="+tc.outcome); len(got) != 1 {
				t.Errorf("WARN lines with outcome=%s: %q\nall:\n%s", tc.outcome, got, strings.Join(lw.logs.lines(""), "\n"))
			}
			if got := lw.metric(t, `cpantlog_witness_log_list_reads_total{outcome="`+tc.outcome+`"}`); got != "1" {
				t.Errorf("reads with outcome %s: %s", tc.outcome, got)
			}
			after, err := os.ReadFile(filepath.Join(dir, LearnedLogsFile))
			if err != nil || !bytes.Equal(before, after) {
				t.Errorf("the learned-logs file changed: %v\n%s", err, after)
			}
			if code, _ := lw.post(t, requestFor(t, b, "b.example/log", 0, 3)); code != http.StatusNotFound {
				t.Errorf("a log only the bad list names: %d, want 404", code)
			}
			if code, body := lw.post(t, a.request(t, 0, 3)); code != http.StatusOK {
				t.Errorf("the log the witness had: %d %s", code, body)
			}
		})
	}
}

// The configuration file's logs and the list's: a reload keeps what the
// list taught; a list giving a configured log another key is refused with
// both keys named; a key the witness cannot verify is not taken; a qpd or
// contact the list changes is not taken either.
func TestLogListWithConfigFile(t *testing.T) {
	x := namedLog(t, "x.example/log", 10)
	y := namedLog(t, "y.example/log", 10)
	a := namedLog(t, "a.example/log", 10)
	yOther := namedLog(t, "y.example/log", 10)
	pq := vkeyOfType("pq.example/log", 0x06, make([]byte, 1312))
	cfg, err := ParseConfig([]byte("log " + x.vkey + "\nlog " + y.vkey + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(t.TempDir(), "list")
	writeFile(t, list, "logs/v0\n"+listEntry(yOther.vkey, "", 24, "y")+listEntry(pq, "", 24, "pq")+listEntry(a.vkey, "", 24, "a@example")+listEntry(x.vkey, "", 48, "x"))
	dir := t.TempDir()
	lw := openListWitness(t, dir, cfg, LogListOptions{Source: list})
	for range 2 {
		if err := lw.ll.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := lw.ll.Learned(); len(got) != 1 || got[0].VKey != a.vkey {
		t.Fatalf("learned %+v, want only a's log", got)
	}
	if got := lw.logs.lines("level=WARN", "another key: refused", "origin=y.example/log", "kept_key="+y.vkey, "listed_key="+yOther.vkey); len(got) != 1 {
		t.Errorf("WARN for the configured log's new key: %q", got)
	}
	if got := lw.logs.lines("level=WARN", "cannot verify", "origin=pq.example/log", "key_type=0x06"); len(got) != 1 {
		t.Errorf("WARN for the key type: %q", got)
	}
	if got := lw.logs.lines("x.example"); len(got) != 0 {
		t.Errorf("the configured log the list names with its key is nothing to report: %q", got)
	}
	// The list changes a's contact and qpd.
	writeFile(t, list, "logs/v0\n"+listEntry(a.vkey, "", 86400, "new@example"))
	if err := lw.ll.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := lw.ll.Learned(); got[0].QPD != 24 || got[0].Contact != "a@example" {
		t.Errorf("learned %+v: the list changed it", got[0])
	}
	if got := lw.logs.lines("level=INFO", "keeps what it learned", "origin=a.example/log", "listed_qpd=86400"); len(got) != 1 {
		t.Errorf("INFO for the changed qpd: %q", got)
	}
	// A reload of the configuration file without x.
	cfg2, err := ParseConfig([]byte("log " + y.vkey + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	lw.ll.SetBase(cfg2)
	for _, c := range []struct {
		l      *fakeLog
		origin string
		code   int
	}{{x, "x.example/log", 404}, {y, "y.example/log", 200}, {a, "a.example/log", 200}, {yOther, "y.example/log", 403}} {
		if code, body := lw.post(t, requestFor(t, c.l, c.origin, 0, 2)); code != c.code {
			t.Errorf("%s after the reload: %d %s, want %d", c.origin, code, body, c.code)
		}
	}
	if got := lw.metric(t, "cpantlog_witness_logs"); got != "2" {
		t.Errorf("logs after the reload: %s", got)
	}
	if got := lw.ll.Known(); got != 2 {
		t.Errorf("Known %d", got)
	}
}

// The learned-logs file is the witness's own configuration: one that does
// not read is an error that names it, not an empty list.
func TestLogListLearnedFileDamaged(t *testing.T) {
	for name, tc := range map[string]struct{ content, line string }{
		"malformed":     {"logs/v0\nvkey " + rekorVKey + "\nqpd 0\ncontact x\n", "line 3"},
		"key type 0x06": {"logs/v0\nvkey " + vkeyOfType("pq.example/log", 0x06, make([]byte, 32)) + "\nqpd 1\ncontact x\n", "line 2"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := Keygen(dir, "w1.example"); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, LearnedLogsFile), tc.content)
			cfg := &Config{Logs: map[string][]note.Verifier{}}
			w, err := Open(dir, cfg, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			_, err = OpenLogList(w, cfg, LogListOptions{})
			if err == nil || !strings.Contains(err.Error(), LearnedLogsFile) || !strings.Contains(err.Error(), tc.line) {
				t.Errorf("OpenLogList: %v", err)
			}
		})
	}
	w := newWitness(t, t.TempDir(), newFakeLog(t, 1), 0)
	for _, src := range []string{"ftp://example.org/list", "file:///etc/list", "https://"} {
		if _, err := OpenLogList(w, nil, LogListOptions{Source: src}); err == nil {
			t.Errorf("source %q accepted", src)
		}
	}
}

// A new log the witness cannot write to learned-logs.list is not served:
// it would be forgotten at the next start. The next read that can write
// adds it.
func TestLogListStoreFailureChangesNothing(t *testing.T) {
	a := newFakeLog(t, 10)
	dir := t.TempDir()
	list := filepath.Join(t.TempDir(), "list")
	writeFile(t, list, "logs/v0\n"+listEntry(a.vkey, "", 24, "a@example"))
	lw := openListWitness(t, dir, nil, LogListOptions{Source: list})
	// A directory where the file goes, with something in it: the atomic
	// rename onto it fails.
	blocker := filepath.Join(dir, LearnedLogsFile)
	if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := lw.ll.Refresh(context.Background()); err == nil {
		t.Fatal("a list applied though its logs could not be stored")
	}
	if got := lw.logs.lines("level=WARN", "unchanged", "outcome=store_failed"); len(got) != 1 {
		t.Errorf("WARN: %q", got)
	}
	if code, _ := lw.post(t, a.request(t, 0, 3)); code != http.StatusNotFound {
		t.Errorf("a log not stored is served: %d", code)
	}
	if got := lw.ll.Learned(); len(got) != 0 {
		t.Errorf("learned %+v", got)
	}
	if got := lw.metric(t, `cpantlog_witness_log_list_reads_total{outcome="store_failed"}`); got != "1" {
		t.Errorf("store_failed reads: %s", got)
	}
	if err := os.RemoveAll(blocker); err != nil {
		t.Fatal(err)
	}
	if err := lw.ll.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, body := lw.post(t, a.request(t, 0, 3)); code != http.StatusOK {
		t.Errorf("after the store works again: %d %s", code, body)
	}
}
