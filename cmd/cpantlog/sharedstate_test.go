package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"

	"github.com/CPAN-Security/cpan-tlog/client"
	"github.com/CPAN-Security/cpan-tlog/internal/cpan"
)

// sharedWorld is one log key and three logs that use it: the honest log
// (size 3), the same log rolled back (the tree of size 2 it had), and a
// fork (size 3 with another third entry). Go and Perl share one trusted
// state.
type sharedWorld struct {
	smp                    []sampleFile
	honest, rolled, forked *testLog
	state                  string
}

func copyTree(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	if out, err := exec.Command("cp", "-a", from+"/.", to).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	return to
}

func newSharedWorld(t *testing.T) *sharedWorld { return newSharedWorldWith(t, false) }

// newSharedWorldWith: with index, the samples' 02packages is the first
// entry of every log (each size one more).
func newSharedWorldWith(t *testing.T, index bool) *sharedWorld {
	t.Helper()
	w := &sharedWorld{smp: samples(t), state: t.TempDir()}
	dir, _ := newLogKey(t)
	lg := startLog(t, dir)
	if index {
		lg.add(t, packagesPath, packagesIndex(packages), time.Now().UTC().Format(time.RFC3339))
	}
	lg.add(t, w.smp[0].path, w.smp[0].content, "2024-01-02T03:04:05Z")
	lg.add(t, w.smp[1].path, w.smp[1].content, "2024-01-02T03:04:05Z")
	lg.stop()
	rolled, forked := copyTree(t, dir), copyTree(t, dir)
	w.honest = startLog(t, dir)
	w.honest.add(t, w.smp[2].path, w.smp[2].content, "2024-01-02T03:04:05Z")
	w.rolled = startLog(t, rolled)
	w.forked = startLog(t, forked)
	w.forked.add(t, w.smp[3].path, w.smp[3].content, "2024-01-02T03:04:05Z")
	// The Perl hook reads a log's proof tree, which a log writes after the
	// checkpoint that covers an entry: wait until each log serves it.
	for _, lf := range []struct {
		lg   *testLog
		smps []sampleFile
	}{{w.honest, w.smp[:3]}, {w.rolled, w.smp[:2]}, {w.forked, []sampleFile{w.smp[0], w.smp[1], w.smp[3]}}} {
		for _, s := range lf.smps {
			waitProofServed(t, lf.lg.url, s)
		}
	}
	return w
}

// waitProofServed waits until the log at url serves the proof tree's
// file for s.
func waitProofServed(t *testing.T, url string, s sampleFile) {
	t.Helper()
	u := url + "/" + cpan.ProofPath(s.path, sha256.Sum256(s.content))
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the log did not serve the proof within 30 s (%v)", u, err)
		}
	}
}

// policy names the shared key with lg's URL.
func (w *sharedWorld) policy(t *testing.T, lg *testLog) string {
	vkey := mustRead(t, filepath.Join(w.honest.dir, "log.vkey"))
	return writePolicy(t, fmt.Sprintf("log %s %s\nquorum none\n", strings.TrimSpace(string(vkey)), lg.url))
}

// goVerify: cpantlog verify, online against lg.
func (w *sharedWorld) goVerify(t *testing.T, lg *testLog, s sampleFile) (int, string) {
	return cli(t, "verify", "--state", w.state, "--cache", "", "--cross-check=false", "--policy", w.policy(t, lg), "--path", s.path, s.local)
}

// goProof: cpantlog verify --proof, offline, with lg's proof of s.
func (w *sharedWorld) goProof(t *testing.T, lg *testLog, s sampleFile) (int, string) {
	p := filepath.Join(t.TempDir(), "p.tlog-proof")
	os.WriteFile(p, fetch(t, lg.url+"/proof?path="+s.path), 0o644)
	return cli(t, "verify", "--state", w.state, "--policy", w.policy(t, lg), "--proof", p, "--path", s.path, s.local)
}

// perlVerify: cpantlog-verify-pl with lg's proof of s, asking lg unless
// offline.
func (w *sharedWorld) perlVerify(t *testing.T, lg *testLog, s sampleFile, offline bool) (int, string) {
	p := filepath.Join(t.TempDir(), "p.tlog-proof")
	os.WriteFile(p, fetch(t, lg.url+"/proof?path="+s.path), 0o644)
	args := []string{"../../client/perl/bin/cpantlog-verify-pl", "--state", w.state, "--policy", w.policy(t, lg), "--proof", p, "--path", s.path, s.local}
	if offline {
		args = append(args, "--offline")
	}
	return runExit(t, exec.Command("perl", args...))
}

// perlHook: what cpanm-tlog, carton-tlog and the CPAN.pm plugin run for
// each file (CPAN::TLog::Cpanm::verify_bytes), with lg as the policy's log
// and no mirror proof.
func (w *sharedWorld) perlHook(t *testing.T, lg *testLog, s sampleFile) (int, string) {
	cmd := exec.Command("perl", "-I../../client/perl/lib", "-MCPAN::TLog::Cpanm", "-e",
		`open my $f, '<:raw', $ARGV[1] or die; local $/; my $b = <$f>; my ($c, $m) = CPAN::TLog::Cpanm::verify_bytes(undef, $ARGV[0], $b); print "$m\n" if $m; exit $c`,
		s.path, s.local)
	cmd.Env = append(os.Environ(), "CPANTLOG_STATE="+w.state, "CPANTLOG_POLICY="+w.policy(t, lg), "CPANTLOG_EXEC_CHECK=")
	return runExit(t, cmd)
}

func (w *sharedWorld) trustedSize(t *testing.T) uint64 {
	t.Helper()
	st, _ := client.OpenState(w.state)
	raw, err := st.Trusted("localhost/cpan-tlog")
	if err != nil || raw == nil {
		t.Fatalf("no trusted checkpoint: %v", err)
	}
	text, _, _ := bytes.Cut(raw, []byte("\n\n"))
	var c flog.Checkpoint
	if _, err := c.Unmarshal(append(text, '\n')); err != nil {
		t.Fatalf("trusted checkpoint: %v\n%s", err, raw)
	}
	return c.Size
}

// TestSharedStateGoThenPerl: a checkpoint cpantlog verify trusted holds
// for the Perl tools: the rolled-back log is a rollback for
// cpantlog-verify-pl and for the cpanm-tlog hook, the fork a fork, all
// exit 3.
func TestSharedStateGoThenPerl(t *testing.T) {
	if !perlAvailable(t) {
		t.Skip("no perl with CryptX")
	}
	w := newSharedWorld(t)
	if code, out := w.goVerify(t, w.honest, w.smp[2]); code != 0 {
		t.Fatalf("cpantlog verify against the honest log: exit %d\n%s", code, out)
	}
	if n := w.trustedSize(t); n != 3 {
		t.Fatalf("Go trusted size %d, want 3", n)
	}
	if code, out := w.perlVerify(t, w.rolled, w.smp[0], false); code != 3 || !strings.Contains(out, "rollback") {
		t.Errorf("cpantlog-verify-pl shown the rolled-back log: exit %d, want 3 (rollback)\n%s", code, out)
	}
	if code, out := w.perlHook(t, w.rolled, w.smp[0]); code != 3 || !strings.Contains(out, "rollback") {
		t.Errorf("the cpanm-tlog hook shown the rolled-back log: exit %d, want 3 (rollback)\n%s", code, out)
	}
	if code, out := w.perlVerify(t, w.forked, w.smp[3], true); code != 3 || !strings.Contains(out, "fork") {
		t.Errorf("cpantlog-verify-pl offline, shown the fork: exit %d, want 3 (fork)\n%s", code, out)
	}
	if code, out := w.perlHook(t, w.forked, w.smp[3]); code != 3 || !strings.Contains(out, "fork") {
		t.Errorf("the cpanm-tlog hook shown the fork: exit %d, want 3 (fork)\n%s", code, out)
	}
	// The honest log still verifies, and its older proofs are proven
	// consistent with what Go trusted.
	if code, out := w.perlVerify(t, w.honest, w.smp[0], false); code != 0 {
		t.Errorf("cpantlog-verify-pl, the honest log: exit %d\n%s", code, out)
	}
	if n := w.trustedSize(t); n != 3 {
		t.Errorf("trusted size %d after the Perl runs, want 3 (never back)", n)
	}
}

// TestSharedStatePerlThenGo: a checkpoint the Perl tools trusted holds
// for cpantlog verify.
func TestSharedStatePerlThenGo(t *testing.T) {
	if !perlAvailable(t) {
		t.Skip("no perl with CryptX")
	}
	w := newSharedWorld(t)
	if code, out := w.perlHook(t, w.honest, w.smp[2]); code != 0 {
		t.Fatalf("the cpanm-tlog hook against the honest log: exit %d\n%s", code, out)
	}
	if n := w.trustedSize(t); n != 3 {
		t.Fatalf("Perl trusted size %d, want 3", n)
	}
	if code, out := w.goVerify(t, w.rolled, w.smp[0]); code != 3 || !strings.Contains(out, "rollback") {
		t.Errorf("cpantlog verify shown the rolled-back log: exit %d, want 3 (rollback)\n%s", code, out)
	}
	if code, out := w.goProof(t, w.forked, w.smp[3]); code != 3 || !strings.Contains(out, "fork") {
		t.Errorf("cpantlog verify --proof shown the fork: exit %d, want 3 (fork)\n%s", code, out)
	}
	if code, out := w.goVerify(t, w.forked, w.smp[3]); code != 3 || !strings.Contains(out, "fork") {
		t.Errorf("cpantlog verify shown the forked log: exit %d, want 3 (fork)\n%s", code, out)
	}
	if code, out := w.goVerify(t, w.honest, w.smp[1]); code != 0 {
		t.Errorf("cpantlog verify, the honest log: exit %d\n%s", code, out)
	}
}

// TestSharedStateConcurrent: Go and Perl advance one trusted state at the
// same time while the log grows; every run verifies, and the state read
// at any moment is a whole checkpoint signed by the log, never smaller
// than one read before.
func TestSharedStateConcurrent(t *testing.T) {
	if !perlAvailable(t) {
		t.Skip("no perl with CryptX")
	}
	w := newSharedWorld(t)
	vkey := strings.Fields(strings.SplitN(string(mustRead(t, w.policy(t, w.honest))), "\n", 2)[0])[1]
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var watch sync.WaitGroup
	var last uint64
	var bad []string
	watch.Add(1)
	go func() {
		defer watch.Done()
		file := filepath.Join(w.state, client.OriginDirName("localhost/cpan-tlog"), fmt.Sprintf("key-%08x", verifier.KeyHash()), "checkpoint")
		for {
			select {
			case <-stop:
				return
			default:
			}
			raw, err := os.ReadFile(file)
			if err != nil {
				continue
			}
			n, err := note.Open(raw, note.VerifierList(verifier))
			if err != nil {
				bad = append(bad, fmt.Sprintf("torn or unsigned state: %v: %q", err, raw))
				continue
			}
			size, _ := strconv.ParseUint(strings.Split(n.Text, "\n")[1], 10, 64)
			if size < last {
				bad = append(bad, fmt.Sprintf("the state went back from %d to %d", last, size))
			}
			last = size
			time.Sleep(time.Millisecond)
		}
	}()
	var runs sync.WaitGroup
	var mu sync.Mutex
	var failed []string
	const rounds = 8
	for i := 0; i < rounds; i++ {
		// The log grows between rounds; in every other round Go starts
		// late, so that the two Perl writers race each other first.
		s := w.smp[4+i%(len(w.smp)-4)]
		w.honest.Add(t, fmt.Sprintf("authors/id/R/RO/ROUND/R%d-%s", i, filepath.Base(s.path)), s.content, "2024-01-02T03:04:05Z", true)
		goLate := time.Duration(i%2) * 700 * time.Millisecond
		for _, f := range []func() (int, string){
			func() (int, string) { time.Sleep(goLate); return w.goVerify(t, w.honest, w.smp[i%3]) },
			func() (int, string) { return w.perlVerify(t, w.honest, w.smp[i%3], false) },
			func() (int, string) { return w.perlHook(t, w.honest, w.smp[(i+1)%3]) },
		} {
			runs.Add(1)
			go func() {
				defer runs.Done()
				if code, out := f(); code != 0 {
					mu.Lock()
					failed = append(failed, fmt.Sprintf("exit %d\n%s", code, out))
					mu.Unlock()
				}
			}()
		}
		runs.Wait()
	}
	close(stop)
	watch.Wait()
	for _, f := range failed {
		t.Error(f)
	}
	for _, b := range bad {
		t.Error(b)
	}
	if n := w.trustedSize(t); n != 3+rounds {
		t.Errorf("trusted size %d at the end, want %d (the log's)", n, 3+rounds)
	}
}

// perlVerifyAsking: cpantlog-verify-pl with from's proof of s, the policy
// naming ask's URL.
func (w *sharedWorld) perlVerifyAsking(t *testing.T, from, ask *testLog, s sampleFile) (int, string) {
	p := filepath.Join(t.TempDir(), "p.tlog-proof")
	os.WriteFile(p, fetch(t, from.url+"/proof?path="+s.path), 0o644)
	return runExit(t, exec.Command("perl", "../../client/perl/bin/cpantlog-verify-pl", "--state", w.state, "--policy", w.policy(t, ask), "--proof", p, "--path", s.path, s.local))
}

// TestSharedStateOlderCheckpoints: once the trusted checkpoint is newer
// than a proof's, the Perl verifier proves the proof's checkpoint
// consistent with it from the log's tiles: an older honest proof
// verifies, a proof from the fork (a smaller tree than trusted, so no
// fork at the trusted size) is a fork, exit 3.
func TestSharedStateOlderCheckpoints(t *testing.T) {
	if !perlAvailable(t) {
		t.Skip("no perl with CryptX")
	}
	w := newSharedWorld(t)
	old := filepath.Join(t.TempDir(), "old.tlog-proof")
	os.WriteFile(old, fetch(t, w.honest.url+"/proof?path="+w.smp[2].path), 0o644) // at size 3
	w.honest.add(t, w.smp[4].path, w.smp[4].content, "2024-01-02T03:04:05Z")
	if code, out := w.goVerify(t, w.honest, w.smp[4]); code != 0 || w.trustedSize(t) != 4 {
		t.Fatalf("cpantlog verify: exit %d, trusted size %d\n%s", code, w.trustedSize(t), out)
	}
	cmd := exec.Command("perl", "../../client/perl/bin/cpantlog-verify-pl", "--state", w.state, "--policy", w.policy(t, w.honest), "--proof", old, "--path", w.smp[2].path, w.smp[2].local)
	if code, out := runExit(t, cmd); code != 0 {
		t.Errorf("cpantlog-verify-pl, an older honest proof (size 3, trusted 4): exit %d\n%s", code, out)
	}
	if code, out := w.perlVerifyAsking(t, w.forked, w.honest, w.smp[3]); code != 3 || !strings.Contains(out, "not consistent") {
		t.Errorf("cpantlog-verify-pl, the fork's proof at size 3 with size 4 trusted: exit %d, want 3 (not consistent)\n%s", code, out)
	}
	if w.trustedSize(t) != 4 {
		t.Errorf("trusted size %d, want 4", w.trustedSize(t))
	}
}

// TestSharedStateCpanmTlog: the real cpanm-tlog and cpantlog verify share
// one trusted state: after cpantlog verify trusted the honest log, the
// rolled-back log is a rollback for cpanm-tlog (exit 3, nothing
// installed); after cpanm-tlog installed through the honest log, it is
// one for cpantlog verify.
func TestSharedStateCpanmTlog(t *testing.T) {
	if !perlAvailable(t) {
		t.Skip("no perl with CryptX")
	}
	if _, err := exec.LookPath("cpanm"); err != nil {
		t.Skip("cpanm not installed")
	}
	w := newSharedWorldWith(t, true) // Try-Tiny is smp[0]
	_, mirror := buildMirror(t, w.smp)
	if code, out := w.goVerify(t, w.honest, w.smp[2]); code != 0 || w.trustedSize(t) != 4 {
		t.Fatalf("cpantlog verify: exit %d\n%s", code, out)
	}
	r := cpanmTlog(t, w.policy(t, w.rolled), []string{"CPANTLOG_STATE=" + w.state}, "--mirror", mirror, "Try::Tiny")
	if r.code != 3 || installed(r.lib, "Try/Tiny.pm") || !strings.Contains(r.out, "rollback") {
		t.Errorf("cpanm-tlog shown the rolled-back log after cpantlog verify: exit %d, want 3 (rollback), nothing installed\n%s", r.code, r.out)
	}

	w.state = t.TempDir()
	r = cpanmTlog(t, w.policy(t, w.honest), []string{"CPANTLOG_STATE=" + w.state}, "--mirror", mirror, "Try::Tiny")
	if r.code != 0 || !installed(r.lib, "Try/Tiny.pm") || w.trustedSize(t) != 4 {
		t.Fatalf("cpanm-tlog through the honest log: exit %d\n%s", r.code, r.out)
	}
	if code, out := w.goVerify(t, w.rolled, w.smp[0]); code != 3 || !strings.Contains(out, "rollback") {
		t.Errorf("cpantlog verify shown the rolled-back log after cpanm-tlog: exit %d, want 3 (rollback)\n%s", code, out)
	}
}
