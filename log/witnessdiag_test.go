package log_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/internal/httpserver"
	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/witness"
)

// realWitness is our witness package on loopback, whose configuration
// the test changes while it runs.
type realWitness struct {
	*witness.Witness
	URL, VKey string
}

func startRealWitness(t *testing.T, name, logVKey string) *realWitness {
	t.Helper()
	dir := t.TempDir()
	vkey, err := witness.Keygen(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	w, err := witness.Open(dir, witnessConfig(t, logVKey), 1000, slog.New(slog.NewTextHandler(io.Discard, nil)))
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
	t.Cleanup(func() { cancel(); <-done })
	return &realWitness{Witness: w, URL: "http://" + ln.Addr().String(), VKey: vkey}
}

func witnessConfig(t *testing.T, logVKey string) *witness.Config {
	t.Helper()
	c, err := witness.ParseConfig([]byte("log " + logVKey + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type lines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lines) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *lines) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestWitnessRefusingDiagnosed runs a log with two real witnesses on
// loopback, a quorum of any one. w2 is configured with another key for
// the log's origin from the start, w1 rightly; then w1 is reconfigured
// with the wrong key too, and back. Each change of a witness's state is
// one line on the log's stderr (a WARN naming the witness, the status
// and body it answered, and the log's key to give it), however often the
// log asks; /healthz is 200 "degraded" naming w2 while w1 cosigns, 503
// naming both within one publish interval of an add once neither does;
// POST /add?wait=1 then answers 503 with the reason at once, not after a
// minute; the refusing gauge says which; and all clears when w1 is
// fixed.
func TestWitnessRefusingDiagnosed(t *testing.T) {
	const interval = time.Second
	dir := filepath.Join(t.TempDir(), "data")
	vkey, err := tlog.Keygen(dir, tlog.DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	_, wrongVKey, err := note.GenerateKey(rand.Reader, tlog.DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	w1 := startRealWitness(t, "w1.example", vkey)
	w2 := startRealWitness(t, "w2.example", wrongVKey)
	policy := fmt.Sprintf("witness w1 %s %s\nwitness w2 %s %s\ngroup g any w1 w2\nquorum g\n", w1.VKey, w1.URL, w2.VKey, w2.URL)
	var logs lines
	l := testlog.Start(t, tlog.Config{DataDir: dir, WitnessPolicy: []byte(policy), CheckpointInterval: interval,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	n := 0
	add := func(wait bool) (int, string) {
		t.Helper()
		n++
		body := fmt.Sprintf(`{"path":"authors/id/A/AB/ABC/W-%d.tar.gz","size":%d,"sha256":"%064x","uploader":"ABC","time":"2024-01-02T03:04:05Z"}`, n, n, n)
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
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	warns := func(name string) int {
		return len(regexp.MustCompile(`level=WARN msg="witness refuses the log's checkpoints" witness=`+name+` `).FindAllString(logs.String(), -1))
	}

	// w2 refuses from the start, w1 cosigns: degraded, not unhealthy. w2
	// answers before w1 (no state to write) unless the quorum was met
	// first; each add is another publication.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, _ := add(true); code != 200 {
			t.Fatalf("add?wait=1 while w1 cosigns: %d", code)
		}
		code, body := get(t, l.URL+"/healthz")
		if code == 200 && strings.HasPrefix(body, "degraded: ") && strings.Contains(body, "witness w2 ("+w2.URL+") refusing") && strings.Contains(body, ": 403 ") && strings.Contains(body, vkey) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz with w2 refusing and w1 cosigning: %d %q, want 200 degraded naming w2, its 403 and the log's key\n%s", code, body, logs.String())
		}
	}

	// w1 now refuses too.
	w1.SetConfig(witnessConfig(t, wrongVKey))
	if code, _ := add(false); code != 200 {
		t.Fatalf("add: %d", code)
	}
	added := time.Now()
	for {
		code, body := get(t, l.URL+"/healthz")
		if code == 503 && strings.Contains(body, "quorum cannot be met") && strings.Contains(body, "witness w1 ("+w1.URL+") refusing") && strings.Contains(body, "witness w2") {
			break
		}
		if time.Since(added) > interval+time.Second { // one publish interval, and the round trips
			t.Fatalf("/healthz %s after an add with both witnesses refusing: %d %q", time.Since(added), code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	code, body := add(true)
	if code != 503 || !strings.Contains(body, "quorum cannot be met") || !strings.Contains(body, "w1 refusing (403") {
		t.Errorf("add?wait=1 with both witnesses refusing: %d %q, want 503 with the reason", code, body)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("add?wait=1 answered after %s, want once the next publication is refused", took)
	}
	time.Sleep(3 * interval) // the log asks again and again
	if warns("w1") != 1 || warns("w2") != 1 {
		t.Errorf("%d WARN lines for w1, %d for w2, want one each (one per change of state):\n%s", warns("w1"), warns("w2"), logs.String())
	}
	out := logs.String()
	for _, want := range []string{
		`status=403 reason="no signature by a trusted key of ` + tlog.DefaultOrigin + `"`,
		`the witness does not trust this log's key: give it this log's verifier key ` + vkey,
		`msg="the witness quorum cannot be met`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	_, metrics := get(t, l.URL+"/metrics")
	for _, want := range []string{
		fmt.Sprintf(`cpantlog_witness_refusing{name="w1",witness=%q} 1`, strings.TrimPrefix(w1.URL, "http://")),
		fmt.Sprintf(`cpantlog_witness_requests_total{outcome="403",witness=%q}`, strings.TrimPrefix(w1.URL, "http://")),
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// w1 fixed: cosigning again, said once, and healthy once more.
	w1.SetConfig(witnessConfig(t, vkey))
	deadline = time.Now().Add(10 * time.Second)
	for {
		code, _ := get(t, l.URL+"/healthz")
		if code == 200 && strings.Contains(logs.String(), `msg="witness cosigns the log's checkpoints again" witness=w1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz after w1 was fixed: %d", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := add(true); code != 200 {
		t.Errorf("add?wait=1 after w1 was fixed: %d %q", code, body)
	}
}

// TestWitnessRefusalHints: a witness that does not know the log's origin
// (404) is told to add the log with its key; a witness that cosigned
// another history under the log's key (the log restored from an old
// backup, or its key used elsewhere) refuses the log's next checkpoint,
// and the WARN says not to reset the witness but to read SECURITY.md.
func TestWitnessRefusalHints(t *testing.T) {
	const interval = 200 * time.Millisecond
	t.Run("unknown origin", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		vkey, err := tlog.Keygen(dir, tlog.DefaultOrigin)
		if err != nil {
			t.Fatal(err)
		}
		_, otherLog, err := note.GenerateKey(rand.Reader, "other.example/log")
		if err != nil {
			t.Fatal(err)
		}
		w := startRealWitness(t, "w1.example", otherLog)
		var logs lines
		l := testlog.Start(t, tlog.Config{DataDir: dir, WitnessPolicy: []byte(fmt.Sprintf("witness w1 %s %s\nquorum w1\n", w.VKey, w.URL)),
			CheckpointInterval: interval, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		want := `status=404 reason="unknown log origin \"localhost/cpan-tlog\"" check="the witness does not know this log's origin \"localhost/cpan-tlog\": add the log to its configuration with the verifier key ` + vkey
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
		if code, body := get(t, l.URL+"/healthz"); code != 503 || !strings.Contains(body, "witness w1 ("+w.URL+") refusing") || !strings.Contains(body, ": 404 ") {
			t.Errorf("/healthz: %d %q", code, body)
		}
	})
	t.Run("another history", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		vkey, err := tlog.Keygen(dir, tlog.DefaultOrigin)
		if err != nil {
			t.Fatal(err)
		}
		w := startRealWitness(t, "w1.example", vkey)
		var logs lines
		l := testlog.Start(t, tlog.Config{DataDir: dir, WitnessPolicy: []byte(fmt.Sprintf("witness w1 %s %s\nquorum w1\n", w.VKey, w.URL)),
			CheckpointInterval: interval, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		l.Add(t, "authors/id/A/AB/ABC/F-1.tar.gz", []byte("one"), "2024-01-02T03:04:05Z", true)
		// The witness cosigns a size-2 history the log never had.
		cp, proof := l.Fork(t, 1, []byte("a leaf the log never logged"))
		testlog.AddCheckpoint(t, w.URL, 1, proof, cp)
		l.Add(t, "authors/id/A/AB/ABC/F-2.tar.gz", []byte("two"), "2024-01-02T03:04:05Z", false)
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(logs.String(), `msg="witness refuses the log's checkpoints" witness=w1`) {
			if time.Now().After(deadline) {
				t.Fatalf("no WARN:\n%s", logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(3 * interval)
		out := logs.String()
		if !strings.Contains(out, "status=422") || !strings.Contains(out, "do not reset the witness; see SECURITY.md") {
			t.Errorf("the WARN does not name the 422 and the security hint:\n%s", out)
		}
		if n := strings.Count(out, `msg="witness refuses the log's checkpoints"`); n != 1 {
			t.Errorf("%d WARN lines, want 1", n)
		}
	})
}

// TestHangingWitnessDiagnosed: a witness that takes connections and never
// answers is "unreachable" once the witness timeout passes: one WARN,
// /healthz 200 "degraded" naming it (it may come back: the publish lag
// decides when that is too long), and POST /add?wait=1 answers 503 with
// the reason after the timeout, not after a minute.
func TestHangingWitnessDiagnosed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := tlog.Keygen(dir, tlog.DefaultOrigin); err != nil {
		t.Fatal(err)
	}
	_, wvkey, err := note.GenerateKey(rand.Reader, "w1.example")
	if err != nil {
		t.Fatal(err)
	}
	cv, err := fnote.VKeyToCosignatureV1(wvkey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { close(release); srv.Close() })
	var logs lines
	l := testlog.Start(t, tlog.Config{DataDir: dir, WitnessPolicy: []byte(fmt.Sprintf("witness w1 %s http://%s\nquorum w1\n", cv, ln.Addr())),
		CheckpointInterval: 200 * time.Millisecond, WitnessTimeout: 300 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	start := time.Now()
	req, _ := http.NewRequest("POST", l.URL+"/add?wait=1", strings.NewReader(`{"path":"authors/id/A/AB/ABC/H-1.tar.gz","size":1,"sha256":"`+strings.Repeat("ab", 32)+`","uploader":"ABC","time":"2024-01-02T03:04:05Z"}`))
	req.Header.Set("Authorization", "Bearer "+l.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(b), "witness w1 unreachable (no answer within the witness timeout)") {
		t.Errorf("add?wait=1 with the witness hanging: %d %q", resp.StatusCode, b)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("add?wait=1 answered after %s", took)
	}
	time.Sleep(time.Second) // more publications, more timeouts
	if code, body := get(t, l.URL+"/healthz"); code != 200 || !strings.HasPrefix(body, "degraded: witnesses: witness w1") || !strings.Contains(body, "unreachable") {
		t.Errorf("/healthz: %d %q, want 200 degraded naming w1", code, body)
	}
	if n := strings.Count(logs.String(), `msg="witness unreachable" witness=w1`); n != 1 {
		t.Errorf("%d WARN lines, want 1:\n%s", n, logs.String())
	}
}
