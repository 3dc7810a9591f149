package log

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/CPAN-Security/cpan-tlog/log/entry"
	"github.com/CPAN-Security/cpan-tlog/log/index"
)

// Several writers (cpantlog-server serve --storage s3 on one bucket and
// database) decide what may be logged at a path in the database, before
// Tessera sequences anything:
//
//   - A writer claims a path in a transaction that locks the path's row in
//     cpantlog_claims, reads the path's history (the lookup index plus
//     cpantlog_acked, the entries acknowledged but not indexed yet, in one
//     consistent read) and, when PAUSE's rules allow the entry, records
//     the claim: its leaf, a token and a lease in the database's clock.
//   - It then sequences the leaf with Tessera and answers 200 once Tessera
//     has (durably, in the same database). In the background it records
//     the entry in cpantlog_acked and deletes the claim, in one
//     transaction. Concurrent adds share these transactions (groupcommit.go).
//   - A writer that meets another's outstanding claim waits for it to be
//     resolved (the loser of a race then sees the winner's entry: 409, or
//     the same index for an identical entry), up to claimWait (then 503).
//   - The claimant renews its lease while Tessera works; a claim whose
//     lease ran out belongs to a writer that died (or lost the database)
//     between deciding and acknowledging. Its decision stands: the next
//     writer to meet it takes it over, waits until the lookup index covers
//     everything Tessera has sequenced, and logs the claimed leaf itself
//     unless the tree already holds it. So a path never gets two different
//     contents, and a leaf sequenced by a dead writer is never sequenced
//     twice unless that writer was alive, cut off from the database for a
//     whole lease, and its sequencing committed afterwards (then the same
//     leaf appears twice: a repeat, never a rewrite).
//
// The lookup index's follower deletes acked rows below the index size
// after the index holds them, so every read sees each acknowledged entry in
// one table or the other.

// claimLease is how long a claim holds its path without renewal.
const claimLease = 30 * time.Second

// claimWait bounds how long an add waits for another writer's claim on
// its path before it is answered 503: a live writer's claim clears in well
// under a second; a dead one's only when its lease runs out, and the
// client's retry meets it then.
const claimWait = 10 * time.Second

// claimWorkers transactions of claims may be in flight at once, each
// gathering the adds that arrive within claimLinger of its first (2 and
// 5ms measured best of 2-4 and 0-5ms in scripts/bench-ingest.sh; without
// lingering most transactions held one add, at a sixth of the rate).
const (
	claimWorkers = 2
	claimLinger  = 5 * time.Millisecond
)

// ErrPathBusy means another writer holds the path and did not finish in
// time; retry.
var ErrPathBusy = errors.New("another writer is logging this path; retry")

var claimsSchema = []string{
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
}

// sharedClaims is the database side of several writers.
type sharedClaims struct {
	db     *sql.DB
	writer string
	lease  time.Duration
	// claims and resolves batch the transactions of concurrent adds.
	claims   *groupCommit[claimReq, claimResult]
	resolves *groupCommit[ackedEntry, struct{}]
}

// openClaims opens the claims tables; their batching runs until ctx ends.
func openClaims(ctx context.Context, dsn, writer string, lease time.Duration) (*sharedClaims, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	// Read committed: each statement reads what is committed when it
	// starts, so the history read after the claim rows are locked sees
	// the commit that released them (repeatable read would not promise
	// that: its snapshot may be older than the lock). Set for the session,
	// not per transaction: that would cost a round trip each.
	// MySQL 8 names the variable transaction_isolation, MariaDB before
	// 11.1 only tx_isolation.
	var db *sql.DB
	given := cfg.Params // the operator's own session variables, kept
	for _, v := range []string{"transaction_isolation", "tx_isolation"} {
		cfg.Params = map[string]string{}
		for k, x := range given {
			if k != "transaction_isolation" && k != "tx_isolation" {
				cfg.Params[k] = x
			}
		}
		cfg.Params[v] = "'READ-COMMITTED'" // the claims' correctness needs it
		if db, err = sql.Open("mysql", cfg.FormatDSN()); err != nil {
			return nil, err
		}
		var me *mysql.MySQLError
		if err = db.PingContext(ctx); errors.As(err, &me) && me.Number == 1193 { // unknown variable
			db.Close()
			continue
		}
		break
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("claims database: %w", err)
	}
	db.SetMaxOpenConns(32)
	for _, q := range claimsSchema {
		if _, err := db.Exec(q); err != nil {
			db.Close()
			return nil, fmt.Errorf("create the claims tables: %w", err)
		}
	}
	c := &sharedClaims{db: db, writer: writer, lease: lease}
	// A few transactions in flight at once, each for up to 512 adds: the
	// next batch fills while one commits.
	c.claims = newGroupCommit(ctx, claimWorkers, 512, claimLinger, c.claimTx)
	c.resolves = newGroupCommit(ctx, claimWorkers, 512, claimLinger, c.resolveTx)
	return c, nil
}

func (c *sharedClaims) Close() error { return c.db.Close() }

// claimOutcome is what claim decided for one entry.
type claimOutcome int

const (
	claimed      claimOutcome = iota // the path is ours: sequence the leaf
	claimDup                         // an identical entry is logged: rec
	claimRefused                     // err says why
	claimBusy                        // another writer's claim is outstanding
	claimOrphan                      // an expired claim: roll it forward first
)

type claimResult struct {
	outcome claimOutcome
	token   []byte       // claimed: ours; claimOrphan: the orphan's
	leaf    []byte       // claimOrphan: the orphan's leaf
	rec     index.Record // claimDup
	err     error        // claimRefused
}

// claimReq asks to claim e's path for its leaf; decide applies PAUSE's
// rules given the path's history: a duplicate record, or an error, or
// neither (log it).
type claimReq struct {
	e      *entry.Entry
	leaf   []byte
	decide func(history []index.Record) (dup *index.Record, err error)
}

// claim decides reqs, batched with other adds' in one transaction.
func (c *sharedClaims) claim(ctx context.Context, reqs []claimReq) ([]claimResult, error) {
	return c.claims.do(ctx, reqs)
}

// claimTx locks the paths of reqs in one transaction and decides each. A
// path asked for twice in one batch is busy the second time.
func (c *sharedClaims) claimTx(ctx context.Context, reqs []claimReq) ([]claimResult, error) {
	var out []claimResult
	order := make([]int, len(reqs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(reqs[a].e.Path, reqs[b].e.Path) })
	var paths []any
	twice := map[int]bool{}
	for k, i := range order {
		if k > 0 && reqs[order[k-1]].e.Path == reqs[i].e.Path {
			twice[i] = true
			continue
		}
		paths = append(paths, reqs[i].e.Path)
	}
	marks := strings.TrimSuffix(strings.Repeat("?,", len(paths)), ",")
	err := c.retryTx(ctx, func(tx *sql.Tx) error {
		out = make([]claimResult, len(reqs))
		// Lock the rows of paths with a claim outstanding (a row lives from
		// the claim until the entry is recorded as acknowledged, so the
		// table stays small however long the log), in path order: no
		// deadlock between writers. A path without a row is inserted
		// below, and a writer inserting it at the same time makes one of
		// the two transactions fail on the duplicate key and run again.
		rows, err := tx.QueryContext(ctx, `SELECT path, leaf, token, lease_until < NOW(6) FROM cpantlog_claims WHERE path IN (`+marks+`) ORDER BY path FOR UPDATE`, paths...)
		if err != nil {
			return err
		}
		held := map[string]claimResult{}
		exists := map[string]bool{}
		for rows.Next() {
			var p string
			var leaf, token []byte
			var expired sql.NullBool
			if err := rows.Scan(&p, &leaf, &token, &expired); err != nil {
				rows.Close()
				return err
			}
			exists[p] = true
			switch {
			case leaf == nil:
			case expired.Bool:
				held[p] = claimResult{outcome: claimOrphan, token: token, leaf: leaf}
			default:
				held[p] = claimResult{outcome: claimBusy}
			}
		}
		// A lock wait that ends in a deadlock or timeout ends the rows
		// early, with the error in Err: never decide on a partial read.
		if err := rows.Err(); err != nil {
			rows.Close()
			return err
		}
		if err := rows.Close(); err != nil {
			return err
		}
		histories, err := c.histories(ctx, tx, paths)
		if err != nil {
			return err
		}
		var ins, upd strings.Builder
		var insArgs, updArgs []any
		for i, r := range reqs {
			if twice[i] {
				out[i] = claimResult{outcome: claimBusy}
				continue
			}
			if h, ok := held[r.e.Path]; ok {
				out[i] = h
				continue
			}
			dup, err := r.decide(histories[r.e.Path])
			switch {
			case err != nil:
				out[i] = claimResult{outcome: claimRefused, err: err}
				continue
			case dup != nil:
				out[i] = claimResult{outcome: claimDup, rec: *dup}
				continue
			}
			tok := newToken()
			b, args := &ins, &insArgs
			if exists[r.e.Path] {
				b, args = &upd, &updArgs
			}
			if b.Len() > 0 {
				b.WriteString(",")
			}
			b.WriteString("(?, ?, ?, ?, NOW(6) + INTERVAL ? MICROSECOND)")
			*args = append(*args, r.e.Path, r.leaf, tok, c.writer, c.lease.Microseconds())
			out[i] = claimResult{outcome: claimed, token: tok}
		}
		const cols = `INSERT INTO cpantlog_claims (path, leaf, token, writer, lease_until) VALUES `
		if len(insArgs) > 0 {
			if _, err := tx.ExecContext(ctx, cols+ins.String(), insArgs...); err != nil {
				return err
			}
		}
		if len(updArgs) > 0 {
			// Rows this transaction holds locked: overwritten.
			if _, err := tx.ExecContext(ctx, cols+upd.String()+
				` ON DUPLICATE KEY UPDATE leaf = VALUES(leaf), token = VALUES(token), writer = VALUES(writer), lease_until = VALUES(lease_until)`, updArgs...); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// histories reads, in one statement (one consistent view: the follower
// deletes an acked row only after the index holds it), every entry logged
// for paths: those the lookup index holds and those acknowledged but not
// indexed yet.
func (c *sharedClaims) histories(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, paths []any) (map[string][]index.Record, error) {
	marks := strings.TrimSuffix(strings.Repeat("?,", len(paths)), ",")
	rows, err := q.QueryContext(ctx, `SELECT idx, leaf FROM cpantlog_index_leaves WHERE path IN (`+marks+`)
		UNION SELECT idx, leaf FROM cpantlog_acked WHERE path IN (`+marks+`)`, append(slices.Clone(paths), paths...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]index.Record{}
	for rows.Next() {
		var r index.Record
		if err := rows.Scan(&r.Index, &r.Leaf); err != nil {
			return nil, err
		}
		if r.Entry, err = entry.Parse(r.Leaf); err != nil {
			continue // the index counts it; it is not an entry of any path
		}
		if !slices.ContainsFunc(out[r.Entry.Path], func(o index.Record) bool { return o.Index == r.Index }) {
			out[r.Entry.Path] = append(out[r.Entry.Path], r)
		}
	}
	for _, recs := range out {
		slices.SortFunc(recs, func(a, b index.Record) int { return cmp.Compare(a.Index, b.Index) })
	}
	return out, rows.Err()
}

// history is the path's entries, indexed or acknowledged, oldest first.
func (c *sharedClaims) history(ctx context.Context, path string) ([]index.Record, error) {
	h, err := c.histories(ctx, c.db, []any{path})
	return h[path], err
}

// ackedEntry is a sequenced entry whose claim is to be cleared.
type ackedEntry struct {
	path  string
	token []byte
	idx   uint64
	leaf  []byte
	// sequenced is false for a claim cleared without an entry of ours
	// (the tree already held the orphan's leaf).
	sequenced bool
}

// resolve records the acknowledged entries and clears their claims,
// batched with other adds' in one transaction. A claim taken over
// meanwhile is left to its new owner.
func (c *sharedClaims) resolve(ctx context.Context, acks []ackedEntry) error {
	if len(acks) == 0 {
		return nil
	}
	_, err := c.resolves.do(ctx, acks)
	return err
}

func (c *sharedClaims) resolveTx(ctx context.Context, acks []ackedEntry) ([]struct{}, error) {
	var ins strings.Builder
	var insArgs, paths, tokens []any
	for _, a := range acks {
		if a.sequenced {
			if ins.Len() > 0 {
				ins.WriteString(",")
			}
			ins.WriteString("(?, ?, ?)")
			insArgs = append(insArgs, a.idx, a.path, a.leaf)
		}
		paths, tokens = append(paths, a.path), append(tokens, a.token)
	}
	marks := strings.TrimSuffix(strings.Repeat("?,", len(paths)), ",")
	err := c.retryTx(ctx, func(tx *sql.Tx) error {
		if len(insArgs) > 0 {
			if _, err := tx.ExecContext(ctx, `INSERT IGNORE INTO cpantlog_acked (idx, path, leaf) VALUES `+ins.String(), insArgs...); err != nil {
				return err
			}
		}
		// Tokens are random and unique: a path's row matches only its own.
		_, err := tx.ExecContext(ctx, `DELETE FROM cpantlog_claims WHERE path IN (`+marks+`) AND token IN (`+marks+`)`,
			append(slices.Clone(paths), tokens...)...)
		return err
	})
	return make([]struct{}, len(acks)), err
}

// release gives up claims whose leaves were certainly not sequenced
// (Tessera pushed back before queueing them).
func (c *sharedClaims) release(ctx context.Context, path string, token []byte) error {
	_, err := c.db.ExecContext(ctx, `DELETE FROM cpantlog_claims WHERE path = ? AND token = ?`, path, token)
	return err
}

// orphan ends a claim's lease now: its leaf may or may not have been
// sequenced, and the next writer to meet it finds out and rolls it forward.
func (c *sharedClaims) orphan(ctx context.Context, path string, token []byte) error {
	_, err := c.db.ExecContext(ctx, `UPDATE cpantlog_claims SET lease_until = NOW(6) - INTERVAL 1 SECOND WHERE path = ? AND token = ?`, path, token)
	return err
}

// renew extends the leases of claims still being worked on.
func (c *sharedClaims) renew(ctx context.Context, paths []string, tokens [][]byte) error {
	for i := range paths {
		if _, err := c.db.ExecContext(ctx, `UPDATE cpantlog_claims SET lease_until = NOW(6) + INTERVAL ? MICROSECOND WHERE path = ? AND token = ?`,
			c.lease.Microseconds(), paths[i], tokens[i]); err != nil {
			return err
		}
	}
	return nil
}

// takeOver makes an expired claim ours (a fresh token and lease); false
// when another writer took it or it was resolved meanwhile.
func (c *sharedClaims) takeOver(ctx context.Context, path string, old []byte) ([]byte, bool, error) {
	tok := newToken()
	res, err := c.db.ExecContext(ctx, `UPDATE cpantlog_claims SET token = ?, writer = ?, lease_until = NOW(6) + INTERVAL ? MICROSECOND
		WHERE path = ? AND token = ? AND lease_until < NOW(6)`, tok, c.writer, c.lease.Microseconds(), path, old)
	if err != nil {
		return nil, false, err
	}
	n, err := res.RowsAffected()
	return tok, n == 1, err
}

// sequenced is how many entries Tessera has sequenced: every leaf any
// writer sequenced so far has an index below it. The shared lock waits for
// a sequencing transaction in flight.
func (c *sharedClaims) sequenced(ctx context.Context) (uint64, error) {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var next uint64
	if err := tx.QueryRowContext(ctx, `SELECT next FROM SeqCoord WHERE id = 0 LOCK IN SHARE MODE`).Scan(&next); err != nil {
		return 0, fmt.Errorf("read Tessera's sequence position: %w", err)
	}
	return next, tx.Commit()
}

// expiredClaim is a claim whose lease ran out.
type expiredClaim struct {
	path string
	claimResult
}

// expired lists up to limit claims whose lease ran out.
func (c *sharedClaims) expired(ctx context.Context, limit int) ([]expiredClaim, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT path, leaf, token FROM cpantlog_claims WHERE leaf IS NOT NULL AND lease_until < NOW(6) LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []expiredClaim
	for rows.Next() {
		o := expiredClaim{claimResult: claimResult{outcome: claimOrphan}}
		if err := rows.Scan(&o.path, &o.leaf, &o.token); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// forgetIndexed deletes the acked rows the lookup index now holds.
func (c *sharedClaims) forgetIndexed(ctx context.Context, size uint64) error {
	_, err := c.db.ExecContext(ctx, `DELETE FROM cpantlog_acked WHERE idx < ?`, size)
	return err
}

// retryTx runs fn in a transaction, again when the database chose it as
// a deadlock victim or it waited too long for a lock.
func (c *sharedClaims) retryTx(ctx context.Context, fn func(*sql.Tx) error) error {
	for attempt := 0; ; attempt++ {
		tx, err := c.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		err = fn(tx)
		if err == nil {
			err = tx.Commit()
		} else {
			tx.Rollback()
		}
		var me *mysql.MySQLError
		// Deadlock victim, lock wait timeout, or a path another writer
		// claimed for the first time at the same moment: run it again.
		if err != nil && errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205 || me.Number == 1062) && attempt < 10 {
			time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
			continue
		}
		return err
	}
}

func newToken() []byte {
	b := make([]byte, 16)
	rand.Read(b)
	return b
}
