package web

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
	"github.com/CPAN-Security/cpan-tlog/witness"
)

// step is one step of a drive.mjs job (see e2e/drive.mjs).
type step struct {
	Goto    string   `json:"goto,omitempty"`
	Wait    string   `json:"wait,omitempty"`
	File    string   `json:"file,omitempty"`
	Vectors []vector `json:"vectors,omitempty"`
	Leaves  []string `json:"leaves,omitempty"`
	Bench   *bench   `json:"bench,omitempty"`
	Read    []string `json:"read,omitempty"`
	Shot    string   `json:"shot,omitempty"`
}

// seen is what an element showed: its class, data-verdict and text.
type seen struct {
	Class   string  `json:"class"`
	Verdict *string `json:"verdict"`
	Text    string  `json:"text"`
	Visible bool    `json:"visible"`
}

type stepResult struct {
	Status   int              `json:"status"`
	Read     map[string]*seen `json:"read"`
	Verdicts []struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"verdicts"`
	Leaves []leafSeen `json:"leaves"`
	Bench  *struct {
		Code        int
		FirstMs, Ms float64
	} `json:"bench"`
	Errors []string `json:"errors"`
}

// drive runs steps in headless Chromium, driven by playwright-core
// (e2e/drive.mjs; .ci/run installs it with npm ci), with JavaScript on
// or off.
func drive(t testing.TB, js bool, steps ...step) []stepResult {
	t.Helper()
	node, err := exec.LookPath("node")
	_, modErr := os.Stat("e2e/node_modules/playwright-core")
	_, chrErr := exec.LookPath("chromium")
	if err != nil || modErr != nil || chrErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node, chromium or e2e/node_modules missing in CI (.ci/run installs them): %v %v %v", err, modErr, chrErr)
		}
		t.Skip("needs node, chromium and 'npm ci --prefix log/web/e2e'")
	}
	job, _ := json.Marshal(map[string]any{"js": js, "shots": artifacts(t), "steps": steps})
	jobFile := filepath.Join(t.TempDir(), "job.json")
	if err := os.WriteFile(jobFile, job, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "e2e/drive.mjs", jobFile).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("drive.mjs: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var res []stepResult
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(steps) {
		t.Fatalf("drive.mjs printed %v %s", err, out)
	}
	for i, r := range res {
		if len(r.Errors) > 0 {
			t.Errorf("step %d: the page reported errors: %q", i, r.Errors)
		}
	}
	return res
}

// keyID is a vkey's name+ID, as the page names keys.
func keyID(vkey string) string {
	parts := strings.SplitN(vkey, "+", 3)
	return parts[0] + "+" + parts[1]
}

func verdict(s *seen) string {
	if s == nil || s.Verdict == nil {
		return "none"
	}
	return *s.Verdict
}

// addEntry logs e and waits until the index and the checkpoint hold n
// entries.
func addEntry(t *testing.T, tl *testlog.Log, e *entry.Entry, n uint64) {
	t.Helper()
	if _, err := tl.Log.Add(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		cp, _ := tl.Reader().ReadCheckpoint(context.Background())
		if m, _ := tl.Index().Size(); m == n && strings.Contains(string(cp), fmt.Sprintf("\n%d\n", n)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("index did not catch up")
		}
	}
}

// TestBrowserChecksFiles picks files in the home page's "check a file"
// box: the browser hashes each, asks the log for its sha256 and verifies
// each entry's proof and logged size. The real tarball is in the log;
// the same sha256 logged with another size is no match (and remarkable);
// a tampered copy is "not in this log", with no claim about CPAN.
func TestBrowserChecksFiles(t *testing.T) {
	tl, srv := explorer(t)
	dir := t.TempDir()
	good, _ := os.ReadFile("../../testdata/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz")
	bad := []byte(string(good))
	bad[len(bad)/2] ^= 1
	lonely := []byte("a file logged with the wrong size\n")
	// The log holds Try-Tiny's sha256 a second time with another size,
	// and lonely's only with another size.
	when := time.Unix(1700000000, 0).UTC()
	addEntry(t, tl, &entry.Entry{Kind: entry.Upload, Path: "authors/id/E/EV/EVIL/Try-Tiny-0.31.tar.gz", Size: 1, SHA256: sha256.Sum256(good), Uploader: "EVIL", Time: when}, 10)
	addEntry(t, tl, &entry.Entry{Kind: entry.Upload, Path: "authors/id/E/EV/EVIL/Lonely-1.0.tar.gz", Size: uint64(len(lonely)) + 1, SHA256: sha256.Sum256(lonely), Uploader: "EVIL", Time: when}, 11)
	files := map[string][]byte{"Try-Tiny-0.31.tar.gz": good, "tampered.tar.gz": bad, "Lonely-1.0.tar.gz": lonely}
	var steps []step
	for _, name := range []string{"Try-Tiny-0.31.tar.gz", "tampered.tar.gz", "Lonely-1.0.tar.gz"} {
		os.WriteFile(filepath.Join(dir, name), files[name], 0o644)
		steps = append(steps, step{Goto: srv.URL + "/", File: filepath.Join(dir, name), Read: []string{"#check-result"}, Shot: "check-file-" + name})
	}
	res := drive(t, true, steps...)
	logKey := keyID(tl.Log.VerifierKey())

	real := res[0].Read["#check-result"]
	if real == nil || real.Class != "ok" || verdict(real) != "0" ||
		!strings.Contains(real.Text, "is in the log, verified in your browser: authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz at index") ||
		!strings.Contains(real.Text, "checked against the log key "+logKey) {
		t.Errorf("the real tarball: %+v", real)
	}
	// The entry with Try-Tiny's sha256 and size 1 is not listed as a
	// match, and is called out.
	if real != nil && (strings.Contains(real.Text, "EVIL/Try-Tiny-0.31.tar.gz at index 9 (1 bytes), ") || !strings.Contains(real.Text, "Remarkable: the log also has authors/id/E/EV/EVIL/Try-Tiny-0.31.tar.gz at index 9 (1 bytes) with this sha256 but another size")) {
		t.Errorf("the real tarball: the entry of another size is not set apart: %s", real.Text)
	}
	tampered := res[1].Read["#check-result"]
	if tampered == nil || tampered.Class != "bad" || verdict(tampered) != "1" || !strings.Contains(tampered.Text, "is not in this log") ||
		!strings.Contains(tampered.Text, "it knows only what it has logged") || strings.Contains(tampered.Text, "not a file CPAN published") {
		t.Errorf("the tampered copy: %+v", tampered)
	}
	sized := res[2].Read["#check-result"]
	if sized == nil || sized.Class != "bad" || verdict(sized) != "1" ||
		!strings.Contains(sized.Text, "is not a file this log holds: its sha256 is logged, but with another size: authors/id/E/EV/EVIL/Lonely-1.0.tar.gz at index 10") ||
		!strings.Contains(sized.Text, "should never happen") {
		t.Errorf("a file whose sha256 is logged with another size: %+v", sized)
	}
}

// TestBrowserWithoutJavaScript: with JavaScript off, the entry page shows
// the server's answer, labelled as the server's and not as verified,
// never "Verifying in your browser…"; the home page says how to check a
// file without it; both say which keys a check would use and how to
// compare them with one's policy. With JavaScript on, the browser's own
// verdict replaces the server's.
func TestBrowserWithoutJavaScript(t *testing.T) {
	tl, srv := explorer(t)
	recs, _ := tl.Index().ByPath("authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz")
	entryURL := fmt.Sprintf("%s/entry/%d", srv.URL, recs[0].Index)
	read := []string{"#verify-status", "#keys", "#key-log", "#key-quorum", "#check-noscript"}
	off := drive(t, false, step{Goto: entryURL, Read: read, Shot: "entry-no-js"}, step{Goto: srv.URL + "/", Read: read, Shot: "home-no-js"})
	on := drive(t, true, step{Goto: entryURL, Wait: "#verify-status", Read: read}, step{Goto: srv.URL + "/", Read: read})

	logKey := keyID(tl.Log.VerifierKey())
	st := off[0].Read["#verify-status"]
	want := fmt.Sprintf("The server's answer, not verified in your browser: this leaf is entry %d of the tree of size 9 that %s signed (root ", recs[0].Index, tl.Log.Origin())
	if st == nil || st.Class != "server" || !strings.HasPrefix(st.Text, want) || strings.Contains(st.Text, "Verifying") || verdict(st) != "none" {
		t.Errorf("entry page without JavaScript: %+v, want the server's answer %q…", st, want)
	}
	for i, page := range []string{"entry", "home"} {
		keys := off[i].Read["#keys"]
		if keys == nil || !keys.Visible || !strings.Contains(keys.Text, "which this server gave it") || !strings.Contains(keys.Text, "~/.config/cpantlog/policy") ||
			!strings.Contains(keys.Text, "cpantlog init --log URL --key VKEY") || !strings.Contains(keys.Text, tl.Log.VerifierKey()) {
			t.Errorf("%s page without JavaScript: the keys section %+v", page, keys)
		}
		if l := off[i].Read["#key-log"]; l == nil || !strings.Contains(l.Text, "key ID "+strings.Split(logKey, "+")[1]) {
			t.Errorf("%s page: the log key %+v", page, l)
		}
		if q := off[i].Read["#key-quorum"]; q == nil || !strings.Contains(q.Text, "this server names no witnesses") {
			t.Errorf("%s page: the witness policy %+v", page, q)
		}
	}
	if n := off[1].Read["#check-noscript"]; n == nil || !n.Visible || !strings.Contains(n.Text, "needs JavaScript") || !strings.Contains(n.Text, "not verified by your browser") {
		t.Errorf("home page without JavaScript: %+v", n)
	}

	if st := on[0].Read["#verify-status"]; st == nil || st.Class != "ok" || verdict(st) != "0" || !strings.HasPrefix(st.Text, "Verified in your browser") ||
		!strings.Contains(st.Text, "checked against the log key "+logKey) || !strings.Contains(st.Text, "no cosignature was checked") || !strings.Contains(st.Text, "compare them with your own policy") {
		t.Errorf("entry page with JavaScript: %+v", st)
	}
	if n := on[1].Read["#check-noscript"]; n != nil && n.Visible {
		t.Errorf("home page with JavaScript shows the no-JavaScript note: %+v", n)
	}
}

// mldsaLog is a real log cosigned by a real witness keyed Ed25519 (w1)
// and one keyed ML-DSA-44 (pq), under "group both 2 w1 pq" (the log and
// the explorer read the same policy), with Try-Tiny logged.
func mldsaLog(t *testing.T) (tl *testlog.Log, policy string, w1, pq *testlog.Witness) {
	logDir := t.TempDir()
	logVKey, err := tlog.Keygen(logDir, tlog.DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	w1 = testlog.StartWitness(t, "w1.example", logVKey)
	pq = testlog.StartWitnessWith(t, "pq.example", logVKey, witness.MLDSA44)
	policy = fmt.Sprintf("log %s\nwitness w1 %s %s\nwitness pq %s %s\ngroup both 2 w1 pq\nquorum both\n", logVKey, w1.VKey, w1.URL, pq.VKey, pq.URL)
	tl = testlog.Start(t, tlog.Config{DataDir: logDir, WitnessPolicy: []byte(policy)})
	b, _ := os.ReadFile("../../testdata/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz")
	tl.Add(t, "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz", b, "2024-01-02T03:04:05Z", true)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if n, _ := tl.Index().Size(); n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("index did not catch up")
		}
	}
	return tl, policy, w1, pq
}

// serveExplorer serves tl's API and the explorer under policy; with
// tamper, every answer of the log's API passes through it first.
func serveExplorer(t *testing.T, tl *testlog.Log, policy string, tamper func([]byte) []byte) string {
	ex, err := New(tl.Log, []byte(policy), "")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ex.Register(mux)
	api := tl.Log.Handler()
	if tamper != nil {
		inner := api
		api = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			inner.ServeHTTP(rec, r)
			for k, v := range rec.Header() {
				if k != "Content-Length" {
					w.Header()[k] = v
				}
			}
			w.WriteHeader(rec.Code)
			w.Write(tamper(rec.Body.Bytes()))
		})
	}
	mux.Handle("/", api)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestBrowserChecksMLDSA44Cosignatures: the entry page and the file check
// count a valid ML-DSA-44 cosignature (made by our witness with
// transparency-dev/formats' signer) toward the quorum, checked in the
// browser with the vendored @noble/post-quantum; with that cosignature
// flipped, or with only the Ed25519 witness's, the browser refuses.
func TestBrowserChecksMLDSA44Cosignatures(t *testing.T) {
	tl, policy, _, pq := mldsaLog(t)
	good := serveExplorer(t, tl, policy, nil)
	flipped := serveExplorer(t, tl, policy, func(b []byte) []byte { return testlog.FlipSignature(b, "pq.example") })
	dropped := serveExplorer(t, tl, policy, func(b []byte) []byte {
		return []byte(strings.ReplaceAll(string(b), "\n\u2014 pq.example ", "\n\u2014 gone.example "))
	})
	file := filepath.Join(t.TempDir(), "Try-Tiny-0.31.tar.gz")
	b, _ := os.ReadFile("../../testdata/authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz")
	os.WriteFile(file, b, 0o644)
	read := []string{"#verify-status", "#keys"}
	res := drive(t, true,
		step{Goto: good + "/entry/0", Wait: "#verify-status", Read: read, Shot: "entry-mldsa"},
		step{Goto: good + "/", File: file, Read: []string{"#check-result"}},
		step{Goto: flipped + "/entry/0", Wait: "#verify-status", Read: read, Shot: "entry-mldsa-flipped"},
		step{Goto: flipped + "/", File: file, Read: []string{"#check-result"}},
		step{Goto: dropped + "/entry/0", Wait: "#verify-status", Read: read},
	)
	pqKey := keyID(pq.VKey)
	if st := res[0].Read["#verify-status"]; st == nil || st.Class != "ok" || verdict(st) != "0" ||
		!strings.Contains(st.Text, "pq (ML-DSA-44 cosignature, key "+pqKey+")") || !strings.Contains(st.Text, "quorum both") {
		t.Errorf("entry page, valid ML-DSA-44 cosignature: %+v", st)
	}
	if k := res[0].Read["#keys"]; k == nil || !strings.Contains(k.Text, "witness pq") || !strings.Contains(k.Text, "ML-DSA-44 cosignature") || !strings.Contains(k.Text, pq.VKey) {
		t.Errorf("entry page: the keys section does not name pq's key: %+v", k)
	}
	if r := res[1].Read["#check-result"]; r == nil || r.Class != "ok" || verdict(r) != "0" || !strings.Contains(r.Text, "pq (ML-DSA-44 cosignature") {
		t.Errorf("check a file, valid ML-DSA-44 cosignature: %+v", r)
	}
	for i, what := range map[int]string{2: "entry page", 3: "check a file"} {
		sel := "#verify-status"
		if i == 3 {
			sel = "#check-result"
		}
		if r := res[i].Read[sel]; r == nil || r.Class != "bad" || verdict(r) != "1" || !strings.Contains(r.Text, "witness pq's cosignature on the checkpoint does not verify") {
			t.Errorf("%s, pq's ML-DSA-44 cosignature flipped: %+v", what, r)
		}
	}
	if r := res[4].Read["#verify-status"]; r == nil || r.Class != "bad" || verdict(r) != "1" || !strings.Contains(r.Text, "not cosigned by the log's witness quorum both (cosigned by: w1)") {
		t.Errorf("entry page without pq's cosignature: %+v", r)
	}
	// The server's own view (the home page's latest checkpoint) counts
	// pq's cosignature too.
	resp, err := http.Get(good + "/")
	if err != nil {
		t.Fatal(err)
	}
	home, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !regexp.MustCompile(`<dt>cosigned</dt><dd>[^<]*\bpq at `).Match(home) {
		t.Errorf("the home page does not list pq among the cosigners:\n%s", home)
	}
}

// TestBrowserCannotReadThePolicy: a log whose witness policy the explorer
// cannot read gets "could not check" in the browser, never "verified" on
// the log's signature alone.
func TestBrowserCannotReadThePolicy(t *testing.T) {
	tl, _, _, _ := mldsaLog(t)
	srv := serveExplorer(t, tl, "quorum nosuch\n", nil)
	res := drive(t, true, step{Goto: srv + "/entry/0", Wait: "#verify-status", Read: []string{"#verify-status", "#key-quorum"}})
	if st := res[0].Read["#verify-status"]; st == nil || st.Class != "unknown" || verdict(st) != "2" || !strings.Contains(st.Text, "Could not check in your browser") {
		t.Errorf("entry page under a policy the explorer cannot read: %+v", st)
	}
	if q := res[0].Read["#key-quorum"]; q == nil || !strings.Contains(q.Text, "cannot read") {
		t.Errorf("the keys section: %+v", q)
	}
}

// TestBrowserPlaysTheVectors: the page's check gives the shared vectors
// (testdata/vectors, made by cmd/cpantlog's tests from a real log and
// real witnesses) the verdict the Go client gives, entries refused as
// log/entry.Parse refuses them included.
func TestBrowserPlaysTheVectors(t *testing.T) {
	_, srv := explorer(t)
	dirs, _ := filepath.Glob("../../testdata/vectors/*")
	var vs []vector
	var wants []int
	var names []string
	mldsa := 0
	for _, dir := range dirs {
		name := filepath.Base(dir)
		if mode, _ := os.ReadFile(filepath.Join(dir, "mode")); strings.TrimSpace(string(mode)) == "mirror" {
			continue // a mirror's proof with the log down: the proxy's and the hook's case
		}
		if strings.HasPrefix(name, "policy-") {
			continue // the page's policy is the server's, read by the Go client (TestBrowserCannotReadThePolicy)
		}
		if _, err := os.Stat(filepath.Join(dir, "proof")); err != nil {
			continue
		}
		v, want := readVector(t, dir)
		if strings.HasPrefix(name, "mldsa-") {
			mldsa++
		}
		vs, wants, names = append(vs, v), append(wants, want), append(names, name)
	}
	if mldsa < 10 || len(vs) < 30 {
		t.Fatalf("only %d vectors (%d mldsa-*) in testdata/vectors", len(vs), mldsa)
	}
	res := drive(t, true, step{Goto: srv.URL + "/", Vectors: vs})
	if len(res[0].Verdicts) != len(vs) {
		t.Fatalf("%d verdicts for %d vectors", len(res[0].Verdicts), len(vs))
	}
	for i, name := range names {
		if got := res[0].Verdicts[i]; got.Code != wants[i] {
			t.Errorf("%s: the browser says %d (%s), want %d", name, got.Code, got.Message, wants[i])
		}
	}
	t.Logf("%d vectors played, %d of them mldsa-*", len(vs), mldsa)
}

// bench asks drive.mjs to time checkVector on Vector, N times.
type bench struct {
	Vector vector `json:"vector"`
	N      int    `json:"n"`
}

// vector is a shared test vector as the page's checkVector takes it.
type vector struct {
	Origin string `json:"origin"`
	VKey   string `json:"vkey"`
	Quorum string `json:"quorum"`
	Proof  string `json:"proof"` // base64
	Path   string `json:"path"`
	File   string `json:"file"` // base64
}

func readVector(t testing.TB, dir string) (vector, int) {
	t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	p, err := client.ParsePolicy([]byte(read("policy")))
	if err != nil || len(p.Logs) != 1 {
		t.Fatalf("%s: policy: %v", dir, err)
	}
	file, err := os.ReadFile(filepath.Join(dir, "file"))
	if err != nil {
		file, err = os.ReadFile(filepath.Join("../../testdata", strings.TrimSpace(read("source"))))
		if err != nil {
			t.Fatal(err)
		}
	}
	var want int
	if _, err := fmt.Sscan(read("want"), &want); err != nil {
		t.Fatal(err)
	}
	return vector{Origin: p.Logs[0].Origin, VKey: p.Logs[0].VKey, Quorum: quorumJSON(p), Proof: base64.StdEncoding.EncodeToString([]byte(read("proof"))),
		Path: strings.TrimSpace(read("path")), File: base64.StdEncoding.EncodeToString(file)}, want
}

func (s *seen) String() string {
	if s == nil {
		return "(no such element)"
	}
	return fmt.Sprintf("class %q, verdict %s, visible %v: %s", s.Class, verdict(s), s.Visible, s.Text)
}
