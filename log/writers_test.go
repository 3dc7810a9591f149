package log

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/log/decide/shared"
)

// needS3 skips a test of several writers without the S3 + MariaDB
// services, and gives the configuration of a fresh bucket and database.
func needS3(t *testing.T) Config {
	t.Helper()
	if !slices.Contains(storages(t), StorageS3) {
		t.Skip("needs CPANTLOG_TEST_S3_ENDPOINT and CPANTLOG_TEST_MYSQL_DSN")
	}
	var cfg Config
	onStorage(t, StorageS3)(&cfg)
	return cfg
}

// secondWriter makes a data directory for another writer of the log in
// first: the same key and token, as an operator copies them.
func secondWriter(t *testing.T, first string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{KeyFile, VKeyFile, TokenFile} {
		b, err := os.ReadFile(filepath.Join(first, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// pathsDB is the log's database of the writers on s3, for a test to read
// their path rows.
func pathsDB(t *testing.T, s3 Config) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", s3.S3.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// lateWriter makes c a writer on s3 whose adds outlive their 1 ms wait
// for Tessera (answered 503, the claim kept until Tessera answers), with
// a lease of 500 ms and, when batchAge is set, Tessera batching that long.
func lateWriter(c *Config, s3 Config, batchAge time.Duration) {
	c.Storage, c.S3, c.claimLease, c.sequenceWait = s3.Storage, s3.S3, 500*time.Millisecond, time.Millisecond
	if batchAge > 0 {
		c.BatchMaxAge = batchAge
	}
}

func addBody(path string, n int) string {
	return fmt.Sprintf(`{"path":%q,"size":%d,"sha256":"%064x","uploader":"RACE","time":"2024-01-02T03:04:05Z"}`, path, n+1, n)
}

// TestSeveralWritersOneFilePerPath: two writers on one bucket and
// database, 30 paths each added at the same moment with different content
// at each writer: one 200 and one 409 per path, the 409 naming the 200's
// index, and the log holds each path once. An identical re-submission at
// the other writer gets the same index.
func TestSeveralWritersOneFilePerPath(t *testing.T) {
	s3 := needS3(t)
	useS3 := func(c *Config) { c.Storage, c.S3 = s3.Storage, s3.S3 }
	a := startServer(t, t.TempDir(), useS3)
	b := startServer(t, secondWriter(t, a.dir), useS3)
	type answer struct {
		code  int
		index uint64
	}
	const n = 30
	answers := make([][2]answer, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		p := fmt.Sprintf("authors/id/R/RA/RACE/Race-%d.tar.gz", i)
		for w, s := range []*server{a, b} {
			wg.Go(func() {
				<-start
				code, body, _ := s.do("POST", "/add", s.log.Token(), addBody(p, 2*i+w))
				var res struct{ Index uint64 }
				json.Unmarshal(body, &res)
				answers[i][w] = answer{code, res.Index}
			})
		}
	}
	close(start)
	wg.Wait()
	winners := map[uint64]bool{}
	for i, ans := range answers {
		codes := []int{ans[0].code, ans[1].code}
		slices.Sort(codes)
		if codes[0] != 200 || codes[1] != 409 {
			t.Errorf("path %d: answers %v at the two writers, want one 200 and one 409", i, codes)
			continue
		}
		if ans[0].index != ans[1].index {
			t.Errorf("path %d: the 409 names index %d, the 200 acknowledged %d", i, ans[1].index, ans[0].index)
		}
		winners[ans[0].index] = true
	}
	if len(winners) != n {
		t.Errorf("%d distinct indexes acknowledged for %d paths", len(winners), n)
	}
	// An identical re-submission at the other writer gets the same index,
	// whether or not the index has caught up.
	for i, ans := range answers[:5] {
		w := 0
		if ans[0].code != 200 {
			w = 1
		}
		other := []*server{a, b}[1-w]
		code, body, _ := other.do("POST", "/add", other.log.Token(), addBody(fmt.Sprintf("authors/id/R/RA/RACE/Race-%d.tar.gz", i), 2*i+w))
		var res struct {
			Index     uint64
			Duplicate bool
		}
		json.Unmarshal(body, &res)
		if code != 200 || res.Index != ans[w].index {
			t.Errorf("re-submission of path %d at the other writer: %d %s, want 200 with index %d", i, code, body, ans[w].index)
		}
	}
	// The tree holds every path once.
	acked := map[string]uint64{}
	for i, ans := range answers {
		acked[fmt.Sprintf("authors/id/R/RA/RACE/Race-%d.tar.gz", i)] = ans[0].index
	}
	checkAll(t, b.url, b.dir, acked)
}

// TestDeadWriterClaimIsRolledForward: a writer that claimed a path and
// died before acknowledging leaves a claim whose decision stands. When it
// died before sequencing, the next writer to meet the claim logs the
// claimed leaf and refuses a different one; when it died after sequencing,
// the leaf is found in the tree and not logged twice.
func TestDeadWriterClaimIsRolledForward(t *testing.T) {
	s3 := needS3(t)
	s := startServer(t, t.TempDir(), func(c *Config) { c.Storage, c.S3, c.claimLease = s3.Storage, s3.S3, 500*time.Millisecond })
	db := pathsDB(t, s3)
	leafOf := func(body string) []byte { return lateLeaf(t, body) }
	// An expired claim, as a writer killed between deciding and
	// sequencing leaves it.
	orphan := func(path string, leaf []byte) {
		t.Helper()
		token := make([]byte, 16)
		rand.Read(token)
		if _, err := db.Exec(`INSERT INTO cpantlog_paths (path, claimed, token, writer, lease_until) VALUES (?, ?, ?, 'dead', NOW(6) - INTERVAL 1 SECOND)
			ON DUPLICATE KEY UPDATE claimed = VALUES(claimed), token = VALUES(token), writer = VALUES(writer), lease_until = VALUES(lease_until)`,
			path, leaf, token); err != nil {
			t.Fatal(err)
		}
	}
	size := func() uint64 {
		t.Helper()
		n, err := s.log.reader.IntegratedSize(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	// The claims' sessions read committed (their correctness needs it).
	var iso string
	sdb := s.log.decider.(*shared.Decider).DB()
	if err := sdb.QueryRow(`SELECT @@transaction_isolation`).Scan(&iso); err != nil {
		sdb.QueryRow(`SELECT @@tx_isolation`).Scan(&iso)
	}
	if iso != "READ-COMMITTED" {
		t.Errorf("claims session isolation %q, want READ-COMMITTED", iso)
	}

	// Died before sequencing: the claimed leaf is logged, the other refused.
	p1 := "authors/id/R/RA/RACE/Orphan-1.tar.gz"
	claimedLeaf := leafOf(addBody(p1, 1))
	orphan(p1, claimedLeaf)
	code, body, _ := s.do("POST", "/add", s.log.Token(), addBody(p1, 2))
	if code != 409 {
		t.Fatalf("add of a different file at a path with a dead writer's claim: %d %s, want 409", code, body)
	}
	var conflict struct{ Index uint64 }
	json.Unmarshal(body, &conflict)
	hist, err := s.log.History(p1)
	if err != nil || len(hist) != 1 || string(hist[0].Leaf) != string(claimedLeaf) || hist[0].Index != conflict.Index {
		t.Fatalf("history of %s: %+v (%v), want the dead writer's leaf alone, at the index the 409 names (%d)", p1, hist, err, conflict.Index)
	}

	// Died after sequencing: the leaf is in the tree, the claim is still
	// there and the acknowledgement never made it.
	p2 := "authors/id/R/RA/RACE/Orphan-2.tar.gz"
	first := s.mustAdd(addBody(p2, 3))
	waitIndexed(t, s, first+1)
	orphan(p2, leafOf(addBody(p2, 3)))
	before := size()
	code, body, _ = s.do("POST", "/add", s.log.Token(), addBody(p2, 3))
	var dup struct {
		Index     uint64
		Duplicate bool
	}
	json.Unmarshal(body, &dup)
	if code != 200 || dup.Index != first || !dup.Duplicate {
		t.Fatalf("re-submission after a writer died between sequencing and acknowledging: %d %s, want the duplicate at %d", code, body, first)
	}
	if hist, err := s.log.History(p2); err != nil || len(hist) != 1 {
		t.Errorf("history of %s: %d entries (%v), want 1: the leaf was logged again", p2, len(hist), err)
	}
	if after := size(); after != before {
		t.Errorf("the tree grew from %d to %d: the leaf was logged again", before, after)
	}
	// Nobody retries: the sweeper finishes the add within a lease or two.
	p3 := "authors/id/R/RA/RACE/Orphan-3.tar.gz"
	orphan(p3, leafOf(addBody(p3, 4)))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if hist, _ := s.log.History(p3); len(hist) == 1 && string(hist[0].Leaf) == string(leafOf(addBody(p3, 4))) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a dead writer's claim nobody retried was not finished")
		}
	}
	_, m, _ := s.do("GET", "/metrics", "", "")
	for _, want := range []string{`cpantlog_claims_rolled_forward_total{outcome="found"} 1`, `cpantlog_claims_rolled_forward_total{outcome="logged"} 2`} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	var left int
	db.QueryRow(`SELECT COUNT(*) FROM cpantlog_paths WHERE claimed IS NOT NULL`).Scan(&left)
	if left != 0 {
		t.Errorf("%d claims left outstanding", left)
	}
}

func waitIndexed(t *testing.T, s *server, n uint64) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if size, _ := s.log.index.Size(); size >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lookup index did not reach %d entries", n)
		}
	}
}

// TestKilledWriterLosesNothing: two writer processes on one bucket and
// database under load from 8 clients; one is killed with SIGKILL. The
// other keeps acknowledging, and every add either acknowledged is in the
// log once, at its index. Clients of the dead writer retry at the other,
// as behind a load balancer: their adds, sequenced or not by the dead one,
// are acknowledged once.
func TestKilledWriterLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two real servers under load; skipped in -short mode")
	}
	cfg := needS3(t)
	bin := buildServer(t)
	dataA := t.TempDir()
	urlA, cmdA := startBinary(t, bin, dataA, s3Flags(cfg)...)
	defer func() { cmdA.Process.Signal(syscall.SIGKILL); cmdA.Wait() }()
	dataB := secondWriter(t, dataA)
	urlB, cmdB := startBinary(t, bin, dataB, s3Flags(cfg)...)
	defer func() { cmdB.Process.Signal(syscall.SIGTERM); cmdB.Wait() }()
	token, _ := os.ReadFile(filepath.Join(dataA, TokenFile))

	var mu sync.Mutex
	acked := map[string]uint64{}
	var killed time.Time
	afterKill := 0
	post := func(hc *http.Client, url, body string) (uint64, bool) {
		idx, ok, _ := postAdd(hc, url, string(token), body)
		return idx, ok
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() {
			hc := &http.Client{Timeout: 10 * time.Second}
			url := []string{urlA, urlB}[c%2]
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := fmt.Sprintf("authors/id/K/KI/KILL/C%d-%d.tar.gz", c, i)
				body := addBody(p, c*1000000+i)
				idx, ok := post(hc, url, body)
				for !ok && url == urlA {
					// The writer died under this add: retry at the other.
					url = urlB
					idx, ok = post(hc, url, body)
				}
				if !ok {
					continue
				}
				mu.Lock()
				acked[p] = idx
				if !killed.IsZero() && url == urlB {
					afterKill++
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(2 * time.Second)
	mu.Lock()
	before := len(acked)
	killed = time.Now()
	mu.Unlock()
	cmdA.Process.Signal(syscall.SIGKILL)
	cmdA.Wait()
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	if before < 50 || afterKill < 50 {
		t.Errorf("%d adds acknowledged before the kill and %d by the survivor after it; want at least 50 each", before, afterKill)
	}
	t.Logf("%d adds acknowledged, %d before the kill, %d by the survivor after it", len(acked), before, afterKill)
	checkAll(t, urlB, dataB, acked)
}

// TestIndexFilesSharedByWriters: the bytes of an index version PUT at one
// writer let another log the version, and every writer and read-only
// front end serves them: they live in the bucket, not a data directory.
func TestIndexFilesSharedByWriters(t *testing.T) {
	s3 := needS3(t)
	useS3 := func(c *Config) { c.Storage, c.S3 = s3.Storage, s3.S3 }
	a := startServer(t, t.TempDir(), useS3)
	b := startServer(t, secondWriter(t, a.dir), useS3)
	ro := startServer(t, secondWriter(t, a.dir), useS3, func(c *Config) { c.ReadOnly = true })
	body := []byte(strings.Repeat("Try::Tiny 0.31 E/ET/ETHER/Try-Tiny-0.31.tar.gz\n", 100))
	sum := sha256.Sum256(body)
	add := fmt.Sprintf(`{"kind":"index","path":"modules/02packages.details.txt","size":%d,"sha256":"%x","time":"2024-01-02T03:04:05Z"}`, len(body), sum)
	if code, b := b.add(add); code != 422 {
		t.Fatalf("index version logged before its bytes were stored: %d %s, want 422", code, b)
	}
	if code, _, _ := a.do("PUT", fmt.Sprintf("/index-files/%x", sum), a.log.Token(), string(body)); code != 201 {
		t.Fatalf("PUT at the first writer: %d", code)
	}
	if code, resp := b.add(add); code != 200 {
		t.Fatalf("index version at the second writer, bytes PUT at the first: %d %s", code, resp)
	}
	for _, s := range []*server{a, b, ro} {
		if code, got, _ := s.do("GET", fmt.Sprintf("/index-files/%x", sum), "", ""); code != 200 || !bytes.Equal(got, body) {
			t.Errorf("GET at %s: %d, %d bytes, want the %d bytes stored", s.dir, code, len(got), len(body))
		}
	}
	if local, _ := filepath.Glob(filepath.Join(a.dir, IndexFilesDir, "*", "*")); len(local) != 0 {
		t.Errorf("index file bytes kept in a writer's data directory: %v", local)
	}
}

// TestLateSequencingKeepsItsClaim: an add that Tessera has not sequenced
// within sequenceWait is answered 503, but Tessera may still sequence its
// leaf: until it says, the claim stays held, so another writer meeting the
// path waits (and then refuses another content) instead of taking the add
// over and logging the leaf a second time, later, after whatever came
// between.
func TestLateSequencingKeepsItsClaim(t *testing.T) {
	s3 := needS3(t)
	// A: every add outlives its 1 ms wait (Tessera batches for 300 ms).
	a := startServer(t, t.TempDir(), func(c *Config) {
		lateWriter(c, s3, 300*time.Millisecond)
	})
	b := startServer(t, secondWriter(t, a.dir), func(c *Config) { c.Storage, c.S3, c.claimLease = s3.Storage, s3.S3, 500*time.Millisecond })
	db := pathsDB(t, s3)

	p := "authors/id/R/RA/RACE/Late-1.tar.gz"
	if code, body, _ := a.do("POST", "/add", a.log.Token(), addBody(p, 1)); code != http.StatusServiceUnavailable {
		t.Fatalf("add at the writer whose Tessera is slow: %d %s, want 503", code, body)
	}
	code, body, _ := b.do("POST", "/add", b.log.Token(), addBody(p, 2))
	var conflict struct{ Index uint64 }
	json.Unmarshal(body, &conflict)
	if code != http.StatusConflict {
		t.Fatalf("another content at the other writer while the first is being sequenced: %d %s, want 409", code, body)
	}
	_, m, _ := b.do("GET", "/metrics", "", "")
	if strings.Contains(string(m), "cpantlog_claims_rolled_forward_total{") {
		t.Errorf("the other writer took over a live writer's add:\n%s", grepLines(string(m), "rolled_forward"))
	}
	// The first add is recorded where Tessera put it, once.
	var idx sql.NullInt64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var claimed []byte
		if err := db.QueryRow(`SELECT claimed, idx FROM cpantlog_paths WHERE path = ?`, p).Scan(&claimed, &idx); err != nil {
			t.Fatal(err)
		}
		if claimed == nil && idx.Valid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the late add was never recorded (claimed %q, idx %v)", claimed, idx)
		}
	}
	if uint64(idx.Int64) != conflict.Index {
		t.Errorf("the 409 names index %d, the path's row %d", conflict.Index, idx.Int64)
	}
	waitIndexed(t, b, uint64(idx.Int64)+1)
	time.Sleep(time.Second) // A's batch, had it been sequenced twice, is in by now
	size, err := b.log.reader.IntegratedSize(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	waitIndexed(t, b, size)
	hist, err := b.log.History(p)
	var at []uint64
	for _, r := range hist {
		at = append(at, r.Index)
	}
	if err != nil || len(hist) != 1 || hist[0].Index != uint64(idx.Int64) {
		t.Errorf("history of %s: entries at %v (%v), want the first add alone at %d", p, at, err, idx.Int64)
	}
}

// grepLines is the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}
