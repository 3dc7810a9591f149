package log

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	tclient "github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"
)

// TestSIGKILLLosesNothing kills the real cpantlog-server with SIGKILL 20
// times at random points during sustained concurrent ingest. After every
// restart, every acknowledged entry is in the log exactly once at the
// index it was acknowledged with, the entries hash to the checkpoint's
// root, and the lookup index agrees with the tree.
func TestSIGKILLLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a real server 20 times; skipped in -short mode")
	}
	forStorages(t, testSIGKILLLosesNothing)
}

func testSIGKILLLosesNothing(t *testing.T, storage string) {
	var cfg Config
	onStorage(t, storage)(&cfg)
	var extra []string
	if cfg.Storage == StorageS3 {
		extra = s3Flags(cfg)
	}
	bin := buildServer(t)
	data := t.TempDir()
	acked := map[string]uint64{} // path → acknowledged index
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(42, 42))
	next := 0
	for round := range 20 {
		url, cmd := startBinary(t, bin, data, extra...)
		token, _ := os.ReadFile(filepath.Join(data, TokenFile))
		checkAll(t, url, data, acked)
		// Sustained concurrent ingest, killed at a random moment.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				hc := &http.Client{Timeout: 5 * time.Second}
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					p := fmt.Sprintf("authors/id/C/CR/CRASH/R%d-W%d-%d.tar.gz", round, w, i)
					body := fmt.Sprintf(`{"path":%q,"size":%d,"sha256":"%064x","uploader":"CRASH","time":"2024-01-02T03:04:05Z"}`, p, i, next+w*100000+i)
					idx, ok, err := postAdd(hc, url, string(token), body)
					if err != nil {
						return // killed
					}
					if ok {
						mu.Lock()
						acked[p] = idx
						mu.Unlock()
					}
				}
			})
		}
		time.Sleep(time.Duration(100+r.IntN(500)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		close(stop)
		wg.Wait()
		next += 1000000
	}
	url, cmd := startBinary(t, bin, data, extra...)
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	checkAll(t, url, data, acked)
	if len(acked) < 200 {
		t.Errorf("only %d entries were acknowledged over 20 rounds", len(acked))
	}
	t.Logf("%d acknowledged entries survived 20 SIGKILLs", len(acked))
}

// postAdd sends an add to the log at base with the token (surrounding
// space ignored) and reports the acknowledged index, if it was; err is
// a failure to get any answer (a killed server).
func postAdd(hc *http.Client, base, token, body string) (idx uint64, ok bool, err error) {
	req, _ := http.NewRequest("POST", base+"/add", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(token))
	resp, err := hc.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	var res struct{ Index uint64 }
	ok = resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&res) == nil
	return res.Index, ok, nil
}

// buildServer builds the real cpantlog-server for a test to run and kill.
func buildServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cpantlog-server")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/cpantlog-server").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// s3Flags are the serve flags of a log on cfg's S3 + MySQL storage.
func s3Flags(cfg Config) []string {
	return []string{"--storage", "s3", "--s3-endpoint", cfg.S3.Endpoint, "--s3-bucket", cfg.S3.Bucket, "--mysql-dsn", cfg.S3.DSN, "--checkpoint-interval", "1s"}
}

func startBinary(t *testing.T, bin, data string, extra ...string) (string, *exec.Cmd) {
	t.Helper()
	args := append([]string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--checkpoint-interval", "100ms", "--no-explorer"}, extra...)
	cmd := exec.Command(bin, args...)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if m := regexp.MustCompile(`serving on (http://\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			go io.Copy(io.Discard, stdout)
			return m[1], cmd
		}
	}
	t.Fatal("server did not start")
	return "", nil
}

// checkAll waits for a checkpoint covering every acknowledged entry and
// checks the log against the acknowledgements.
func checkAll(t *testing.T, base, data string, acked map[string]uint64) {
	t.Helper()
	var maxIdx uint64
	for _, i := range acked {
		maxIdx = max(maxIdx, i+1)
	}
	vkey, _ := os.ReadFile(filepath.Join(data, VKeyFile))
	v, _ := note.NewVerifier(strings.TrimSpace(string(vkey)))
	var cp *flog.Checkpoint
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/checkpoint")
		if err == nil {
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if c, _, _, err := flog.ParseCheckpoint(raw, DefaultOrigin, v); err == nil && c.Size >= maxIdx {
				cp = c
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint covering index %d after restart", maxIdx)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Rebuild the tree from the served entry bundles.
	u, _ := url.Parse(base + "/")
	f, _ := tclient.NewHTTPFetcher(u, nil)
	rng := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
	leaves := map[uint64][]byte{}
	for i := uint64(0); i < cp.Size; i += 256 {
		b, err := tclient.GetEntryBundle(context.Background(), f.ReadEntryBundle, i/256, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		for j, l := range b.Entries {
			leaves[i+uint64(j)] = l
			rng.Append(rfc6962.DefaultHasher.HashLeaf(l), nil)
		}
	}
	if root, _ := rng.GetRootHash(nil); cp.Size > 0 && !bytes.Equal(root, cp.Hash) {
		t.Fatalf("entries hash to %x, checkpoint says %x", root, cp.Hash)
	}
	seen := map[string]int{}
	for _, l := range leaves {
		p := strings.SplitN(string(l), "\n", 3)[1]
		seen[strings.TrimPrefix(p, "path ")]++
	}
	for p, idx := range acked {
		if seen[p] != 1 {
			t.Fatalf("%s acknowledged at %d is in the log %d times", p, idx, seen[p])
		}
		if !strings.Contains(string(leaves[idx]), "path "+p+"\n") {
			t.Fatalf("%s acknowledged at %d, but index %d holds %q", p, idx, idx, leaves[idx])
		}
	}
	// The lookup index agrees with the tree, for a sample of paths.
	n := 0
	for p, idx := range acked {
		if n++; n > 50 {
			break
		}
		// The index follows the tree: on S3 the new process integrates what
		// the old one sequenced, and the index catches up a moment later.
		var lr LookupResponse
		for wait := time.Now().Add(10 * time.Second); ; {
			resp, err := http.Get(base + "/lookup?path=" + url.QueryEscape(p))
			if err != nil {
				t.Fatal(err)
			}
			lr = LookupResponse{}
			json.NewDecoder(resp.Body).Decode(&lr)
			resp.Body.Close()
			if len(lr.History) > 0 || time.Now().After(wait) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if lr.Index != idx || !bytes.Equal(lr.Entry, leaves[idx]) || len(lr.History) != 1 {
			t.Fatalf("lookup %s: %+v, want index %d", p, lr, idx)
		}
	}
}
