package log

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
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

	"github.com/CPAN-Security/cpan-tlog/log/decide/shared"
)

// TestStoppedWriterKeepsOneContentPerPath: writer A (a real process) is
// SIGSTOPped under 32 concurrent adds of fresh paths, while some of them
// are claimed in the database and not yet answered. While A is stopped,
// past its lease, writer B receives adds of those paths with other
// content: it answers 503 while A's claims are live and 409 once it has
// rolled them forward, never 200 for a path A had claimed. A is then
// resumed and its adds finish. The log holds one content per path (the
// claimed leaf may appear twice: a repeat, never a rewrite), every add
// acknowledged by either writer is at its index with its content, and
// B's other content is nowhere in the log. About 50 s: the lease is 30 s.
func TestStoppedWriterKeepsOneContentPerPath(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two real servers and waits out a 30 s lease; skipped in -short mode")
	}
	cfg := needS3(t)
	bin := buildServer(t)
	dataA := t.TempDir()
	urlA, cmdA := startBinary(t, bin, dataA, s3Flags(cfg)...)
	defer func() { cmdA.Process.Signal(syscall.SIGCONT); cmdA.Process.Signal(syscall.SIGKILL); cmdA.Wait() }()
	dataB := secondWriter(t, dataA)
	urlB, cmdB := startBinary(t, bin, dataB, s3Flags(cfg)...)
	defer func() { cmdB.Process.Signal(syscall.SIGTERM); cmdB.Wait() }()
	tok, _ := os.ReadFile(filepath.Join(dataA, TokenFile))
	token := string(tok)
	db, err := sql.Open("mysql", cfg.S3.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	absA, _ := filepath.Abs(dataA)

	// content of an add: the sha256 its leaf carries.
	content := func(n int) string { return fmt.Sprintf("%064x", n) }
	type add struct {
		path string
		n    int // addBody's n: the content
	}
	type ack struct {
		add
		index  uint64
		writer string
	}
	var mu sync.Mutex
	inFlight := map[string]int{} // path -> n, sent to A and not answered
	var acks []ack
	answersA := map[int]int{} // status code (0: no answer) -> count, after the stop
	stopped := false
	done := make(chan struct{})
	var wg sync.WaitGroup
	const clients = 32
	for c := range clients {
		wg.Go(func() {
			// A is stopped for longer than a lease: its clients wait.
			hc := &http.Client{Timeout: 5 * time.Minute}
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				a := add{fmt.Sprintf("authors/id/S/ST/STOP/C%d-%d.tar.gz", c, i), c*1000000 + i}
				mu.Lock()
				inFlight[a.path] = a.n
				mu.Unlock()
				code, idx := postCode(hc, urlA, token, addBody(a.path, a.n))
				mu.Lock()
				delete(inFlight, a.path)
				if code == 200 {
					acks = append(acks, ack{a, idx, "A"})
				}
				if stopped {
					answersA[code]++
				}
				mu.Unlock()
			}
		})
	}
	defer func() {
		// However the test ends, A's clients stop.
		select {
		case <-done:
		default:
			close(done)
		}
	}()

	// Stop A while some of its in-flight adds are claimed in the database.
	claimed := map[string][]byte{} // in-flight path -> A's claimed leaf
	var held map[string]int
	for try := 0; len(claimed) == 0; try++ {
		if try == 10 {
			t.Fatal("never stopped A while it held a claim of an unanswered add")
		}
		time.Sleep(time.Second)
		cmdA.Process.Signal(syscall.SIGSTOP)
		// Answers A wrote before the stop reach their clients.
		time.Sleep(300 * time.Millisecond)
		if st := procState(cmdA.Process.Pid); st != "T" {
			t.Fatalf("A is in state %q after SIGSTOP", st)
		}
		mu.Lock()
		held = map[string]int{}
		for p, n := range inFlight {
			held[p] = n
		}
		mu.Unlock()
		rows, err := db.Query(`SELECT path, claimed FROM cpantlog_paths WHERE claimed IS NOT NULL AND writer LIKE ?`, "%:"+absA)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var p string
			var leaf []byte
			if err := rows.Scan(&p, &leaf); err != nil {
				t.Fatal(err)
			}
			if n, ok := held[p]; ok {
				if !bytes.Contains(leaf, []byte("sha256 "+content(n)+"\n")) {
					t.Fatalf("A's claim of %s holds %q, not the content A was sent", p, leaf)
				}
				claimed[p] = leaf
			}
		}
		rows.Close()
		if len(claimed) == 0 {
			cmdA.Process.Signal(syscall.SIGCONT)
		}
	}
	stopAt := time.Now()
	mu.Lock()
	stopped = true
	ackedBefore := len(acks)
	mu.Unlock()
	t.Logf("A stopped with %d adds in flight, %d of them claimed in the database (%d adds acknowledged before)", len(held), len(claimed), ackedBefore)

	// B gets every in-flight path with other content, retried while it
	// answers 503, until it answers anything else or a lease and a half
	// has passed since the stop.
	answersB := map[string][]int{}
	conflicts := map[string]uint64{} // path -> the index B's 409 names
	other := func(n int) int { return n + 500000 }
	var bwg sync.WaitGroup
	for p, n := range held {
		bwg.Go(func() {
			hc := &http.Client{Timeout: 60 * time.Second}
			for {
				code, idx := postCode(hc, urlB, token, addBody(p, other(n)))
				mu.Lock()
				answersB[p] = append(answersB[p], code)
				if code == 200 {
					acks = append(acks, ack{add{p, other(n)}, idx, "B"})
				}
				if code == 409 {
					conflicts[p] = idx
				}
				mu.Unlock()
				if (code != 503 && code != 0) || time.Since(stopAt) > shared.Lease*3/2 {
					return
				}
				time.Sleep(time.Second)
			}
		})
	}
	bwg.Wait()
	past := time.Since(stopAt)
	summary := map[string]int{}
	for p, codes := range answersB {
		final := codes[len(codes)-1]
		for _, c := range codes {
			summary[fmt.Sprint(c)]++
		}
		if _, ok := claimed[p]; ok {
			if final == 200 {
				t.Errorf("B acknowledged other content for %s, which A had claimed (answers %v)", p, codes)
			}
			if final != 409 {
				t.Errorf("B's last answer for %s, claimed by A and past A's lease: %d, want 409 (answers %v)", p, final, codes)
			}
			if codes[0] != 503 {
				t.Errorf("B's first answer for %s, claimed by A and within A's lease: %d, want 503 (answers %v)", p, codes[0], codes)
			}
		}
		for _, c := range codes {
			if c != 409 && c != 503 && !(c == 200 && claimed[p] == nil) {
				t.Errorf("B answered %d for %s (answers %v); want 409 or 503", c, p, codes)
				break
			}
		}
	}
	t.Logf("B answered %v over %d paths (answer: count), %v after A's stop", summary, len(answersB), past.Round(time.Second))
	if summary["0"] > 0 {
		// B did not answer: show who holds locks in the database.
		if rows, err := db.Query(`SELECT trx_mysql_thread_id, trx_state, trx_started, trx_rows_locked, trx_rows_modified, COALESCE(trx_query, '') FROM information_schema.innodb_trx`); err == nil {
			for rows.Next() {
				var id, locked, modified int
				var state, started, query string
				rows.Scan(&id, &state, &started, &locked, &modified, &query)
				t.Logf("transaction of connection %d: %s since %s, %d rows locked, %d modified, running %.80q", id, state, started, locked, modified, query)
			}
			rows.Close()
		}
	}

	// A resumes: its in-flight adds finish.
	if st := procState(cmdA.Process.Pid); st != "T" {
		t.Errorf("A is in state %q before SIGCONT, not stopped", st)
	}
	mu.Lock()
	if n := len(acks) - ackedBefore - summary["200"]; n > 0 {
		t.Errorf("A acknowledged %d adds while stopped", n)
	}
	mu.Unlock()
	cmdA.Process.Signal(syscall.SIGCONT)
	close(done)
	wg.Wait()
	t.Logf("A's adds in flight at the stop answered %v (answer: count) after it resumed", answersA)

	// The log: one content per path, every acknowledgement at its index.
	var maxIdx uint64
	for _, a := range acks {
		maxIdx = max(maxIdx, a.index+1)
	}
	for _, i := range conflicts {
		maxIdx = max(maxIdx, i+1)
	}
	leaves := servedLeaves(t, urlB, dataB, maxIdx)
	pathRe := regexp.MustCompile(`(?m)^path (\S+)$`)
	shaRe := regexp.MustCompile(`(?m)^sha256 ([0-9a-f]{64})$`)
	contents := map[string]map[string][]uint64{} // path -> sha256 -> indexes
	for i, l := range leaves {
		p, s := pathRe.FindSubmatch(l), shaRe.FindSubmatch(l)
		if p == nil || s == nil {
			t.Fatalf("index %d holds %q", i, l)
		}
		if contents[string(p[1])] == nil {
			contents[string(p[1])] = map[string][]uint64{}
		}
		contents[string(p[1])][string(s[1])] = append(contents[string(p[1])][string(s[1])], uint64(i))
	}
	repeats := 0
	for p, cs := range contents {
		if len(cs) != 1 {
			t.Errorf("%s has %d contents in the log: %v", p, len(cs), cs)
		}
		for _, idx := range cs {
			if len(idx) > 1 {
				repeats++
			}
		}
	}
	for _, a := range acks {
		if got := contents[a.path][content(a.n)]; !containsIndex(got, a.index) {
			t.Errorf("%s acknowledged by %s at %d with content %d, the log holds it at %v (contents %v)", a.path, a.writer, a.index, a.n, got, contents[a.path])
		}
	}
	for p, n := range held {
		if _, ok := claimed[p]; ok {
			if idx, ok := contents[p][content(other(n))]; ok {
				t.Errorf("B's other content for %s, claimed by A, is in the log at %v", p, idx)
			}
			if _, ok := contents[p][content(n)]; !ok {
				t.Errorf("A's claimed content for %s is not in the log", p)
			}
			if i, ok := conflicts[p]; ok && !containsIndex(contents[p][content(n)], i) {
				t.Errorf("B's 409 for %s names index %d, which does not hold A's claimed content (contents %v)", p, i, contents[p])
			}
		}
	}
	t.Logf("%d entries, %d paths, %d acknowledged adds, %d paths with a repeated leaf", len(leaves), len(contents), len(acks), repeats)
}

func containsIndex(idx []uint64, i uint64) bool {
	for _, x := range idx {
		if x == i {
			return true
		}
	}
	return false
}

// postCode sends an add and gives the answer's status code (0 for none)
// and, for a 200 or 409, the index it names.
func postCode(hc *http.Client, base, token, body string) (int, uint64) {
	req, _ := http.NewRequest("POST", base+"/add", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(token))
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	var res struct{ Index uint64 }
	if resp.StatusCode == 200 || resp.StatusCode == 409 {
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
			return -1, 0
		}
	}
	return resp.StatusCode, res.Index
}

// servedLeaves waits for a checkpoint of at least size entries and gives
// every leaf it commits to, checked against its root hash.
func servedLeaves(t *testing.T, base, data string, size uint64) [][]byte {
	t.Helper()
	vkey, _ := os.ReadFile(filepath.Join(data, VKeyFile))
	v, err := note.NewVerifier(strings.TrimSpace(string(vkey)))
	if err != nil {
		t.Fatal(err)
	}
	var cp *flog.Checkpoint
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(base + "/checkpoint"); err == nil {
			var raw bytes.Buffer
			raw.ReadFrom(resp.Body)
			resp.Body.Close()
			if c, _, _, err := flog.ParseCheckpoint(raw.Bytes(), DefaultOrigin, v); err == nil && c.Size >= size {
				cp = c
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint of %d entries", size)
		}
	}
	u, _ := url.Parse(base + "/")
	f, _ := tclient.NewHTTPFetcher(u, nil)
	rng := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
	var leaves [][]byte
	for i := uint64(0); i < cp.Size; i += 256 {
		b, err := tclient.GetEntryBundle(context.Background(), f.ReadEntryBundle, i/256, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range b.Entries {
			leaves = append(leaves, l)
			rng.Append(rfc6962.DefaultHasher.HashLeaf(l), nil)
		}
	}
	if root, _ := rng.GetRootHash(nil); cp.Size > 0 && !bytes.Equal(root, cp.Hash) {
		t.Fatalf("entries hash to %x, the checkpoint says %x", root, cp.Hash)
	}
	return leaves
}

// procState is the state letter of process pid (T: stopped), from
// /proc/pid/stat.
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "?"
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i > 0 && i+2 < len(s) {
		return s[i+2 : i+3]
	}
	return "?"
}
