package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"

	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/witness"
)

// testWitness is a real witness on loopback.
type testWitness struct {
	url, vkey string
	stop      func()
}

func startWitness(t *testing.T, name, logVKey string) *testWitness {
	t.Helper()
	w := testlog.StartWitness(t, name, logVKey)
	return &testWitness{url: w.URL, vkey: w.VKey, stop: w.Stop}
}

func checkpointSize(t *testing.T, url string) uint64 {
	t.Helper()
	var size uint64
	cp := string(fetch(t, url+"/checkpoint"))
	lines := strings.Split(cp, "\n")
	if len(lines) < 2 {
		t.Fatalf("checkpoint %q", cp)
	}
	fmt.Sscan(lines[1], &size)
	return size
}

// TestWitnessedLog runs a real log with two real witnesses and a policy
// that needs both: checkpoints carry both cosignatures and verify; with one
// witness down the log keeps taking adds but publishes nothing (fail
// closed), or, with --witness-fail-open, publishes checkpoints that the
// client refuses.
func TestWitnessedLog(t *testing.T) {
	smp := samples(t)
	logDir, logVKey := newLogKey(t) // keys first, so witnesses can be configured
	w1 := startWitness(t, "w1.example", logVKey)
	w2 := startWitness(t, "w2.example", logVKey)
	policyText := func(logURL string) string {
		return fmt.Sprintf("log %s %s\nwitness w1 %s %s\nwitness w2 %s %s\ngroup both all w1 w2\nquorum both\n",
			logVKey, logURL, w1.vkey, w1.url, w2.vkey, w2.url)
	}
	// The log reads the same policy; its log line needs no URL for that.
	lg := startLogWith(t, tlog.Config{DataDir: logDir, WitnessPolicy: []byte(policyText("http://127.0.0.1:1"))})
	policy := writePolicy(t, policyText(lg.url))
	state := t.TempDir()

	lg.add(t, smp[0].path, smp[0].content, "2024-01-02T03:04:05Z")
	cp := string(fetch(t, lg.url+"/checkpoint"))
	if !strings.Contains(cp, "\u2014 w1.example ") || !strings.Contains(cp, "\u2014 w2.example ") {
		t.Fatalf("published checkpoint lacks a cosignature:\n%s", cp)
	}
	code, out := cli(t, "verify", smp[0].local, "--policy", policy, "--state", state)
	if code != 0 || !strings.Contains(out, "cosigned by: w1, w2") {
		t.Fatalf("verify with both witnesses: exit %d\n%s", code, out)
	}
	proofFile := t.TempDir() + "/p.tlog-proof"
	if code, out := cli(t, "proof", smp[0].path, "-o", proofFile, "--policy", policy, "--state", state); code != 0 {
		t.Fatalf("proof: %d %s", code, out)
	}
	if code, out := cli(t, "verify", "--proof", proofFile, smp[0].local, "--policy", policy, "--state", state); code != 0 {
		t.Fatalf("offline verify of a cosigned proof: %d %s", code, out)
	}

	// One witness down, fail closed: adds are acknowledged, nothing is published.
	w2.stop()
	before := checkpointSize(t, lg.url)
	req, _ := http.NewRequest("POST", lg.url+"/add", strings.NewReader(fmt.Sprintf(`{"path":%q,"size":%d,"sha256":"%x","uploader":"RJBS","time":"2024-01-02T03:04:05Z"}`, smp[1].path, len(smp[1].content), sha(smp[1].content))))
	req.Header.Set("Authorization", "Bearer "+lg.log.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("add with a witness down: %v %v", err, resp)
	}
	resp.Body.Close()
	time.Sleep(1500 * time.Millisecond) // many checkpoint intervals
	if after := checkpointSize(t, lg.url); after != before {
		t.Errorf("a checkpoint of size %d was published without the quorum (fail closed expected)", after)
	}
	code, out = cli(t, "verify", smp[1].local, "--policy", policy, "--state", state)
	if code != 1 || !strings.Contains(out, "does not cover it yet") {
		t.Errorf("verify of an entry no cosigned checkpoint covers: exit %d\n%s", code, out)
	}

	// Fail open: the log publishes, the client refuses the checkpoint.
	lg.stop()
	lg = startLogWith(t, tlog.Config{DataDir: logDir, WitnessPolicy: []byte(policyText("http://127.0.0.1:1")), WitnessFailOpen: true, WitnessTimeout: time.Second})
	policy = writePolicy(t, policyText(lg.url))
	deadline := time.Now().Add(20 * time.Second)
	for checkpointSize(t, lg.url) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("fail-open log published no checkpoint of size 2")
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, out = cli(t, "verify", smp[1].local, "--policy", policy, "--state", state)
	if code != 1 || !strings.Contains(out, "not cosigned by the policy's quorum") || !strings.Contains(out, "cosigned by: w1") {
		t.Errorf("verify against a checkpoint lacking w2: exit %d\n%s", code, out)
	}
}

// TestNewLogStartsWithWitnessDown: Tessera fails to create a log whose
// first checkpoint cannot be cosigned; ours starts anyway.
func TestNewLogStartsWithWitnessDown(t *testing.T) {
	logDir, logVKey := newLogKey(t)
	w1 := startWitness(t, "w1.example", logVKey)
	w1.stop()
	policy := fmt.Sprintf("log %s\nwitness w1 %s %s\nquorum w1\n", logVKey, w1.vkey, w1.url)
	lg := startLogWith(t, tlog.Config{DataDir: logDir, WitnessPolicy: []byte(policy), WitnessTimeout: time.Second})
	smp := samples(t)
	req, _ := http.NewRequest("POST", lg.url+"/add", strings.NewReader(fmt.Sprintf(`{"path":%q,"size":1,"sha256":"%064x","uploader":"ETHER","time":"2024-01-02T03:04:05Z"}`, smp[0].path, 1)))
	req.Header.Set("Authorization", "Bearer "+lg.log.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("add to a new log whose witness is down: %v %v", err, resp)
	}
	resp.Body.Close()
	if _, err := os.Stat(logDir + "/tree/checkpoint"); err == nil {
		t.Error("a checkpoint was published without the witness")
	}
}

// TestNewWitnessRepublishes: a log restarted with a policy naming a new
// witness serves a checkpoint that witness cosigned within 5 s, without
// any add.
func TestNewWitnessRepublishes(t *testing.T) {
	smp := samples(t)
	logDir, logVKey := newLogKey(t)
	lg := startLogWith(t, tlog.Config{DataDir: logDir})
	lg.add(t, smp[0].path, smp[0].content, "2024-01-02T03:04:05Z")
	lg.stop()

	w1 := startWitness(t, "w1.example", logVKey)
	policy := fmt.Sprintf("log %s http://127.0.0.1:1\nwitness w1 %s %s\ngroup g any w1\nquorum g\n", logVKey, w1.vkey, w1.url)
	start := time.Now()
	lg = startLogWith(t, tlog.Config{DataDir: logDir, WitnessPolicy: []byte(policy), CheckpointInterval: time.Second})
	for {
		cp := string(fetch(t, lg.url+"/checkpoint"))
		if strings.Contains(cp, "\u2014 w1.example ") {
			t.Logf("cosigned by the new witness %s after the restart", time.Since(start).Round(100*time.Millisecond))
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("after 5 s the checkpoint still lacks the new witness's cosignature:\n%s", cp)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCrossCheckCatchesFrozenView: the log shows this client size 8 while
// a witness of the policy cosigned a size-9 fork signed with the log's key.
// Past --max-view-lag, cpantlog verify (cross-checking by default, as the
// policy names a witness URL) exits 3 with both notes as evidence; a
// cached witness view is not fetched again within the hour.
func TestCrossCheckCatchesFrozenView(t *testing.T) {
	smp := samples(t)
	dir, logVKey := newLogKey(t)
	lg := startLog(t, dir)
	for _, s := range smp {
		lg.add(t, s.path, s.content, "2024-01-02T03:04:05Z")
	}
	w1 := startWitness(t, "w1.example", logVKey)
	cp8 := fetch(t, lg.url+"/checkpoint")
	testlog.AddCheckpoint(t, w1.url, 0, nil, cp8)
	policy := writePolicy(t, fmt.Sprintf("log %s %s\nwitness w1 %s %s\nquorum none\n", logVKey, lg.url, w1.vkey, w1.url))
	cached := t.TempDir()
	verifyArgs := func(state string) []string {
		return []string{"verify", smp[0].local, "--policy", policy, "--state", state, "--max-view-lag", "1s"}
	}
	if code, out := cli(t, verifyArgs(cached)...); code != 0 {
		t.Fatalf("consistent witness: exit %d\n%s", code, out)
	}

	fork, proof := lg.Fork(t, 8, []byte("cpan-tlog/v1 upload\npath authors/id/E/EV/EVIL/Evil-1.0.tar.gz\nsize 4\nsha256 "+strings.Repeat("ab", 32)+"\nuploader EVIL\ntime 2024-01-02T03:04:05Z\n"))
	testlog.AddCheckpoint(t, w1.url, 8, proof, fork)
	time.Sleep(2100 * time.Millisecond) // past the 1 s lag, in whole seconds of the cosignature

	if code, out := cli(t, verifyArgs(cached)...); code != 0 {
		t.Errorf("within the hour the cached witness view is used: exit %d\n%s", code, out)
	}
	state := t.TempDir()
	code, out := cli(t, verifyArgs(state)...)
	if code != 3 || !strings.Contains(out, "stale view") || !strings.Contains(out, "w1") {
		t.Fatalf("frozen view: exit %d\n%s", code, out)
	}
	evidence, _ := filepath.Glob(filepath.Join(state, "*", "evidence", "*"))
	if len(evidence) != 1 {
		t.Fatalf("evidence directories: %v", evidence)
	}
	trusted, _ := os.ReadFile(filepath.Join(evidence[0], "trusted.checkpoint"))
	offered, _ := os.ReadFile(filepath.Join(evidence[0], "offered.checkpoint"))
	if !bytes.Equal(trusted, cp8) || !bytes.HasPrefix(offered, fork) || !bytes.Contains(offered, []byte("\u2014 w1.example ")) {
		t.Errorf("evidence:\ntrusted:\n%s\noffered:\n%s", trusted, offered)
	}
	if code, _ := cli(t, append(verifyArgs(t.TempDir()), "--cross-check=false")...); code != 0 {
		t.Errorf("--cross-check=false: exit %d", code)
	}

	// Anyone may post to add-checkpoint: the same fork again with a forged
	// line under the witness's own name and key hash. The witness keeps
	// only what it verified, so the stale view is still caught.
	testlog.AddCheckpoint(t, w1.url, 9, nil, append(bytes.Clone(fork), forgedLine(t, "w1.example", w1.vkey)...))
	time.Sleep(2100 * time.Millisecond) // the witness cosigned again: past the lag again
	code, out = cli(t, verifyArgs(t.TempDir())...)
	if code != 3 || !strings.Contains(out, "stale view") {
		t.Errorf("frozen view after the witness was sent a poisoned note: exit %d\n%s", code, out)
	}
}

// forgedLine is a signature line under a witness's name and key hash
// whose signature is zeros.
func forgedLine(t *testing.T, name, vkey string) string {
	t.Helper()
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 4+8+64)
	binary.BigEndian.PutUint32(sig, v.KeyHash())
	binary.BigEndian.PutUint64(sig[4:], uint64(time.Now().Unix()))
	return "\u2014 " + name + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
}

// TestCrossCheckRefusesUnopenableView: a witness that serves a note with a
// forged line under its own key (one that every verifier rejects whole)
// makes the cross-check "could not check" (exit 2), never a silent pass.
func TestCrossCheckRefusesUnopenableView(t *testing.T) {
	smp := samples(t)
	dir, logVKey := newLogKey(t)
	lg := startLog(t, dir)
	lg.add(t, smp[0].path, smp[0].content, "2024-01-02T03:04:05Z")
	w1 := startWitness(t, "w1.example", logVKey)
	cp := fetch(t, lg.url+"/checkpoint")
	testlog.AddCheckpoint(t, w1.url, 0, nil, cp)
	good := fetch(t, w1.url+"/"+witness.OriginID(tlog.DefaultOrigin)+"/checkpoint")
	// The forged line stands before the witness's real cosignature, as
	// in a note a witness stored byte for byte and appended its own to.
	i := bytes.Index(good, []byte("\n\n")) + 2
	served := slices.Concat(good[:i], []byte(forgedLine(t, "w1.example", w1.vkey)), good[i:])
	relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(served) }))
	defer relay.Close()
	policy := writePolicy(t, fmt.Sprintf("log %s %s\nwitness w1 %s %s\nquorum none\n", logVKey, lg.url, w1.vkey, relay.URL))
	code, out := cli(t, "verify", smp[0].local, "--policy", policy, "--state", t.TempDir())
	if code != 2 || !strings.Contains(out, "could not check") || !strings.Contains(out, "w1") {
		t.Errorf("witness view with a forged line: exit %d, want 2 (could not check)\n%s", code, out)
	}
	// After the real cosignature: note.Open verifies only the first line
	// under a key and skipped this one (C2SP signed-note: reject whole).
	served = slices.Concat(good, []byte(forgedLine(t, "w1.example", w1.vkey)))
	code, out = cli(t, "verify", smp[0].local, "--policy", policy, "--state", t.TempDir())
	if code != 2 || !strings.Contains(out, "could not check") || !strings.Contains(out, "does not verify") {
		t.Errorf("witness view with a forged line after its cosignature: exit %d, want 2 (could not check)\n%s", code, out)
	}
	served = good
	if code, out := cli(t, "verify", smp[0].local, "--policy", policy, "--state", t.TempDir()); code != 0 {
		t.Errorf("the same witness serving a clean view: exit %d\n%s", code, out)
	}
}

// TestHealthzTellsTheTruth: with the witness unreachable, acknowledged
// entries wait for a checkpoint; /healthz answers 503 with the reason once
// they waited longer than the threshold, and 200 again once the witness is
// back and a checkpoint covers them. Metrics say how long they waited.
func TestHealthzTellsTheTruth(t *testing.T) {
	smp := samples(t)
	logDir, logVKey := newLogKey(t)
	w1 := startWitness(t, "w1.example", logVKey)
	target, _ := url.Parse(w1.url)
	rp := httputil.NewSingleHostReverseProxy(target)
	var down atomic.Bool
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer front.Close()
	policy := fmt.Sprintf("log %s\nwitness w1 %s %s\nquorum w1\n", logVKey, w1.vkey, front.URL)
	lg := startLogWith(t, tlog.Config{DataDir: logDir, WitnessPolicy: []byte(policy), WitnessTimeout: time.Second, MaxPublishLag: 2 * time.Second})
	lg.add(t, smp[0].path, smp[0].content, "2024-01-02T03:04:05Z")
	healthz := func() (int, string) {
		resp, err := http.Get(lg.url + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := healthz(); code != 200 {
		t.Fatalf("healthy log: %d %s", code, body)
	}
	down.Store(true)
	lg.Add(t, smp[1].path, smp[1].content, "2024-01-02T03:04:05Z", false)
	waitFor := func(what string, within time.Duration, ok func(int, string) bool) (int, string) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			code, body := healthz()
			if ok(code, body) {
				return code, body
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: /healthz still %d %s after %s", what, code, body, within)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	_, body := waitFor("witness down", 10*time.Second, func(code int, _ string) bool { return code == 503 })
	if !strings.Contains(body, "not covered by the published checkpoint") || !strings.Contains(body, "witness") {
		t.Errorf("503 without the reason: %s", body)
	}
	m := string(fetch(t, lg.url+"/metrics"))
	frontHost := strings.TrimPrefix(front.URL, "http://")
	if !strings.Contains(m, `cpantlog_witness_requests_total{outcome="200",witness="`+frontHost+`"}`) || !strings.Contains(m, `cpantlog_witness_requests_total{outcome="503",witness="`+frontHost+`"}`) {
		t.Errorf("witness requests by outcome:\n%s", grepLines(m, "cpantlog_witness_requests_total"))
	}
	if !strings.Contains(m, "cpantlog_integrated_size 2") || !strings.Contains(m, "cpantlog_published_checkpoint_size 1") || strings.Contains(m, "cpantlog_unpublished_seconds 0\n") {
		t.Errorf("metrics while the witness is down:\n%s", grepLines(m, "cpantlog_integrated_size", "cpantlog_published_checkpoint_size", "cpantlog_unpublished_seconds"))
	}
	down.Store(false)
	waitFor("witness back", 15*time.Second, func(code int, _ string) bool { return code == 200 })
}

func grepLines(s string, prefixes ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
			}
		}
	}
	return strings.Join(out, "\n")
}
