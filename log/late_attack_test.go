package log

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// openWriter opens a log as startServer does, without serving it: the
// test shuts it down itself (Serve would report the short deadline's
// error).
func openWriter(t *testing.T, dir string, mutate func(*Config)) *Log {
	t.Helper()
	cfg := Config{DataDir: dir, CheckpointInterval: 100 * time.Millisecond, BatchMaxAge: 10 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	mutate(&cfg)
	l, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Shutdown(context.Background()) })
	return l
}

// lateAdd adds body at l directly.
func lateAdd(t *testing.T, l *Log, body string) (AddResult, error) {
	t.Helper()
	e, err := bodyEntry(body)
	if err != nil {
		t.Fatal(err)
	}
	return l.Add(context.Background(), e)
}

// Attacks on late sequencing (commit c712eae): an add or a roll forward
// that Tessera has not sequenced in time keeps its claim until Tessera
// answers.

// lateLeaf is the leaf of an addBody-style JSON body.
func lateLeaf(t *testing.T, body string) []byte {
	t.Helper()
	e, err := bodyEntry(body)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// lateCopies is how many times leaf is in the tree at path, once s's
// lookup index covers everything integrated, and where.
func lateCopies(t *testing.T, s *server, path string, leaf []byte) []uint64 {
	t.Helper()
	size, err := s.log.reader.IntegratedSize(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	waitIndexed(t, s, size)
	recs, err := s.log.index.ByPath(path)
	if err != nil {
		t.Fatal(err)
	}
	var at []uint64
	for _, r := range recs {
		if string(r.Leaf) == string(leaf) {
			at = append(at, r.Index)
		}
	}
	return at
}

// awaitCopy is lateCopies once leaf is in the tree, or after 10 s.
func awaitCopy(t *testing.T, s *server, path string, leaf []byte) []uint64 {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if at := lateCopies(t, s, path, leaf); len(at) > 0 || time.Now().After(deadline) {
			return at
		}
	}
}

// TestShutdownBoundedWithLateRollForward: a writer rolls a dead writer's
// claim forward and Tessera does not sequence the leaf within the
// decision's wait, so the roll forward finishes in the background
// (d.recording). Shutdown with a short context must still return by its
// deadline, not when Tessera gets round to the leaf; the claim it leaves
// expires, and another writer finishes the add, logging the leaf once.
func TestShutdownBoundedWithLateRollForward(t *testing.T) {
	s3 := needS3(t)
	// A's Tessera flushes a batch 25 s after its first leaf: longer than
	// a decision's wait (shared.Wait, 10 s).
	dirA := t.TempDir()
	a := openWriter(t, dirA, func(c *Config) {
		c.Storage, c.S3, c.claimLease, c.BatchMaxAge = s3.Storage, s3.S3, 500*time.Millisecond, 25*time.Second
	})
	db := pathsDB(t, s3)
	p := "authors/id/R/RA/RACE/LateRoll-1.tar.gz"
	leaf := lateLeaf(t, addBody(p, 1))
	token := make([]byte, 16)
	rand.Read(token)
	if _, err := db.Exec(`INSERT INTO cpantlog_paths (path, claimed, token, writer, lease_until) VALUES (?, ?, ?, 'dead', NOW(6) - INTERVAL 1 SECOND)`, p, leaf, token); err != nil {
		t.Fatal(err)
	}
	// A's sweep takes the claim over within a lease or two.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var w string
		if err := db.QueryRow(`SELECT writer FROM cpantlog_paths WHERE path = ?`, p).Scan(&w); err != nil {
			t.Fatal(err)
		}
		if w == a.writer {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the dead writer's claim was not taken over")
		}
	}
	// The roll forward's wait (10 s) ends; Tessera answers ~14 s later.
	time.Sleep(10500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	a.Shutdown(ctx)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Shutdown with a 1 s context took %v: it waited for Tessera's late answer to a roll forward", took.Round(100*time.Millisecond))
	}

	// The next writer finishes the add: the leaf is logged once.
	b := startServer(t, secondWriter(t, dirA), func(c *Config) { c.Storage, c.S3, c.claimLease = s3.Storage, s3.S3, 500*time.Millisecond })
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var claimed []byte
		if err := db.QueryRow(`SELECT claimed FROM cpantlog_paths WHERE path = ?`, p).Scan(&claimed); err != nil {
			t.Fatal(err)
		}
		if claimed == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the claim left by the stopped writer was not finished")
		}
	}
	var row sql.NullInt64
	db.QueryRow(`SELECT idx FROM cpantlog_paths WHERE path = ?`, p).Scan(&row)
	awaitCopy(t, b, p, leaf)
	time.Sleep(time.Second)
	if at := lateCopies(t, b, p, leaf); len(at) != 1 {
		t.Errorf("the claimed leaf is in the tree at %v, want once (the path's row says %v)", at, row)
	}
}

// TestShutdownWithLateAddLeavesClaim: an add answered 503 because Tessera
// is slow, then Shutdown with a short context. Shutdown returns by its
// deadline; the claim is no longer renewed, and the add, retried at
// another writer, is logged once (the stopped writer's Tessera never
// sequences it).
func TestShutdownWithLateAddLeavesClaim(t *testing.T) {
	s3 := needS3(t)
	dirA := t.TempDir()
	a := openWriter(t, dirA, func(c *Config) {
		lateWriter(c, s3, 20*time.Second)
	})
	p := "authors/id/R/RA/RACE/LateShut-1.tar.gz"
	body := addBody(p, 1)
	if _, err := lateAdd(t, a, body); !errors.Is(err, ErrPathBusy) {
		t.Fatalf("add at the writer whose Tessera is slow: %v, want ErrPathBusy", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	a.Shutdown(ctx)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Shutdown with a 1 s context took %v", took.Round(100*time.Millisecond))
	}
	b := startServer(t, secondWriter(t, dirA), func(c *Config) { c.Storage, c.S3, c.claimLease = s3.Storage, s3.S3, 500*time.Millisecond })
	var idx uint64
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		code, rb, _ := b.do("POST", "/add", b.log.Token(), body)
		if code == http.StatusOK {
			var r struct{ Index uint64 }
			json.Unmarshal(rb, &r)
			idx = r.Index
			break
		}
		if code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("retry at the other writer: %d %s", code, rb)
		}
	}
	time.Sleep(time.Second)
	if at := lateCopies(t, b, p, lateLeaf(t, body)); len(at) != 1 || at[0] != idx {
		t.Errorf("the add is in the tree at %v, want once at %d", at, idx)
	}
}

// TestLockedRowLapsesEveryClaim: a writer renews the leases of all its
// live claims in one UPDATE. One row of them locked by another
// transaction (another writer's claim transaction on that path: a writer
// stopped inside one holds its row locks until the server drops its
// session, IdleWait) makes every renewal fail, so every claim of the
// writer lapses, including a late add's whose leaf Tessera still holds.
// Another writer then takes that add over and logs the leaf; a delete of
// the path follows; then the first writer's Tessera logs the upload again,
// after its delete: what keeping late claims was meant to prevent. (Found
// so, and fixed: a renewal that fails renews the claims one by one.)
func TestLockedRowLapsesEveryClaim(t *testing.T) {
	s3 := needS3(t)
	a := startServer(t, t.TempDir(), func(c *Config) {
		lateWriter(c, s3, 8*time.Second)
	})
	b := startServer(t, secondWriter(t, a.dir), func(c *Config) { c.Storage, c.S3, c.claimLease = s3.Storage, s3.S3, 500*time.Millisecond })
	db := pathsDB(t, s3)
	// q sorts before p: the renewal waits on q's row holding no lock on p's.
	q := "authors/id/R/RA/RACE/Lapse-0.tar.gz"
	p := "authors/id/R/RA/RACE/Lapse-1.tar.gz"
	for i, path := range []string{q, p} {
		if code, rb, _ := a.do("POST", "/add", a.log.Token(), addBody(path, i)); code != http.StatusServiceUnavailable {
			t.Fatalf("add of %s at the writer whose Tessera is slow: %d %s, want 503", path, code, rb)
		}
	}
	// Another transaction holds q's row (as a claim transaction of a
	// stopped writer would).
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var x []byte
	if err := tx.QueryRow(`SELECT path FROM cpantlog_paths WHERE path = ? FOR UPDATE`, q).Scan(&x); err != nil {
		t.Fatal(err)
	}
	// p's claim, live and unlocked, must not lapse with q's row locked.
	lapsed := false
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err := db.QueryRow(`SELECT lease_until < NOW(6) FROM cpantlog_paths WHERE path = ?`, p).Scan(&lapsed); err != nil {
			t.Fatal(err)
		}
		if lapsed {
			break
		}
	}
	if lapsed {
		t.Errorf("the claim of %s lapsed while its writer was alive and renewing: another row of its claims was locked", p)
		// B meets the lapsed claim: it logs A's leaf and refuses its own.
		code, rb, _ := b.do("POST", "/add", b.log.Token(), addBody(p, 7))
		if code != http.StatusConflict {
			t.Fatalf("another content for p at B: %d %s, want 409", code, rb)
		}
		del := `{"kind":"delete","path":"` + p + `","time":"2024-02-02T03:04:05Z"}`
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			code, rb, _ = b.do("POST", "/add", b.log.Token(), del)
			if code == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("delete of p at B: %d %s", code, rb)
			}
		}
	}
	tx.Rollback()
	time.Sleep(9 * time.Second) // A's Tessera flushes its batch
	if at := lateCopies(t, b, p, lateLeaf(t, addBody(p, 1))); len(at) != 1 {
		t.Errorf("the upload of %s is in the tree at %v (a delete between): a late add's claim lapsed while its writer was alive, and both writers logged it", p, at)
	}
}

// TestLateErrorEndsClaim: Tessera answers a late add with an error (its
// sequencing waited too long for SeqCoord, held here by the test as a
// stopped writer would). The claim is then ended, not kept: another
// writer rolls it forward, logging the claimed leaf once, and refuses its
// own other content; the first writer never logs it.
func TestLateErrorEndsClaim(t *testing.T) {
	s3 := needS3(t)
	db := pathsDB(t, s3)
	// Tessera's sessions keep the server's lock wait (IdleBoundedDSN):
	// shortened for the sessions the writers open from here on.
	var was int
	if err := db.QueryRow(`SELECT @@GLOBAL.innodb_lock_wait_timeout`).Scan(&was); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`SET GLOBAL innodb_lock_wait_timeout = 2`); err != nil {
		t.Skipf("cannot shorten Tessera's lock wait: %v", err)
	}
	t.Cleanup(func() { db.Exec(`SET GLOBAL innodb_lock_wait_timeout = ?`, was) })
	dirA := t.TempDir()
	a := openWriter(t, dirA, func(c *Config) {
		lateWriter(c, s3, 0)
	})
	b := startServer(t, secondWriter(t, dirA), func(c *Config) { c.Storage, c.S3, c.claimLease = s3.Storage, s3.S3, 500*time.Millisecond })
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var next uint64
	if err := tx.QueryRow(`SELECT next FROM SeqCoord WHERE id = 0 FOR UPDATE`).Scan(&next); err != nil {
		t.Fatal(err)
	}
	p := "authors/id/R/RA/RACE/LateErr-1.tar.gz"
	body := addBody(p, 1)
	if _, err := lateAdd(t, a, body); !errors.Is(err, ErrPathBusy) {
		t.Fatalf("add at the writer whose Tessera is held: %v, want ErrPathBusy", err)
	}
	// Tessera's sequencing fails after 2 s: the claim's lease is ended.
	for deadline := time.Now().Add(8 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var expired sql.NullBool
		if err := db.QueryRow(`SELECT lease_until < NOW(6) FROM cpantlog_paths WHERE path = ?`, p).Scan(&expired); err != nil {
			t.Fatal(err)
		}
		if expired.Bool {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the claim of an add Tessera failed late was not ended")
		}
	}
	tx.Rollback()
	code, rb, _ := b.do("POST", "/add", b.log.Token(), addBody(p, 2))
	if code != http.StatusConflict {
		t.Fatalf("other content at B after A's late failure: %d %s, want 409 (A's claimed leaf logged by B)", code, rb)
	}
	time.Sleep(2 * time.Second) // A's Tessera, had it kept the leaf, has flushed it
	if at := lateCopies(t, b, p, lateLeaf(t, body)); len(at) != 1 {
		t.Errorf("the claimed leaf is in the tree at %v, want once", at)
	}
	if at := lateCopies(t, b, p, lateLeaf(t, addBody(p, 2))); len(at) != 0 {
		t.Errorf("B's other content is in the tree at %v", at)
	}
}

// TestFrozenWriterLogsUploadAfterDelete: the hole late claims do not
// close. Writer A (a real process) holds two claims; its Tessera is stuck
// on the sequencing lock with p1's batch, so p2's leaf waits in A's
// memory. A is frozen (SIGSTOP, a paused VM) past its lease: B rolls p2
// forward (the tree lacks the leaf: it logs it), then logs p2's delete.
// Resumed, A's Tessera flushes the batch it kept in memory: p2's upload
// is logged again, after its delete. The package doc allows "a repeat,
// never a rewrite" for a writer alive all along; after a delete the
// repeat is an upload PAUSE forbids. About 50 s.
func TestFrozenWriterLogsUploadAfterDelete(t *testing.T) {
	t.Skip("finding: a writer frozen past its lease with a claimed leaf in Tessera's memory queue logs it again on resuming, after another writer logged it and its delete (upload after delete); not fixable without fencing Tessera's sequencing")
	if testing.Short() {
		t.Skip("waits out a 30 s lease")
	}
	s3 := needS3(t)
	bin := buildServer(t)
	dataA := t.TempDir()
	urlA, cmdA := startBinary(t, bin, dataA, s3Flags(s3)...)
	defer func() { cmdA.Process.Signal(syscall.SIGCONT); cmdA.Process.Signal(syscall.SIGKILL); cmdA.Wait() }()
	tok, _ := os.ReadFile(filepath.Join(dataA, TokenFile))
	b := startServer(t, secondWriter(t, dataA), func(c *Config) { c.Storage, c.S3 = s3.Storage, s3.S3 })
	db := pathsDB(t, s3)
	claimed := func(path string) bool {
		var c []byte
		db.QueryRow(`SELECT claimed FROM cpantlog_paths WHERE path = ?`, path).Scan(&c)
		return c != nil
	}
	seq, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer seq.Rollback()
	var next uint64
	if err := seq.QueryRow(`SELECT next FROM SeqCoord WHERE id = 0 FOR UPDATE`).Scan(&next); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 3 * time.Minute}
	p1 := "authors/id/R/RA/RACE/Frozen-1.tar.gz"
	p2 := "authors/id/R/RA/RACE/Frozen-2.tar.gz"
	for _, path := range []string{p1, p2} {
		go postCode(hc, urlA, string(tok), addBody(path, 1))
		for deadline := time.Now().Add(5 * time.Second); !claimed(path); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("A did not claim %s", path)
			}
		}
		time.Sleep(500 * time.Millisecond) // p1's batch is in Tessera's stuck flush; p2's waits behind it
	}
	if err := cmdA.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	seq.Rollback() // A's frozen session gets the lock, and loses it when the server drops the session
	for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var expired bool
		db.QueryRow(`SELECT lease_until < NOW(6) FROM cpantlog_paths WHERE path = ?`, p2).Scan(&expired)
		if expired {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the frozen writer's claim did not lapse")
		}
	}
	var code int
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if code, _, _ = b.do("POST", "/add", b.log.Token(), addBody(p2, 7)); code == http.StatusConflict {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("other content for p2 at B: %d, want 409 (A's leaf rolled forward)", code)
		}
	}
	del := `{"kind":"delete","path":"` + p2 + `","time":"2024-02-02T03:04:05Z"}`
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if code, _, _ = b.do("POST", "/add", b.log.Token(), del); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delete of p2 at B: %d", code)
		}
	}
	cmdA.Process.Signal(syscall.SIGCONT)
	time.Sleep(5 * time.Second)
	if at := lateCopies(t, b, p2, lateLeaf(t, addBody(p2, 1))); len(at) != 1 {
		t.Errorf("the upload of %s is in the tree at %v, its delete between: the frozen writer logged it again on resuming", p2, at)
	}
}

// TestShutdownRecordsLateAdd: Shutdown with time to spare waits for
// Tessera's late answer and records it: the path's row holds the entry,
// no claim is left for another writer to roll forward, and the leaf is in
// the tree once.
func TestShutdownRecordsLateAdd(t *testing.T) {
	s3 := needS3(t)
	dirA := t.TempDir()
	a := openWriter(t, dirA, func(c *Config) {
		lateWriter(c, s3, 2*time.Second)
	})
	db := pathsDB(t, s3)
	p := "authors/id/R/RA/RACE/LateRecorded-1.tar.gz"
	body := addBody(p, 1)
	if _, err := lateAdd(t, a, body); !errors.Is(err, ErrPathBusy) {
		t.Fatalf("add at the writer whose Tessera is slow: %v, want ErrPathBusy", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	var claimed []byte
	var idx sql.NullInt64
	if err := db.QueryRow(`SELECT claimed, idx FROM cpantlog_paths WHERE path = ?`, p).Scan(&claimed, &idx); err != nil {
		t.Fatal(err)
	}
	if claimed != nil || !idx.Valid {
		t.Fatalf("after Shutdown the late add's row has claimed %q, idx %v: not recorded", claimed, idx)
	}
	b := startServer(t, secondWriter(t, dirA), func(c *Config) { c.Storage, c.S3, c.claimLease = s3.Storage, s3.S3, 500*time.Millisecond })
	// B integrates what A sequenced after its Tessera's shutdown began.
	if at := awaitCopy(t, b, p, lateLeaf(t, body)); len(at) != 1 || at[0] != uint64(idx.Int64) {
		t.Errorf("the late add is in the tree at %v, want once at %d", at, idx.Int64)
	}
}

// TestGivenUpClaimNotRenewedAgain: a late add that Tessera fails has its
// lease ended (Sequenced) so that another writer finishes it at once. A
// renewal that listed the writer's live claims just before must not
// extend that lease again: the path would be held by nobody for a whole
// lease (in production 30 s of 503s). Renewals are slow to reach the row
// when another of the writer's rows is locked (the batch fails, then one
// by one), which widens the window; Tessera's failure is timed into it by
// killing its session waiting for the sequencing lock.
func TestGivenUpClaimNotRenewedAgain(t *testing.T) {
	s3 := needS3(t)
	db := pathsDB(t, s3)
	a := openWriter(t, t.TempDir(), func(c *Config) {
		lateWriter(c, s3, 0)
	})
	seq, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer seq.Rollback()
	var next uint64
	if err := seq.QueryRow(`SELECT next FROM SeqCoord WHERE id = 0 FOR UPDATE`).Scan(&next); err != nil {
		t.Fatal(err)
	}
	q := "authors/id/R/RA/RACE/GiveUp-0.tar.gz"
	p := "authors/id/R/RA/RACE/GiveUp-1.tar.gz"
	for i, path := range []string{q, p} {
		if _, err := lateAdd(t, a, addBody(path, i)); !errors.Is(err, ErrPathBusy) {
			t.Fatalf("add of %s at the writer whose Tessera is held: %v, want ErrPathBusy", path, err)
		}
	}
	row, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer row.Rollback()
	var x []byte
	if err := row.QueryRow(`SELECT path FROM cpantlog_paths WHERE path = ? FOR UPDATE`, q).Scan(&x); err != nil {
		t.Fatal(err)
	}
	var token []byte // the claim's, as last read
	lease := func() (until string, live bool) {
		t.Helper()
		if err := db.QueryRow(`SELECT lease_until, lease_until > NOW(6), token FROM cpantlog_paths WHERE path = ?`, p).Scan(&until, &live, &token); err != nil {
			t.Fatal(err)
		}
		return
	}
	// Two renewals of p seen: the next listing of live claims comes about
	// one renewal period after the second.
	first, _ := lease()
	var renewed time.Time
	for deadline := time.Now().Add(3 * time.Second); renewed.IsZero(); time.Sleep(2 * time.Millisecond) {
		if u, _ := lease(); u != first {
			renewed = time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatal("p's claim is not being renewed")
		}
	}
	second, _ := lease()
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		if u, _ := lease(); u != second {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("p's claim is not being renewed")
		}
	}
	time.Sleep(250 * time.Millisecond)
	// Tessera's sequencing, waiting for SeqCoord, fails now.
	lease()
	before := token
	// Every such session of this log's database (other tests share the
	// server), until the claim is ended: q's and p's leaves
	// may be in one batch or two, the second waiting only later.
	killSequencing := func() int {
		rows, err := db.Query(`SELECT id FROM information_schema.processlist WHERE info LIKE '%SeqCoord%FOR UPDATE%' AND db = DATABASE() AND id <> CONNECTION_ID()`)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		for _, id := range ids {
			db.Exec(`KILL ?`, id) // gone meanwhile: nothing to kill
		}
		return len(ids)
	}
	if killSequencing() == 0 {
		t.Fatal("no session of Tessera's waits for SeqCoord")
	}
	// Taken over again (a new token: this writer's sweep rolls it
	// forward) is right; renewed under the token it was given up with is
	// not.
	var ended time.Time
	var given []byte
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if ended.IsZero() {
			killSequencing()
		}
		_, live := lease()
		switch {
		case ended.IsZero() && (!live || string(token) != string(before)):
			ended, given = time.Now(), token
			if live {
				return // already rolled forward
			}
		case live && !ended.IsZero() && string(token) == string(given):
			t.Fatalf("%s's lease, ended when Tessera failed its add, was renewed %v later by the writer that gave it up", p, time.Since(ended).Round(time.Millisecond))
		case live && !ended.IsZero():
			return // rolled forward
		}
		if !ended.IsZero() && time.Since(ended) > time.Second {
			return
		}
	}
	if ended.IsZero() {
		t.Fatal("the claim of an add Tessera failed late was not ended")
	}
}
