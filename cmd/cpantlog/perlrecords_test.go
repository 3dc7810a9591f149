package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPerlOldRecordsForkAtAnotherSize: the Perl tools before the shared
// state remembered every checkpoint's size and root in
// checkpoints/<sha256 of the origin>-<key ID>. This user's old records
// hold the fork's root at size 3; the log now shows the honest tree of
// size 4. The migration compared only records of the size shown now (4),
// then moved the records aside: the fork they held was never compared
// again, and cpantlog-verify-pl verified (exit 0). Online, each remembered
// checkpoint of another size must be consistent with the log's (from its
// tiles): here it is not, a fork, exit 3; and records that could not be
// compared (offline) are kept, not moved aside.
func TestPerlOldRecordsForkAtAnotherSize(t *testing.T) {
	if !perlAvailable(t) {
		t.Skip("no perl with CryptX")
	}
	for _, fork := range []bool{true, false} {
		w := newSharedWorld(t)
		from := w.honest
		if fork {
			from = w.forked
		}
		cp := string(fetch(t, from.url+"/checkpoint"))
		lines := strings.SplitN(cp, "\n", 4)
		if lines[1] != "3" {
			t.Fatalf("the checkpoint: %q", cp)
		}
		vkey := strings.TrimSpace(string(mustRead(t, filepath.Join(w.honest.dir, "log.vkey"))))
		id := strings.SplitN(vkey, "+", 3)[1]
		sum := sha256.Sum256([]byte(lines[0]))
		records := filepath.Join(w.state, "checkpoints", hex.EncodeToString(sum[:])+"-"+id)
		os.MkdirAll(filepath.Dir(records), 0o700)
		os.WriteFile(records, []byte("3 "+lines[2]+"\n"), 0o600)
		w.honest.add(t, w.smp[4].path, w.smp[4].content, "2024-01-02T03:04:05Z")

		// Offline: nothing to compare with; the records stay.
		p := filepath.Join(t.TempDir(), "p.tlog-proof")
		os.WriteFile(p, fetch(t, w.honest.url+"/proof?path="+w.smp[4].path), 0o644)
		offline := []string{"perl", "../../client/perl/bin/cpantlog-verify-pl", "--offline", "--state", w.state, "--policy", w.policy(t, w.honest), "--proof", p, "--path", w.smp[4].path, w.smp[4].local}
		runExit(t, exec.Command(offline[0], offline[1:]...))
		if _, err := os.Stat(records); err != nil {
			t.Errorf("the old records were moved aside offline, before they could be compared: %v", err)
		}
		code, out := w.perlVerifyAsking(t, w.honest, w.honest, w.smp[4])
		switch {
		case fork && (code != 3 || !strings.Contains(out, "fork")):
			t.Errorf("cpantlog-verify-pl with old records holding the fork's size-3 root, the log at size 4: exit %d, want 3 (fork)\n%s", code, out)
		case !fork && code != 0:
			t.Errorf("cpantlog-verify-pl with old records holding the honest size-3 root: exit %d, want 0\n%s", code, out)
		case !fork:
			if _, err := os.Stat(records); err == nil {
				t.Errorf("the old records, consistent with the log, were not moved aside")
			}
		}
	}
}
