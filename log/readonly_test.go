package log

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/CPAN-Security/cpan-tlog/client"
)

// TestReadOnlyFrontEnds: one writer and two read-only front ends on the
// same storage serve identical answers, which the client verifies through
// each of them; the front ends refuse adds.
func TestReadOnlyFrontEnds(t *testing.T) { forStorages(t, testReadOnlyFrontEnds) }

func testReadOnlyFrontEnds(t *testing.T, storage string) {
	st := onStorage(t, storage)
	dirW := t.TempDir()
	w := startServer(t, dirW, st)
	smp := samples(t)
	for _, x := range smp {
		if code, b, _ := w.do("POST", "/add?wait=1", w.log.Token(), x.request()); code != 200 {
			t.Fatalf("add: %d %s", code, b)
		}
	}
	// Front ends see what the writer's follower has indexed (on S3 they
	// share its database index); let it catch up.
	if err := w.log.follow.catchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	var fronts []*server
	for range 2 {
		dir := t.TempDir()
		vkey, _ := os.ReadFile(filepath.Join(dirW, VKeyFile))
		os.WriteFile(filepath.Join(dir, VKeyFile), vkey, 0o644)
		if storage == StoragePOSIX {
			// A POSIX front end reads the writer's tree through a shared mount.
			if err := os.Symlink(filepath.Join(dirW, TreeDir), filepath.Join(dir, TreeDir)); err != nil {
				t.Fatal(err)
			}
		}
		fronts = append(fronts, startServer(t, dir, st, func(c *Config) { c.ReadOnly = true }))
	}
	_, wantCP, _ := w.do("GET", "/checkpoint", "", "")
	policy, err := client.ParsePolicy([]byte(fmt.Sprintf("log %s\nquorum none\n", w.log.VerifierKey())))
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range fronts {
		if code, cp, _ := f.do("GET", "/checkpoint", "", ""); code != 200 || string(cp) != string(wantCP) {
			t.Errorf("front end %d checkpoint: %d\n%s", i, code, cp)
		}
		if code, body, _ := f.do("POST", "/add", w.log.Token(), smp[0].request()); code != 405 || !strings.Contains(string(body), "read-only") {
			t.Errorf("front end %d took an add: %d %s", i, code, body)
		}
		st, _ := client.OpenState(t.TempDir())
		v, err := client.NewVerifier(policy, "", f.url, st, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range smp {
			_, want, _ := w.do("GET", "/lookup?path="+x.path, "", "")
			if code, got, _ := f.do("GET", "/lookup?path="+x.path, "", ""); code != 200 || string(got) != string(want) {
				t.Errorf("front end %d lookup %s: %d %s, writer says %s", i, x.path, code, got, want)
			}
			var sum [32]byte
			hex.Decode(sum[:], []byte(x.sha256))
			res, err := v.VerifyFile(context.Background(), client.File{Path: x.path, Size: x.size, SHA256: sum})
			if err != nil {
				t.Fatalf("verify %s through front end %d: %v", x.path, i, err)
			}
			if res.Checkpoint.Size != uint64(len(smp)) {
				t.Errorf("front end %d verified against size %d", i, res.Checkpoint.Size)
			}
		}
	}
}
