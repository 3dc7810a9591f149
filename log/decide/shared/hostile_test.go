package shared

import (
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/CPAN-Security/cpan-tlog/log/decide"
	"github.com/CPAN-Security/cpan-tlog/log/decide/decidetest"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
)

// TestHostileHistoryHoldsEntryBeforeLast: an upload and its delete, both
// acknowledged before the index follower caught up (about a second, under
// load more). History promises every entry acknowledged, indexed or not;
// the row keeps only the last, so the upload must come from somewhere.
// GET /lookup answered 404 "not in the log" for a path whose upload was
// acknowledged, and a Sigstore bundle of it found no artifact.
func TestHostileHistoryHoldsEntryBeforeLast(t *testing.T) {
	d, ix := open(t, freshDB(t), "a", time.Second)
	const p = "authors/id/T/TE/TEST/Gone-1.tar.gz"
	eu, lu := decidetest.Upload(p, 1)
	ld := []byte("cpan-tlog/v1 delete\npath " + p + "\ntime 2024-01-02T03:04:05Z\n")
	ed, err := entry.Parse(ld)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range []decide.Request{{Entry: eu, Leaf: lu, Rule: decidetest.AnyContent(lu)}, {Entry: ed, Leaf: ld, Rule: decidetest.AnyContent(ld)}} {
		ds, err := d.Decide(t.Context(), []decide.Request{r})
		if err != nil || ds[0].Kind != decide.New {
			t.Fatalf("decision %d: %+v %v", i, ds, err)
		}
		d.Sequenced(t.Context(), []decide.Outcome{{Ticket: ds[0].Ticket, Index: uint64(i), Queued: true}})
		d.Wait(t.Context())
	}
	// The index empty: the upload is nowhere but in the tree.
	h, err := d.History(t.Context(), p)
	if err == nil && (len(h) != 2 || string(h[0].Leaf) != string(lu)) || err != nil && !errors.Is(err, decide.ErrPathBusy) {
		t.Fatalf("history of %s before the index holds the upload: %d records %v, want both or ErrPathBusy (ask again), never the delete alone", p, len(h), err)
	}
	// The follower indexes the upload: the history is whole.
	if _, err := ix.Append(0, [][]byte{lu}); err != nil {
		t.Fatal(err)
	}
	h, err = d.History(t.Context(), p)
	if err != nil || len(h) != 2 || string(h[0].Leaf) != string(lu) || string(h[1].Leaf) != string(ld) {
		t.Fatalf("history of %s: %d records %v, want the upload at 0 and the delete at 1", p, len(h), err)
	}
}

// TestHostileOldWriterAfterMigration: a writer of the release before
// (cpantlog_claims, cpantlog_acked) started after the migration, e.g. a
// rolling deploy's old instance restarting. It creates its tables again
// (CREATE TABLE IF NOT EXISTS) and decides in them, blind to
// cpantlog_paths, while new writers decide blind to its claims: the same
// path claimed by both at once, with different content. Its statements
// must fail instead.
func TestHostileOldWriterAfterMigration(t *testing.T) {
	dsn := freshDB(t)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`CREATE TABLE cpantlog_claims (path VARBINARY(300) PRIMARY KEY, leaf BLOB NULL, token BINARY(16) NULL, writer VARBINARY(255) NULL, lease_until DATETIME(6) NULL)`,
		`CREATE TABLE cpantlog_acked (idx BIGINT UNSIGNED PRIMARY KEY, path VARBINARY(300) NOT NULL, leaf BLOB NOT NULL, INDEX by_path (path, idx))`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	d, _ := open(t, dsn, "new", time.Second)
	// The old release's start and its claim of a path, verbatim.
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS cpantlog_claims (
		path VARBINARY(300) PRIMARY KEY,
		leaf BLOB NULL,
		token BINARY(16) NULL,
		writer VARBINARY(255) NULL,
		lease_until DATETIME(6) NULL
	)`,
		`CREATE TABLE IF NOT EXISTS cpantlog_acked (
		idx BIGINT UNSIGNED PRIMARY KEY,
		path VARBINARY(300) NOT NULL,
		leaf BLOB NOT NULL,
		INDEX by_path (path, idx)
	)`,
	} {
		db.Exec(q) // may fail: that is the point
	}
	const p = "authors/id/T/TE/TEST/Old-1.tar.gz"
	_, lold := decidetest.Upload(p, 1)
	enew, lnew := decidetest.Upload(p, 2)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	rows, err := tx.Query(`SELECT path, leaf, token, lease_until < NOW(6) FROM cpantlog_claims WHERE path IN (?) ORDER BY path FOR UPDATE`, p)
	if err == nil {
		rows.Close()
		_, err = tx.Exec(`INSERT INTO cpantlog_claims (path, leaf, token, writer, lease_until) VALUES (?, ?, ?, 'old', NOW(6) + INTERVAL 30 SECOND)`, p, lold, []byte("0123456789abcdef"))
	}
	if err == nil {
		err = tx.Commit()
	}
	if err == nil {
		ds, derr := d.Decide(t.Context(), []decide.Request{{Entry: enew, Leaf: lnew, Rule: decidetest.OneContent(lnew, nil)}})
		t.Fatalf("a writer of the release before claimed %s after the migration, and this one decided %+v %v beside it: two contents in flight", p, ds, derr)
	}
}
