package index

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"
)

// indexerLock is the name of the named lock (GET_LOCK) of the writers
// indexing one database: named after the database, so that the logs of
// one server do not hold each other up; hashed, since a lock name is at
// most 64 characters in MySQL and a database name may be 64 alone.
const indexerLock = `CONCAT('cpantlog_indexer_', LEFT(SHA2(DATABASE(), 256), 47))`

// indexerLockWait bounds taking and giving back the lock: a database that
// does not answer in that time is treated as the lock not being there.
const indexerLockWait = 5 * time.Second

// TryIndexer takes the indexer lock of this database, without waiting: ok
// says whether it did, and then release gives it back (once, when the
// caller's round of indexing is done). It holds one connection of the
// index's pool meanwhile: the lock is the session's, so a writer that dies,
// or whose connection the server closes (wait_timeout, a frozen writer),
// gives it up with the session.
//
// What it promises is an optimisation only: while every writer is live,
// at most one of them indexes at a time, so the others do not read and
// parse the same entry bundles to lose the race in Append (ErrMoved).
// Nothing depends on it for correctness: Append stays safe against
// writers that index without the lock.
func (m *MySQL) TryIndexer(ctx context.Context) (release func(), ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, indexerLockWait)
	defer cancel()
	conn, err := m.db.Conn(ctx)
	if err != nil {
		return nil, false, err
	}
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, `SELECT GET_LOCK(`+indexerLock+`, 0)`).Scan(&got); err != nil {
		// The lock may or may not be held by this session: drop it.
		discard(conn)
		return nil, false, fmt.Errorf("take the indexer lock: %w", err)
	}
	switch {
	case !got.Valid:
		discard(conn)
		return nil, false, errors.New("take the indexer lock: GET_LOCK answered NULL")
	case got.Int64 != 1:
		conn.Close()
		return nil, false, nil
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), indexerLockWait)
		defer cancel()
		var released sql.NullInt64
		if err := conn.QueryRowContext(ctx, `SELECT RELEASE_LOCK(`+indexerLock+`)`).Scan(&released); err != nil || released.Int64 != 1 {
			// A connection back in the pool still holding the lock would
			// keep every other writer skipping until it is closed.
			discard(conn)
			return
		}
		conn.Close()
	}, true, nil
}

// discard closes conn's session instead of giving it back to the pool.
func discard(conn *sql.Conn) {
	conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}
