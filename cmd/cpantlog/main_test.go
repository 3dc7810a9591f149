package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/internal/testlog"
	tlog "github.com/CPAN-Security/cpan-tlog/log"
)

// testLog is a real log server on loopback.
type testLog struct {
	*testlog.Log
	url  string
	dir  string
	log  *tlog.Log
	stop func()
}

// newLogKey makes a log's key pair in a new data directory, before the log
// starts, so that witnesses and policies can name the key first.
func newLogKey(t testing.TB) (dir, vkey string) {
	t.Helper()
	dir = t.TempDir()
	vkey, err := tlog.Keygen(dir, tlog.DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	return dir, vkey
}

func startLog(t testing.TB, dir string) *testLog {
	t.Helper()
	return startLogWith(t, tlog.Config{DataDir: dir})
}

// startLogWith starts a log with test-friendly intervals; stop ends it.
func startLogWith(t testing.TB, cfg tlog.Config) *testLog {
	t.Helper()
	cfg.ShutdownTimeout = 2 * time.Second
	l := testlog.Start(t, cfg)
	return &testLog{Log: l, url: l.URL, dir: l.Dir, log: l.Log, stop: l.Stop}
}

// add logs a file and waits for a checkpoint covering it.
func (tl *testLog) add(t testing.TB, cpanPath string, content []byte, when string) {
	t.Helper()
	tl.Add(t, cpanPath, content, when, true)
}

type sampleFile struct {
	path    string // CPAN path
	local   string // a copy in a CPAN-shaped tree
	content []byte
}

func samples(t testing.TB) []sampleFile {
	t.Helper()
	sums, err := os.ReadFile("../../testdata/SHA256SUMS")
	if err != nil {
		t.Fatal(err)
	}
	tree := t.TempDir()
	var out []sampleFile
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for sc.Scan() {
		_, p, _ := strings.Cut(sc.Text(), "  ")
		b, err := os.ReadFile(filepath.Join("../../testdata", p))
		if err != nil {
			t.Fatal(err)
		}
		local := filepath.Join(tree, p)
		os.MkdirAll(filepath.Dir(local), 0o755)
		if err := os.WriteFile(local, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, sampleFile{path: p, local: local, content: b})
	}
	return out
}

// cli runs cpantlog in-process and returns its exit code and output.
func cli(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String() + errOut.String()
}

// runExit runs an outside command, a real CPAN client or the Perl
// verifier, and returns its exit code and combined output. A command that
// could not be run at all fails the test rather than reading as exit 0.
func runExit(t testing.TB, cmd *exec.Cmd) (int, string) {
	t.Helper()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatalf("%s: %v", cmd.Path, err)
	}
	return 0, string(out)
}

func writePolicy(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVerifySamplesOnlineAndOffline(t *testing.T) {
	tl := startLog(t, t.TempDir())
	smp := samples(t)
	for _, s := range smp {
		tl.add(t, s.path, s.content, "2024-01-02T03:04:05Z")
	}
	policy := writePolicy(t, fmt.Sprintf("log %s %s\nquorum none\n", tl.log.VerifierKey(), tl.url))
	state := t.TempDir()
	common := []string{"--policy", policy, "--state", state, "--cache", t.TempDir()}
	proofs := t.TempDir()
	for _, s := range smp {
		code, out := cli(t, append([]string{"verify", s.local}, common...)...)
		if code != 0 || !strings.Contains(out, "verified "+s.path) || !strings.Contains(out, "checkpoint size 8") {
			t.Errorf("verify %s: exit %d\n%s", s.path, code, out)
		}
		pf := filepath.Join(proofs, filepath.Base(s.path)+".tlog-proof")
		if code, out := cli(t, append([]string{"proof", s.path, "-o", pf}, common...)...); code != 0 {
			t.Fatalf("proof %s: exit %d\n%s", s.path, code, out)
		}
		// Offline: a policy whose log URL goes nowhere proves no network is used.
		offline := writePolicy(t, fmt.Sprintf("log %s http://127.0.0.1:9\nquorum none\n", tl.log.VerifierKey()))
		code, out = cli(t, "verify", "--proof", pf, s.local, "--policy", offline, "--state", state)
		if code != 0 || !strings.Contains(out, "verified "+s.path) {
			t.Errorf("offline verify %s: exit %d\n%s", s.path, code, out)
		}
	}

	// The same tiles read from the log's directory, as a mirror of the
	// static files would hold them, prove the same inclusion.
	dirFetcher, err := client.NewFetcher(filepath.Join(tl.dir, tlog.TreeDir), "")
	if err != nil {
		t.Fatal(err)
	}
	v, err := client.NewVerifier(mustPolicy(t, policy), "", "", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := dirFetcher.ReadCheckpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Policy.VerifyCheckpoint(raw); err != nil || !bytes.Equal(raw, fetch(t, tl.url+"/checkpoint")) {
		t.Errorf("checkpoint read from the tree directory: %v", err)
	}
	if b, err := dirFetcher.ReadEntryBundle(context.Background(), 0, 8); err != nil || !bytes.Equal(b, fetch(t, tl.url+"/tile/entries/000.p/8")) {
		t.Errorf("entry bundle read from the tree directory differs from the served one: %v", err)
	}

	tryTiny, testFatal := smp[0], smp[len(smp)-2]
	tryProof := filepath.Join(proofs, filepath.Base(tryTiny.path)+".tlog-proof")
	tampered := filepath.Join(t.TempDir(), "authors/id/E/ET/ETHER/Try-Tiny-0.31.tar.gz")
	os.MkdirAll(filepath.Dir(tampered), 0o755)
	bad := bytes.Clone(tryTiny.content)
	bad[len(bad)/2] ^= 1
	os.WriteFile(tampered, bad, 0o644)
	unlogged := filepath.Join(t.TempDir(), "authors/id/N/NO/NOBODY/Nothing-1.0.tar.gz")
	os.MkdirAll(filepath.Dir(unlogged), 0o755)
	os.WriteFile(unlogged, []byte("nothing"), 0o644)
	proofText, _ := os.ReadFile(tryProof)
	lines := strings.Split(string(proofText), "\n")
	truncated := writeFile(t, string(proofText[:len(proofText)/2]))
	reordered := writeFile(t, strings.Join(append([]string{lines[0], lines[2], lines[1]}, lines[3:]...), "\n"))
	swapped := writeFile(t, strings.Join(append([]string{lines[0], lines[1], lines[2], lines[4], lines[3]}, lines[5:]...), "\n"))

	other := startLog(t, t.TempDir()) // another log, another key, same origin
	unknownKey := writePolicy(t, fmt.Sprintf("log %s %s\nquorum none\n", other.log.VerifierKey(), tl.url))
	needsWitness := writePolicy(t, fmt.Sprintf("log %s %s\nwitness w1 w1.example+c0af1b75+BNNMhMsS2n+lIkP/fn4+3QCvf2ITDaSl4FX2dxDn8/Hy http://127.0.0.1:9\nquorum w1\n", tl.log.VerifierKey(), tl.url))

	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"one byte changed", append([]string{"verify", tampered}, common...), 1, "does not match the log"},
		{"one byte changed, offline", []string{"verify", "--proof", tryProof, tampered, "--policy", policy, "--state", state}, 1, "does not match"},
		{"never logged", append([]string{"verify", unlogged}, common...), 1, "not in the log"},
		{"proof for another file", []string{"verify", "--proof", tryProof, testFatal.local, "--policy", policy, "--state", state}, 1, "not " + testFatal.path},
		{"unknown log key", []string{"verify", tryTiny.local, "--policy", unknownKey, "--state", t.TempDir()}, 1, "not signed by the policy's log key"},
		{"unknown log key, offline", []string{"verify", "--proof", tryProof, tryTiny.local, "--policy", unknownKey, "--state", t.TempDir()}, 1, "not signed by the policy's log key"},
		{"missing witness cosignature", []string{"verify", tryTiny.local, "--policy", needsWitness, "--state", t.TempDir()}, 1, "not cosigned by the policy's quorum"},
		{"missing witness cosignature, offline", []string{"verify", "--proof", tryProof, tryTiny.local, "--policy", needsWitness, "--state", t.TempDir()}, 1, "quorum"},
		{"truncated proof", []string{"verify", "--proof", truncated, tryTiny.local, "--policy", policy, "--state", state}, 2, "malformed tlog-proof"},
		{"reordered proof", []string{"verify", "--proof", reordered, tryTiny.local, "--policy", policy, "--state", state}, 2, "malformed tlog-proof"},
		{"missing file outside a CPAN tree", []string{"verify", filepath.Join(t.TempDir(), "Nope-1.0.tar.gz"), "--policy", policy, "--state", state}, 2, "no such file"},
		{"proof hashes swapped", []string{"verify", "--proof", swapped, tryTiny.local, "--policy", policy, "--state", state}, 1, "inclusion proof does not verify"},
		{"no file", append([]string{"verify"}, common...), 2, "exactly one FILE"},
		{"no path", append([]string{"verify", writeFile(t, "x")}, common...), 2, "--path"},
		{"no policy", []string{"verify", tryTiny.local, "--policy", filepath.Join(t.TempDir(), "none")}, 2, "policy"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out := cli(t, c.args...)
			if code != c.code || !strings.Contains(out, c.want) {
				t.Errorf("exit %d, want %d; output should contain %q:\n%s", code, c.code, c.want, out)
			}
		})
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, []byte(content), 0o644)
	return p
}

// TestForkAndRollback: a client that trusted the real log meets a second
// instance with the same key and origin but another history (what a
// compromised log shows a victim), and a mirror replaying an old checkpoint.
func TestForkAndRollback(t *testing.T) {
	smp := samples(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	a := startLog(t, dirA)
	for _, f := range []string{tlog.KeyFile, tlog.VKeyFile} {
		b, _ := os.ReadFile(filepath.Join(dirA, f))
		os.WriteFile(filepath.Join(dirB, f), b, 0o600)
	}
	b := startLog(t, dirB)
	if a.log.VerifierKey() != b.log.VerifierKey() {
		t.Fatal("the fork does not share the key")
	}
	// Same files, different times: same sizes, different roots.
	for i, s := range smp[:4] {
		a.add(t, s.path, s.content, "2024-01-02T03:04:05Z")
		b.add(t, s.path, s.content, fmt.Sprintf("2025-01-02T03:04:0%dZ", i))
	}
	oldCheckpoint := fetch(t, a.url+"/checkpoint")
	a.add(t, smp[4].path, smp[4].content, "2024-01-02T03:04:05Z")

	policy := writePolicy(t, fmt.Sprintf("log %s %s\nquorum none\n", a.log.VerifierKey(), a.url))
	state := t.TempDir()
	if code, out := cli(t, "verify", smp[4].local, "--policy", policy, "--state", state); code != 0 {
		t.Fatalf("verify against the real log: %d\n%s", code, out)
	}

	// Size 4 from the fork, after trusting size 5 of the real log: rollback.
	code, out := cli(t, "verify", smp[0].local, "--policy", policy, "--state", state, "--log", b.url)
	if code != 3 || !strings.Contains(out, "SECURITY ERROR") || !strings.Contains(out, "trusted until now") {
		t.Errorf("fork at a smaller size: exit %d\n%s", code, out)
	}
	// The fork grows past the real log: not consistent.
	b.add(t, smp[5].path, smp[5].content, "2025-01-02T03:04:05Z")
	b.add(t, smp[6].path, smp[6].content, "2025-01-02T03:04:05Z")
	code, out = cli(t, "verify", smp[0].local, "--policy", policy, "--state", state, "--log", b.url)
	if code != 3 || !strings.Contains(out, "fork") {
		t.Errorf("fork at a larger size: exit %d\n%s", code, out)
	}
	// Same size, other root.
	stateB := t.TempDir()
	a.add(t, smp[7].path, smp[7].content, "2024-01-02T03:04:05Z") // a: 6 entries
	b.add(t, smp[7].path, smp[7].content, "2025-01-02T03:04:05Z") // b: 7 entries
	polB := writePolicy(t, fmt.Sprintf("log %s %s\nquorum none\n", a.log.VerifierKey(), b.url))
	// A victim first meets the fork, which logged the same bytes: it verifies.
	if code, out := cli(t, "verify", smp[0].local, "--policy", polB, "--state", stateB); code != 0 {
		t.Fatalf("victim's first look at the fork: exit %d\n%s", code, out)
	}
	a.add(t, "authors/id/X/XY/XYZ/Extra-1.tar.gz", []byte("x"), "2024-01-02T03:04:05Z") // a: 7 entries
	code, out = cli(t, "verify", smp[7].local, "--policy", policy, "--state", stateB)
	if code != 3 || !strings.Contains(out, "two checkpoints of size 7") {
		t.Errorf("fork at the same size: exit %d\n%s", code, out)
	}
	ev, _ := filepath.Glob(filepath.Join(stateB, "*", "evidence", "*", "offered.checkpoint"))
	if len(ev) == 0 {
		t.Error("no evidence saved for the fork")
	}

	// A mirror in front of the real log replays the old checkpoint.
	target, _ := url.Parse(a.url)
	proxy := httputil.NewSingleHostReverseProxy(target)
	mirror := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/checkpoint" {
			w.Write(oldCheckpoint)
			return
		}
		proxy.ServeHTTP(w, r)
	})}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go mirror.Serve(ln)
	defer mirror.Close()
	code, out = cli(t, "verify", smp[0].local, "--policy", policy, "--state", state, "--log", "http://"+ln.Addr().String())
	if code != 3 || !strings.Contains(out, "rollback") {
		t.Errorf("rollback through a mirror: exit %d\n%s", code, out)
	}
}

func fetch(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}

func sha(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

func mustPolicy(t *testing.T, file string) *client.Policy {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p, err := client.ParsePolicy(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
