package shared

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/log/decide"
	"github.com/CPAN-Security/cpan-tlog/log/decide/decidetest"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
	"github.com/CPAN-Security/cpan-tlog/log/index"
)

// freshDB makes a database of its own on the test MariaDB
// (scripts/test-services.sh) and gives its DSN.
func freshDB(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("CPANTLOG_TEST_MYSQL_DSN")
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI without CPANTLOG_TEST_MYSQL_DSN")
		}
		t.Skip("needs CPANTLOG_TEST_MYSQL_DSN (scripts/test-services.sh)")
	}
	b := make([]byte, 8)
	rand.Read(b)
	name := fmt.Sprintf("decide%x", b)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if db, err := sql.Open("mysql", dsn); err == nil {
			db.Exec("DROP DATABASE " + name)
			db.Close()
		}
	})
	return strings.TrimSuffix(dsn, "/") + "/" + name
}

// open starts a Decider on dsn with the lookup index's tables (a real
// index.MySQL), deciding with a short Wait.
func open(t testing.TB, dsn, writer string, wait time.Duration) (*Decider, *index.MySQL) {
	t.Helper()
	ix, err := index.OpenMySQL(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	d, err := Open(ctx, Config{DSN: dsn, Writer: writer, Wait: wait, Lease: time.Minute,
		Append: func([]byte) <-chan Appended {
			c := make(chan Appended, 1)
			c <- Appended{Err: errors.New("no Tessera here")}
			return c
		},
		CatchUp:   func(context.Context) error { return nil },
		IndexSize: ix.Size})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, ix
}

// TestTwoWritersOnePath: two deciders on one database decide one path
// with different content at the same moment: one New, the other busy
// (ErrPathBusy) while the first is in flight; once the first is reported
// sequenced (and before the index holds it), the other's decision sees it
// in the path's row and is refused; the first's repeat is its duplicate.
func TestTwoWritersOnePath(t *testing.T) {
	dsn := freshDB(t)
	a, _ := open(t, dsn, "a", time.Second)
	b, _ := open(t, dsn, "b", time.Second)
	const p = "authors/id/T/TE/TEST/One-1.tar.gz"
	ea, la := decidetest.Upload(p, 1)
	eb, lb := decidetest.Upload(p, 2)
	var da, db []decide.Decision
	var wg sync.WaitGroup
	var errA, errB error
	wg.Go(func() {
		da, errA = a.Decide(t.Context(), []decide.Request{{Entry: ea, Leaf: la, Rule: decidetest.OneContent(la, nil)}})
	})
	wg.Go(func() {
		db, errB = b.Decide(t.Context(), []decide.Request{{Entry: eb, Leaf: lb, Rule: decidetest.OneContent(lb, nil)}})
	})
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	winner, loser, wl, ll, we := a, b, la, lb, ea
	if da[0].Kind != decide.New {
		winner, loser, wl, ll, we, da, db = b, a, lb, la, eb, db, da
	}
	if da[0].Kind != decide.New || db[0].Kind != decide.Refused || !errors.Is(db[0].Err, decide.ErrPathBusy) {
		t.Fatalf("decisions %+v and %+v: want one New and one busy", da[0], db[0])
	}
	winner.Sequenced(t.Context(), []decide.Outcome{{Ticket: da[0].Ticket, Index: 0, Queued: true}})
	winner.Wait(t.Context())
	e2, _ := entry.Parse(ll)
	d2, err := loser.Decide(t.Context(), []decide.Request{{Entry: e2, Leaf: ll, Rule: decidetest.OneContent(ll, nil)}})
	if err != nil || d2[0].Kind != decide.Refused || errors.Is(d2[0].Err, decide.ErrPathBusy) {
		t.Fatalf("other content after the first was sequenced: %+v %v, want refused by the rule", d2, err)
	}
	d3, err := loser.Decide(t.Context(), []decide.Request{{Entry: we, Leaf: wl, Rule: decidetest.OneContent(wl, nil)}})
	if err != nil || d3[0].Kind != decide.Duplicate || d3[0].Existing.Index != 0 {
		t.Fatalf("the first content again, at the other writer: %+v %v, want its duplicate at 0", d3, err)
	}
	if h, err := loser.History(t.Context(), p); err != nil || len(h) != 1 || string(h[0].Leaf) != string(wl) {
		t.Errorf("history %+v %v, want the first content alone", h, err)
	}
	var n int
	winner.DB().QueryRow(`SELECT COUNT(*) FROM cpantlog_paths WHERE claimed IS NOT NULL OR token IS NOT NULL`).Scan(&n)
	if n != 0 {
		t.Errorf("%d claims left after the outcome was recorded", n)
	}
}

// TestStoppedTransactionBoundsDecide: a transaction that holds a path's
// row lock and never ends (a writer SIGSTOPped inside it) makes a decision
// of that path answer ErrPathBusy within its Wait and the session's lock
// wait, not wait for ever; the row released, the next decision goes on.
func TestStoppedTransactionBoundsDecide(t *testing.T) {
	dsn := freshDB(t)
	d, _ := open(t, dsn, "a", 2*time.Second)
	const p = "authors/id/T/TE/TEST/Stop-1.tar.gz"
	e, leaf := decidetest.Upload(p, 1)
	if _, err := d.DB().Exec(`INSERT INTO cpantlog_paths (path) VALUES (?)`, p); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	tx, err := raw.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`SELECT * FROM cpantlog_paths WHERE path = ? FOR UPDATE`, p); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ds, err := d.Decide(t.Context(), []decide.Request{{Entry: e, Leaf: leaf, Rule: decidetest.OneContent(leaf, nil)}})
	took := time.Since(start)
	if err != nil || ds[0].Kind != decide.Refused || !errors.Is(ds[0].Err, decide.ErrPathBusy) {
		t.Errorf("decision while another transaction holds the row: %+v %v, want ErrPathBusy", ds, err)
	}
	if took > 2*time.Second+LockWait*time.Second {
		t.Errorf("the decision took %s: not bounded by its Wait (2s)", took)
	}
	tx.Rollback()
	ds, err = d.Decide(t.Context(), []decide.Request{{Entry: e, Leaf: leaf, Rule: decidetest.OneContent(leaf, nil)}})
	if err != nil || ds[0].Kind != decide.New {
		t.Fatalf("decision after the row was released: %+v %v, want New", ds, err)
	}
	d.Sequenced(t.Context(), []decide.Outcome{{Ticket: ds[0].Ticket, Index: 0, Queued: true}})
	d.Wait(context.Background())
}

// TestMigrateClaimsAndAcked: a database of the two tables of before
// (cpantlog_claims: one claim in flight, one cleared; cpantlog_acked: two
// entries of one path and one of another, none indexed) is moved into one
// row per path at open, twice with the same result, and the old tables
// are gone. The moved rows decide: a path whose entry before the last is
// not indexed is busy; once the index holds it, the history decided on
// holds the row's last entry.
func TestMigrateClaimsAndAcked(t *testing.T) {
	dsn := freshDB(t)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, l5 := decidetest.Upload("authors/id/M/MI/MIG/A-1.tar.gz", 5)
	l7 := []byte("cpan-tlog/v1 delete\npath authors/id/M/MI/MIG/A-1.tar.gz\ntime 2024-01-02T03:04:05Z\n")
	_, l6 := decidetest.Upload("authors/id/M/MI/MIG/B-1.tar.gz", 6)
	_, l9 := decidetest.Upload("authors/id/M/MI/MIG/C-1.tar.gz", 9)
	tok := []byte("0123456789abcdef")
	for _, q := range []struct {
		q    string
		args []any
	}{
		{`CREATE TABLE cpantlog_claims (path VARBINARY(300) PRIMARY KEY, leaf BLOB NULL, token BINARY(16) NULL, writer VARBINARY(255) NULL, lease_until DATETIME(6) NULL)`, nil},
		{`CREATE TABLE cpantlog_acked (idx BIGINT UNSIGNED PRIMARY KEY, path VARBINARY(300) NOT NULL, leaf BLOB NOT NULL, INDEX by_path (path, idx))`, nil},
		{`INSERT INTO cpantlog_acked VALUES (5, 'authors/id/M/MI/MIG/A-1.tar.gz', ?), (7, 'authors/id/M/MI/MIG/A-1.tar.gz', ?), (6, 'authors/id/M/MI/MIG/B-1.tar.gz', ?)`, []any{l5, l7, l6}},
		{`INSERT INTO cpantlog_claims VALUES ('authors/id/M/MI/MIG/C-1.tar.gz', ?, ?, 'old', NOW(6) + INTERVAL 1 HOUR), ('authors/id/M/MI/MIG/A-1.tar.gz', NULL, NULL, NULL, NULL)`, []any{l9, tok}},
	} {
		if _, err := db.Exec(q.q, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	type row struct {
		path                 string
		claimed, token, leaf []byte
		writer               sql.NullString
		idx, prior           sql.NullInt64
		leaseInFuture        sql.NullBool
	}
	read := func() map[string]row {
		t.Helper()
		rows, err := db.Query(`SELECT path, claimed, token, writer, idx, leaf, prior_idx, lease_until > NOW(6) FROM cpantlog_paths`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]row{}
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.path, &r.claimed, &r.token, &r.writer, &r.idx, &r.leaf, &r.prior, &r.leaseInFuture); err != nil {
				t.Fatal(err)
			}
			out[r.path] = r
		}
		return out
	}
	var first map[string]row
	for run := range 2 {
		d, ix := open(t, dsn, "new", time.Second)
		got := read()
		if len(got) != 3 {
			t.Fatalf("run %d: %d rows, want 3: %+v", run, len(got), got)
		}
		a, b, c := got["authors/id/M/MI/MIG/A-1.tar.gz"], got["authors/id/M/MI/MIG/B-1.tar.gz"], got["authors/id/M/MI/MIG/C-1.tar.gz"]
		if a.idx.Int64 != 7 || string(a.leaf) != string(l7) || a.prior.Int64 != 5 || a.token != nil {
			t.Errorf("run %d: A's row %+v, want last 7 (the delete), prior 5, no claim", run, a)
		}
		if b.idx.Int64 != 6 || string(b.leaf) != string(l6) || b.prior.Int64 != 6 || b.token != nil {
			t.Errorf("run %d: B's row %+v, want last 6, prior 6 (wait for the index), no claim", run, b)
		}
		if string(c.claimed) != string(l9) || string(c.token) != string(tok) || c.writer.String != "old" || !c.leaseInFuture.Bool || c.idx.Valid {
			t.Errorf("run %d: C's row %+v, want the claim in flight as it was", run, c)
		}
		for _, old := range []string{"cpantlog_claims", "cpantlog_acked"} {
			var n int
			db.QueryRow(`SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? AND column_name = 'path'`, old).Scan(&n)
			if n != 0 {
				t.Errorf("run %d: %s still there (not a tombstone)", run, old)
			}
		}
		if run == 0 {
			first = got
			// The moved rows decide. A: the entry before its last (5)
			// is not indexed (the index is empty): busy.
			e, leaf := decidetest.Upload("authors/id/M/MI/MIG/A-1.tar.gz", 8)
			ds, err := d.Decide(t.Context(), []decide.Request{{Entry: e, Leaf: leaf, Rule: decidetest.OneContent(leaf, nil)}})
			if err != nil || !errors.Is(ds[0].Err, decide.ErrPathBusy) {
				t.Errorf("a path whose entry before the last is not indexed: %+v %v, want busy", ds, err)
			}
			// Once the index holds 0..6, the history holds 5 (indexed)
			// and 7 (the row's last).
			leaves := make([][]byte, 7)
			for i := range leaves {
				_, leaves[i] = decidetest.Upload(fmt.Sprintf("authors/id/M/MI/MIG/Fill-%d.tar.gz", i), 100+i)
			}
			leaves[5], leaves[6] = l5, l6
			if _, err := ix.Append(0, leaves); err != nil {
				t.Fatal(err)
			}
			var seen [][]index.Record
			ds, err = d.Decide(t.Context(), []decide.Request{{Entry: e, Leaf: leaf, Rule: decidetest.OneContent(leaf, &seen)}})
			if err != nil || ds[0].Kind != decide.Refused || errors.Is(ds[0].Err, decide.ErrPathBusy) {
				t.Errorf("decision once the index caught up: %+v %v, want refused by the rule", ds, err)
			}
			if len(seen) != 1 || len(seen[0]) != 2 || seen[0][0].Index != 5 || seen[0][1].Index != 7 {
				t.Errorf("history decided on: %+v, want 5 (indexed) and 7 (the row's last)", seen)
			}
		} else if fmt.Sprint(got) != fmt.Sprint(first) {
			t.Errorf("a second open changed the rows:\n%+v\nwas\n%+v", got, first)
		}
		d.Close()
	}
}
