package index

import (
	"database/sql"
	"fmt"
	"testing"
	"time"
)

// mysqlDSN is the DSN of a fresh database, or skips without a server.
func mysqlDSN(t *testing.T) string {
	t.Helper()
	dsn := testDatabase(t)
	if dsn == "" {
		t.Skip("needs CPANTLOG_TEST_MYSQL_DSN")
	}
	return dsn
}

func openMySQL(t *testing.T, dsn string) *MySQL {
	t.Helper()
	m, err := OpenMySQL(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// tryIndexer is TryIndexer that fails the test on an error.
func tryIndexer(t *testing.T, m *MySQL) (func(), bool) {
	t.Helper()
	release, ok, err := m.TryIndexer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return release, ok
}

// TestIndexerLock: one holder at a time per database, whatever the
// number of handles; released, or its session gone, another takes it; a
// handle on another database has a lock of its own.
func TestIndexerLock(t *testing.T) {
	dsn := mysqlDSN(t)
	a, b := openMySQL(t, dsn), openMySQL(t, dsn)
	other := openMySQL(t, mysqlDSN(t))

	releaseA, ok := tryIndexer(t, a)
	if !ok {
		t.Fatal("the first TryIndexer did not take the lock")
	}
	if _, ok := tryIndexer(t, b); ok {
		t.Fatal("two handles on one database hold the indexer lock at once")
	}
	if release, ok := tryIndexer(t, other); !ok {
		t.Error("a handle on another database finds its lock held")
	} else {
		release()
	}
	// Given back, the connection goes back to a's pool without the lock.
	releaseA()
	releaseB, ok := tryIndexer(t, b)
	if !ok {
		t.Fatal("the lock released by one handle is not free for another")
	}
	releaseB()

	// A holder whose session ends (killed, or its writer dead) gives it up.
	releaseA, ok = tryIndexer(t, a)
	if !ok {
		t.Fatal("the lock released is not free")
	}
	var id sql.NullInt64
	if err := b.db.QueryRow(`SELECT IS_USED_LOCK(` + indexerLock + `)`).Scan(&id); err != nil || !id.Valid {
		t.Fatalf("holder of the indexer lock: %v, %v", id, err)
	}
	if _, err := b.db.Exec(fmt.Sprintf("KILL CONNECTION %d", id.Int64)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if release, ok := tryIndexer(t, b); ok {
			release()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lock of a killed session is still held")
		}
	}
	// Giving back a lock whose session is gone is harmless.
	releaseA()
	if release, ok := tryIndexer(t, a); !ok {
		t.Error("a's handle cannot take the lock after its session was killed")
	} else {
		release()
	}
}
