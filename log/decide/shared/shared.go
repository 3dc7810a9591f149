// Package shared decides what may be logged at a path for any number of
// writers of one log (cpantlog-server serve --storage s3 on one bucket and
// MySQL/MariaDB database), in the database, at the cost of one row per
// path in cpantlog_paths:
//
//   - Deciding: one transaction (shared by the concurrent adds of a
//     writer, groupcommit.go) locks the rows of the paths asked for, reads
//     their history (the lookup index, and the row's last entry, which the
//     index may not hold yet) and, where PAUSE's rules allow the entry,
//     writes the claim into the row: the leaf, a token, the writer and a
//     lease in the database's clock. A path without a row gets one (two
//     writers inserting it at once: one of the transactions fails on the
//     key and runs again).
//   - Sequencing: the writer sequences the claimed leaf with Tessera,
//     renewing its lease meanwhile, and answers 200 once Tessera has,
//     durably. In the background, batched with other adds', it turns the
//     claim into the row's last entry (its index and leaf, the index of the
//     entry before kept too) in one UPDATE: no other table, no delete.
//   - History: every entry of a path is in the lookup index or is its
//     row's last entry. A new decision is taken only when the entry before
//     the row's last is indexed (else the path is busy until the index
//     follower catches up, about a second), so that stays true.
//
// Its promise: no writer ever logs a second content for a path PAUSE's
// rules forbid, whatever the number of writers. Every wait on the database
// in deciding is bounded (a deadline on the context, and each session's
// innodb_lock_wait_timeout, which MySQL and MariaDB both have): a writer
// stopped inside a transaction, holding row locks, makes the others answer
// ErrPathBusy (503), never wait for ever.
//
// Its crash story: a writer that dies (or is stopped, or cut off from the
// database) between deciding and recording leaves a claim whose lease runs
// out. Its decision stands: the next writer to meet the claim, or the
// sweep (Run) within a lease, takes it over, waits until the lookup index
// covers everything Tessera has sequenced, and logs the claimed leaf itself
// unless the tree already holds it. A live writer keeps its claims renewed
// until Tessera answers, however late (an add answered 503 after its wait
// included), so a claim lapses only when its writer cannot renew it: dead,
// frozen (SIGSTOP, a paused VM) or cut off from the database for a lease.
// A leaf sequenced by the dead writer is then not sequenced twice. A
// writer frozen past its lease with the leaf still in Tessera's memory
// queue sequences it when it resumes, after the writer that finished its
// add: the same leaf twice, a repeat, never another content; and if the
// path's delete came between, the path reads as uploaded again (the
// monitor reports an upload after its delete). Nothing here can stop
// that: Tessera's sequencing takes no fence from the claim.
package shared

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/CPAN-Security/cpan-tlog/log/decide"
	"github.com/CPAN-Security/cpan-tlog/log/entry"
	"github.com/CPAN-Security/cpan-tlog/log/index"
)

// Lease is how long a claim holds its path without renewal.
const Lease = 30 * time.Second

// Wait bounds how long a decision waits for another writer's claim on its
// path, and for the database, before it is answered ErrPathBusy (503): a
// live writer's claim clears in well under a second; a dead one's only
// when its lease runs out, and the client's retry meets it then.
const Wait = 10 * time.Second

// LockWait is each session's innodb_lock_wait_timeout, in seconds: a
// statement waiting for a row lock longer fails (and its transaction is
// run again while the decision's deadline allows).
const LockWait = 3

// IdleWait is each session's wait_timeout, in seconds: the server closes a
// connection idle that long, ending its transaction. A writer stopped
// (SIGSTOP, a frozen VM) inside a transaction, Tessera's integration or a
// decision, holds its row locks no longer than that, so the others can go
// on; MySQL and MariaDB both have it (MariaDB's idle_transaction_timeout
// would be narrower, MySQL lacks it). Connections are not kept idle that
// long (ConnMaxIdleTime), and the driver replaces one the server closed.
const IdleWait = 20

// workers transactions may be in flight at once, each gathering the adds
// that arrive within linger of its first (2 and 5ms measured best of 2-4
// and 0-5ms in scripts/bench-ingest.sh; without lingering most
// transactions held one add, at a sixth of the rate).
const (
	workers = 2
	linger  = 5 * time.Millisecond
)

// Config is what a Decider needs besides its database.
type Config struct {
	// DSN is the log's database.
	DSN string
	// Writer names this writer in its claims, for an operator.
	Writer string
	// Lease and Wait default to the constants of the same names.
	Lease, Wait time.Duration
	// Append hands a leaf to Tessera to sequence (a dead writer's claimed
	// leaf, when the tree does not hold it); the channel delivers
	// Tessera's answer, however long it takes.
	Append func(leaf []byte) <-chan Appended
	// CatchUp brings the lookup index up to the tree; IndexSize says
	// how far it is.
	CatchUp   func(ctx context.Context) error
	IndexSize func() (uint64, error)
	// RolledForward, when set, counts a dead writer's claim finished:
	// "found" (the tree held it) or "logged".
	RolledForward func(outcome string)
	Logger        *slog.Logger
}

// Appended is Tessera's answer to an Append: the leaf's index, or why it
// was not sequenced.
type Appended struct {
	Index uint64
	Err   error
}

// Decider is the database's decide.Decider.
type Decider struct {
	cfg   Config
	db    *sql.DB
	paths decide.Locks // this writer's adds of one path wait here, not in the database

	claims  *groupCommit[claimReq, claimResult]
	records *groupCommit[record, struct{}]
	// recording counts the outcomes being recorded in the background.
	recording decide.Group

	// live holds the tickets being sequenced, whose leases are renewed.
	liveMu sync.Mutex
	live   map[*decide.Ticket]bool
}

var _ decide.Decider = (*Decider)(nil)

// Open opens (creating, and migrating from the two tables of before) the
// path table; its batching runs until ctx ends.
func Open(ctx context.Context, cfg Config) (*Decider, error) {
	if cfg.Lease == 0 {
		cfg.Lease = Lease
	}
	if cfg.Wait == 0 {
		cfg.Wait = Wait
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	db, err := openDB(ctx, cfg.DSN)
	if err != nil {
		return nil, err
	}
	for _, q := range schema {
		if _, err := db.ExecContext(ctx, q); err != nil {
			db.Close()
			return nil, fmt.Errorf("create the path table: %w", err)
		}
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate the claims tables: %w", err)
	}
	d := &Decider{cfg: cfg, db: db, live: map[*decide.Ticket]bool{}}
	// A few transactions in flight at once, each for up to 512 adds: the
	// next batch fills while one commits.
	d.claims = newGroupCommit(ctx, workers, 512, linger, cfg.Wait, d.claimTx)
	d.records = newGroupCommit(ctx, workers, 512, linger, cfg.Wait, d.recordTx)
	// A claim committed after its add stopped waiting (at its deadline)
	// is cleared: nobody will sequence it.
	d.claims.abandoned = func(reqs []claimReq, res []claimResult) {
		var recs []record
		for k, r := range res {
			if r.outcome == claimed {
				recs = append(recs, record{path: reqs[k].e.Path, token: r.token})
			}
		}
		if len(recs) > 0 {
			if _, err := d.records.do(context.Background(), recs); err != nil {
				d.cfg.Logger.Warn("could not clear claims of adds that gave up; they expire by themselves", "err", err)
			}
		}
	}
	go d.renewLoop(ctx)
	return d, nil
}

// BoundedDSN is dsn with each session's lock waits (LockWait) and idle
// time (IdleWait) bounded: for the connections of the decisions and the
// lookup index, so that a writer stopped inside a transaction cannot hold
// another writer for long. The operator's own settings are kept.
func BoundedDSN(dsn string) (string, error) { return bounded(dsn, true) }

// IdleBoundedDSN is dsn with each session's idle time bounded (IdleWait),
// for Tessera's connections: a stopped writer's transaction ends then.
// Their lock waits keep the server's default: Tessera's integration holds
// its locks while it writes to S3, and its sequencing, waiting for them,
// fails the whole batch when the wait times out.
func IdleBoundedDSN(dsn string) (string, error) { return bounded(dsn, false) }

func bounded(dsn string, lockWait bool) (string, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", err
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	if _, ok := cfg.Params["innodb_lock_wait_timeout"]; !ok && lockWait {
		cfg.Params["innodb_lock_wait_timeout"] = fmt.Sprint(LockWait)
	}
	if _, ok := cfg.Params["wait_timeout"]; !ok {
		cfg.Params["wait_timeout"] = fmt.Sprint(IdleWait)
	}
	return cfg.FormatDSN(), nil
}

// openDB opens the database with read committed sessions and bounded lock
// waits. Read committed: each statement reads what is committed when it
// starts, so the history read after the rows are locked sees the commit
// that released them (repeatable read would not promise that: its
// snapshot may be older than the lock). Set for the session, not per
// transaction: that would cost a round trip each. MySQL 8 names the
// variable transaction_isolation, MariaDB before 11.1 only tx_isolation.
func openDB(ctx context.Context, dsn string) (*sql.DB, error) {
	bounded, err := BoundedDSN(dsn)
	if err != nil {
		return nil, err
	}
	cfg, _ := mysql.ParseDSN(bounded)
	var db *sql.DB
	given := cfg.Params // the operator's own session variables, kept
	for _, v := range []string{"transaction_isolation", "tx_isolation"} {
		cfg.Params = map[string]string{}
		for k, x := range given {
			if k != "transaction_isolation" && k != "tx_isolation" {
				cfg.Params[k] = x
			}
		}
		cfg.Params[v] = "'READ-COMMITTED'" // the decision's correctness needs it
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
	db.SetConnMaxIdleTime(IdleWait * time.Second / 2)
	return db, nil
}

// DB is the decider's database handle (read committed, bounded lock waits).
func (d *Decider) DB() *sql.DB { return d.db }

// Writer names this writer in its claims.
func (d *Decider) Writer() string { return d.cfg.Writer }

// Close closes the database handle.
func (d *Decider) Close() error { return d.db.Close() }

var schema = []string{
	// One row per path ever claimed. claimed, token, writer and
	// lease_until: the claim in flight (NULL once recorded); idx and
	// leaf: the path's last entry acknowledged; prior_idx: the entry
	// before it, if any.
	`CREATE TABLE IF NOT EXISTS cpantlog_paths (
		path VARBINARY(300) PRIMARY KEY,
		claimed BLOB NULL,
		token BINARY(16) NULL,
		writer VARBINARY(255) NULL,
		lease_until DATETIME(6) NULL,
		idx BIGINT UNSIGNED NULL,
		leaf BLOB NULL,
		prior_idx BIGINT UNSIGNED NULL,
		INDEX by_lease (lease_until)
	)`,
}

// claimOutcome is what a claim transaction decided for one entry.
type claimOutcome int

const (
	claimed      claimOutcome = iota // the path is ours: sequence the leaf
	claimDup                         // an identical entry is logged: rec
	claimRefused                     // err says why
	claimBusy                        // another claim is outstanding, or the index lags
	claimOrphan                      // an expired claim: roll it forward first
)

type claimResult struct {
	outcome claimOutcome
	token   []byte       // claimed: ours; claimOrphan: the orphan's
	leaf    []byte       // claimOrphan: the orphan's leaf
	rec     index.Record // claimDup
	err     error        // claimRefused
}

type claimReq struct {
	e    *entry.Entry
	leaf []byte
	rule decide.Rule
}

// Decide claims the paths of reqs, retrying busy ones (with backoff)
// and finishing dead writers' claims met on the way, until every request
// is decided or the deadline (Wait) passes: then ErrPathBusy.
func (d *Decider) Decide(ctx context.Context, reqs []decide.Request) ([]decide.Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Wait)
	defer cancel()
	out := make([]decide.Decision, len(reqs))
	// This writer's adds of one path queue here, in path order (batches
	// never deadlock), rather than meet each other's claims.
	order := make([]int, len(reqs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(reqs[a].Entry.Path, reqs[b].Entry.Path) })
	unlocks := make([]func(), len(reqs))
	var todo []int
	for k, i := range order {
		if k > 0 && reqs[order[k-1]].Entry.Path == reqs[i].Entry.Path {
			out[i] = decide.Decision{Kind: decide.Refused, Err: decide.ErrPathBusy}
			continue
		}
		u, err := d.paths.LockContext(ctx, reqs[i].Entry.Path)
		if err != nil {
			out[i] = decide.Decision{Kind: decide.Refused, Err: decide.ErrPathBusy}
			continue
		}
		unlocks[i] = u
		todo = append(todo, i)
	}
	slices.Sort(todo)
	for wait := 5 * time.Millisecond; len(todo) > 0; wait = min(2*wait, 200*time.Millisecond) {
		creqs := make([]claimReq, len(todo))
		for k, i := range todo {
			creqs[k] = claimReq{e: reqs[i].Entry, leaf: reqs[i].Leaf, rule: reqs[i].Rule}
		}
		rs, err := d.claims.do(ctx, creqs)
		if err != nil {
			err = d.busy(ctx, fmt.Errorf("claim the path: %w", err))
			for _, i := range todo {
				out[i] = decide.Decision{Kind: decide.Refused, Err: err}
			}
			break
		}
		var retry []int
		for k, i := range todo {
			switch r := rs[k]; r.outcome {
			case claimed:
				tk := decide.NewTicket(reqs[i].Entry, reqs[i].Leaf, r.token, unlocks[i])
				unlocks[i] = nil
				d.liveMu.Lock()
				d.live[tk] = true
				d.liveMu.Unlock()
				out[i] = decide.Decision{Kind: decide.New, Ticket: tk}
			case claimDup:
				out[i] = decide.Decision{Kind: decide.Duplicate, Existing: r.rec}
			case claimRefused:
				out[i] = decide.Decision{Kind: decide.Refused, Err: r.err}
			case claimBusy:
				retry = append(retry, i)
			case claimOrphan:
				if err := d.rollForward(ctx, reqs[i].Entry.Path, r); err != nil {
					out[i] = decide.Decision{Kind: decide.Refused, Err: d.busy(ctx, err)}
				} else {
					retry = append(retry, i)
				}
			}
		}
		todo = retry
		if len(todo) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			for _, i := range todo {
				out[i] = decide.Decision{Kind: decide.Refused, Err: decide.ErrPathBusy}
			}
			todo = nil
		case <-time.After(wait):
		}
	}
	for _, u := range unlocks {
		if u != nil {
			u()
		}
	}
	return out, nil
}

// busy is err, or ErrPathBusy (with err) when the decision's deadline
// passed: the database held a lock too long (another writer stopped
// inside a transaction), and the client should retry.
func (d *Decider) busy(ctx context.Context, err error) error {
	var me *mysql.MySQLError
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &me) && me.Number == 1205) {
		return fmt.Errorf("%w (%v)", decide.ErrPathBusy, err)
	}
	return err
}

// claimTx locks the rows of reqs' paths in one transaction and decides
// each. Paths are distinct within a call of Decide, not across them: a
// path asked for twice in one transaction is busy the second time.
func (d *Decider) claimTx(ctx context.Context, reqs []claimReq) ([]claimResult, error) {
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
	marks := placeholders(len(paths))
	err := retryTx(ctx, d.db, func(tx *sql.Tx) error {
		out = make([]claimResult, len(reqs))
		// Lock the rows of paths, in path order: no deadlock between
		// writers. A path without a row is inserted below.
		rows, err := tx.QueryContext(ctx, `SELECT path, claimed, token, lease_until < NOW(6), idx, leaf, prior_idx FROM cpantlog_paths WHERE path IN (`+marks+`) ORDER BY path FOR UPDATE`, paths...)
		if err != nil {
			return err
		}
		type row struct {
			claimed, token, leaf []byte
			expired              bool
			idx, prior           sql.NullInt64
		}
		got := map[string]row{}
		for rows.Next() {
			var p string
			var r row
			var expired sql.NullBool
			if err := rows.Scan(&p, &r.claimed, &r.token, &expired, &r.idx, &r.leaf, &r.prior); err != nil {
				rows.Close()
				return err
			}
			r.expired = expired.Bool
			got[p] = r
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
		// The index's size, read before its rows (every row below it is
		// read), when a path has an entry before its row's last: nearly
		// every add is of a new path, and skips the round trip.
		var size uint64
		needSize := false
		for _, r := range got {
			needSize = needSize || r.prior.Valid
		}
		if needSize {
			var v []byte
			switch err := tx.QueryRowContext(ctx, `SELECT v FROM cpantlog_index_meta WHERE k = 'size'`).Scan(&v); {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return err
			case len(v) == 8:
				size = binary.BigEndian.Uint64(v)
			}
		}
		histories, err := indexHistories(ctx, tx, paths)
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
			row, exists := got[r.e.Path]
			switch {
			case row.claimed != nil && row.expired:
				out[i] = claimResult{outcome: claimOrphan, token: row.token, leaf: row.claimed}
				continue
			case row.claimed != nil:
				out[i] = claimResult{outcome: claimBusy}
				continue
			case row.prior.Valid && uint64(row.prior.Int64) >= size:
				// The entry before the row's last is not indexed yet: the
				// history would lack it. The follower catches up shortly.
				out[i] = claimResult{outcome: claimBusy}
				continue
			}
			dup, err := r.rule(withLast(histories[r.e.Path], row.idx, row.leaf))
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
			if exists {
				b, args = &upd, &updArgs
			}
			if b.Len() > 0 {
				b.WriteString(",")
			}
			b.WriteString("(?, ?, ?, ?, NOW(6) + INTERVAL ? MICROSECOND)")
			*args = append(*args, r.e.Path, r.leaf, tok, d.cfg.Writer, d.cfg.Lease.Microseconds())
			out[i] = claimResult{outcome: claimed, token: tok}
		}
		const cols = `INSERT INTO cpantlog_paths (path, claimed, token, writer, lease_until) VALUES `
		if len(insArgs) > 0 {
			// A writer inserting one of these paths at the same moment
			// makes one of the two fail on the key (1062): run again.
			if _, err := tx.ExecContext(ctx, cols+ins.String(), insArgs...); err != nil {
				return err
			}
		}
		if len(updArgs) > 0 {
			// Rows this transaction holds locked: overwritten.
			if _, err := tx.ExecContext(ctx, cols+upd.String()+
				` ON DUPLICATE KEY UPDATE claimed = VALUES(claimed), token = VALUES(token), writer = VALUES(writer), lease_until = VALUES(lease_until)`, updArgs...); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }

// indexHistories reads the lookup index's entries of paths, each path's
// oldest first. The rows are sorted here, not by the database: asked to
// ORDER BY idx over a list of paths, MariaDB walks the whole table in
// index order (measured: 12,000 rows examined per decision at 40,000
// entries, a third of the database's time on the add's path), where the
// path index reads only the rows of those paths.
func indexHistories(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, paths []any) (map[string][]index.Record, error) {
	rows, err := q.QueryContext(ctx, `SELECT idx, leaf FROM cpantlog_index_leaves FORCE INDEX (by_path) WHERE path IN (`+placeholders(len(paths))+`)`, paths...)
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
		out[r.Entry.Path] = append(out[r.Entry.Path], r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, h := range out {
		slices.SortFunc(h, func(a, b index.Record) int { return cmp.Compare(a.Index, b.Index) })
	}
	return out, nil
}

// History is the path's entries, indexed or acknowledged, oldest first:
// the index's, and the row's last entry. The row keeps the last only, so
// the index must hold the one before it (as a decision requires): an
// upload and its delete acknowledged within the follower's lag read as
// the delete alone (GET /lookup: "not in the log"). Until it does, the
// index is brought up to the tree, and after Wait the answer is
// ErrPathBusy. The row is read first: whatever it says was last, the
// index read after it holds everything before.
func (d *Decider) History(ctx context.Context, path string) ([]index.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Wait)
	defer cancel()
	var idx, prior sql.NullInt64
	var leaf []byte
	for {
		err := d.db.QueryRowContext(ctx, `SELECT idx, leaf, prior_idx FROM cpantlog_paths WHERE path = ?`, path).Scan(&idx, &leaf, &prior)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, d.busy(ctx, err)
		}
		indexed := func() (bool, error) {
			size, err := d.cfg.IndexSize()
			return !prior.Valid || uint64(prior.Int64) < size, err
		}
		ok, err := indexed()
		if err == nil && !ok {
			if err = d.cfg.CatchUp(ctx); err == nil {
				ok, err = indexed()
			}
		}
		if err != nil {
			return nil, d.busy(ctx, err)
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: the lookup index does not hold %s's entry before its last yet", decide.ErrPathBusy, path)
		case <-time.After(50 * time.Millisecond):
		}
	}
	h, err := indexHistories(ctx, d.db, []any{path})
	if err != nil {
		return nil, d.busy(ctx, err)
	}
	return withLast(h[path], idx, leaf), nil
}

// withLast is h, the lookup index's entries of a path, with the last
// entry its row records (idx, leaf) when the index does not hold it yet:
// every entry of the path, oldest first.
func withLast(h []index.Record, idx sql.NullInt64, leaf []byte) []index.Record {
	if !idx.Valid || leaf == nil || slices.ContainsFunc(h, func(r index.Record) bool { return r.Index == uint64(idx.Int64) }) {
		return h
	}
	e, err := entry.Parse(leaf)
	if err != nil {
		return h
	}
	h = append(h, index.Record{Index: uint64(idx.Int64), Leaf: leaf, Entry: e})
	slices.SortFunc(h, func(a, b index.Record) int { return cmp.Compare(a.Index, b.Index) })
	return h
}

// record is an outcome to write into a path's row: sequenced at idx (the
// claim becomes the row's last entry), or not (the claim is cleared).
type record struct {
	path      string
	token     []byte
	idx       uint64
	sequenced bool
}

// Sequenced releases the tickets, and records the sequenced ones in their
// rows in the background, batched with other adds'. A ticket refused
// before Tessera queued it is released in the database; one that failed
// after (perhaps sequenced) has its lease ended, so that the next writer
// to meet it finds out and rolls it forward.
func (d *Decider) Sequenced(ctx context.Context, outs []decide.Outcome) {
	bg := context.WithoutCancel(ctx)
	var recs []record
	d.liveMu.Lock()
	for _, o := range outs {
		delete(d.live, o.Ticket)
	}
	d.liveMu.Unlock()
	for _, o := range outs {
		t := o.Ticket
		switch {
		case o.Err == nil:
			recs = append(recs, record{path: t.Path, token: t.Token, idx: o.Index, sequenced: true})
		case !o.Queued:
			recs = append(recs, record{path: t.Path, token: t.Token})
		default:
			c, cancel := context.WithTimeout(bg, d.cfg.Wait)
			if _, err := d.db.ExecContext(c, endLease, newToken(), t.Path, t.Token); err != nil {
				d.cfg.Logger.Warn("could not give up a path claim; it expires by itself", "path", t.Path, "err", err)
			}
			cancel()
		}
		t.Release()
	}
	// The entries are durably sequenced and acknowledged: nothing waits
	// on this transaction. If this writer dies first, the claims are
	// rolled forward and the leaves found in the tree.
	if len(recs) > 0 {
		d.recording.Go(func() {
			if _, err := d.records.do(bg, recs); err != nil {
				d.cfg.Logger.Warn("could not record acknowledged entries in the database; their claims are rolled forward when they expire", "entries", len(recs), "err", err)
			}
		})
	}
}

// endLease gives a claim up (args: a new token, the path, the claim's
// token): its lease ends, so that the next writer to meet it rolls it
// forward. The token changes too: a renewal that listed the claim as live
// just before (renewLoop) then matches nothing, where it would have
// extended the lease again, holding the path for a lease with nobody
// finishing it.
const endLease = `UPDATE cpantlog_paths SET lease_until = NOW(6) - INTERVAL 1 SECOND, token = ? WHERE path = ? AND token = ?`

// Wait waits for the background records of outcomes reported.
func (d *Decider) Wait(ctx context.Context) bool { return d.recording.Wait(ctx) }

// recordTx writes outcomes into their rows, in one statement: a row whose
// claim is still the ticket's (a claim taken over meanwhile belongs to its
// new owner; tokens are random, so a row matches only its own) loses its
// claim, and a sequenced entry becomes its last, the last before its
// prior. The row's last leaf is its claimed leaf (the token says the claim
// is the ticket's): copied within the row, not sent again. prior_idx and
// leaf are assigned before idx and claimed, so that they read the old
// values whether the server assigns left to right (MySQL) or all at once
// (MariaDB's SIMULTANEOUS_ASSIGNMENT).
func (d *Decider) recordTx(ctx context.Context, recs []record) ([]struct{}, error) {
	var idxCase strings.Builder
	var seqPaths, idxArgs, paths, tokens []any
	for _, r := range recs {
		paths, tokens = append(paths, r.path), append(tokens, r.token)
		if r.sequenced {
			seqPaths = append(seqPaths, r.path)
			idxCase.WriteString(" WHEN ? THEN ?")
			idxArgs = append(idxArgs, r.path, r.idx)
		}
	}
	q := `UPDATE cpantlog_paths SET `
	var args []any
	if len(seqPaths) > 0 {
		seq := placeholders(len(seqPaths))
		q += `prior_idx = IF(path IN (` + seq + `), idx, prior_idx),
			leaf = IF(path IN (` + seq + `), claimed, leaf),
			idx = CASE path` + idxCase.String() + ` ELSE idx END, `
		args = append(append(append(args, seqPaths...), seqPaths...), idxArgs...)
	}
	q += `claimed = NULL, token = NULL, lease_until = NULL
		WHERE path IN (` + placeholders(len(paths)) + `) AND token IN (` + placeholders(len(tokens)) + `)`
	args = append(append(args, paths...), tokens...)
	err := retryTx(ctx, d.db, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	})
	return make([]struct{}, len(recs)), err
}

// renewLoop extends, every third of a lease, the leases of the tickets
// being sequenced, in one statement.
func (d *Decider) renewLoop(ctx context.Context) {
	t := time.NewTicker(d.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.liveMu.Lock()
		var paths, tokens []any
		for tk := range d.live {
			paths, tokens = append(paths, tk.Path), append(tokens, tk.Token)
		}
		d.liveMu.Unlock()
		for len(paths) > 0 {
			n := min(len(paths), 512)
			err := d.renew(ctx, paths[:n], tokens[:n])
			if err != nil && ctx.Err() == nil && n > 1 {
				// One row locked by another transaction (a writer
				// stopped inside a claim transaction holds its rows
				// until the server drops its session, IdleWait) fails
				// the whole statement: renewed one by one, the other
				// claims do not lapse with it.
				err = d.renewEach(ctx, paths[:n], tokens[:n])
			}
			if err != nil && ctx.Err() == nil {
				d.cfg.Logger.Warn("could not renew path claims; another writer may finish them", "err", err)
			}
			paths, tokens = paths[n:], tokens[n:]
		}
	}
}

// renewEach renews the claims of paths, tokens one by one, 8 at a time,
// all within a third of a lease: a database that does not answer at all
// must not hold the renewals for len(paths) such waits. It says how many
// failed, and the first error.
func (d *Decider) renewEach(ctx context.Context, paths, tokens []any) error {
	c, cancel := context.WithTimeout(ctx, d.cfg.Lease/3)
	defer cancel()
	var each sync.WaitGroup
	errs := make([]error, len(paths))
	sem := make(chan struct{}, 8)
	for i := range paths {
		each.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-c.Done():
				errs[i] = c.Err()
				return
			}
			defer func() { <-sem }()
			errs[i] = d.renew(c, paths[i:i+1], tokens[i:i+1])
		})
	}
	each.Wait()
	if failed := slices.DeleteFunc(errs, func(e error) bool { return e == nil }); len(failed) > 0 {
		return fmt.Errorf("%d of %d claims: %w", len(failed), len(paths), failed[0])
	}
	return nil
}

// renew extends the leases of the claims of paths, tokens (in one
// statement, bounded by a third of a lease).
func (d *Decider) renew(ctx context.Context, paths, tokens []any) error {
	c, cancel := context.WithTimeout(ctx, d.cfg.Lease/3)
	defer cancel()
	// Tokens are random and unique: a path's row matches only its own.
	_, err := d.db.ExecContext(c, `UPDATE cpantlog_paths SET lease_until = NOW(6) + INTERVAL ? MICROSECOND WHERE path IN (`+placeholders(len(paths))+`) AND token IN (`+placeholders(len(tokens))+`)`,
		append(append([]any{d.cfg.Lease.Microseconds()}, paths...), tokens...)...)
	return err
}

// rollForward finishes the add of a writer that claimed path and did not
// record it before its lease ran out: its decision stands. Once the
// lookup index covers every entry sequenced so far, the tree either holds
// the claimed leaf (the writer sequenced it) or never will (it did not):
// then it is logged now. Every wait is bounded by ctx.
func (d *Decider) rollForward(ctx context.Context, path string, orphan claimResult) error {
	tok := newToken()
	res, err := d.db.ExecContext(ctx, `UPDATE cpantlog_paths SET token = ?, writer = ?, lease_until = NOW(6) + INTERVAL ? MICROSECOND
		WHERE path = ? AND token = ? AND lease_until < NOW(6)`, tok, d.cfg.Writer, d.cfg.Lease.Microseconds(), path, orphan.token)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return err // another writer took it, or it was recorded: look again
	}
	bg := context.WithoutCancel(ctx)
	giveUp := func(err error) error {
		c, cancel := context.WithTimeout(bg, d.cfg.Wait)
		defer cancel()
		if _, oerr := d.db.ExecContext(c, endLease, newToken(), path, tok); oerr != nil {
			d.cfg.Logger.Warn("could not give up a path claim; it expires by itself", "path", path, "err", oerr)
		}
		return err
	}
	d.cfg.Logger.Warn("a writer claimed a path and did not finish; finishing its add", "path", path)
	next, err := sequenced(ctx, d.db)
	if err != nil {
		return giveUp(err)
	}
	for {
		size, err := d.cfg.IndexSize()
		if err != nil {
			return giveUp(err)
		}
		if size >= next {
			break
		}
		if err := d.cfg.CatchUp(ctx); err != nil {
			return giveUp(err)
		}
		select {
		case <-ctx.Done():
			return giveUp(ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	h, err := indexHistories(ctx, d.db, []any{path})
	if err != nil {
		return giveUp(err)
	}
	if slices.ContainsFunc(h[path], func(r index.Record) bool { return bytes.Equal(r.Leaf, orphan.leaf) }) {
		d.rolled("found")
		_, err := d.records.do(bg, []record{{path: path, token: tok}})
		return err
	}
	// Renewed while Tessera works, until it answers: given up at ctx's
	// deadline, the claim would let another writer log the leaf again
	// while Tessera may still sequence it, after what came meanwhile.
	d.liveMu.Lock()
	tk := &decide.Ticket{Path: path, Token: tok}
	d.live[tk] = true
	d.liveMu.Unlock()
	finish := func(a Appended) error {
		d.liveMu.Lock()
		delete(d.live, tk)
		d.liveMu.Unlock()
		if a.Err != nil {
			return giveUp(a.Err)
		}
		d.rolled("logged")
		_, err := d.records.do(bg, []record{{path: path, token: tok, idx: a.Index, sequenced: true}})
		return err
	}
	answer := d.cfg.Append(orphan.leaf)
	select {
	case a := <-answer:
		return finish(a)
	case <-ctx.Done():
		d.recording.Go(func() {
			if err := finish(<-answer); err != nil {
				d.cfg.Logger.Warn("could not record a dead writer's add that this writer logged late; it is rolled forward again when its claim expires", "path", path, "err", err)
			}
		})
		return fmt.Errorf("%w: Tessera did not sequence the leaf in time (%v)", decide.ErrPathBusy, ctx.Err())
	}
}

func (d *Decider) rolled(outcome string) {
	if d.cfg.RolledForward != nil {
		d.cfg.RolledForward(outcome)
	}
}

// sequenced is how many entries Tessera has sequenced: every leaf any
// writer sequenced so far has an index below it. The shared lock waits for
// a sequencing transaction in flight (bounded: ctx, and the session's lock
// wait).
func sequenced(ctx context.Context, db *sql.DB) (uint64, error) {
	tx, err := db.BeginTx(ctx, nil)
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

// Run rolls forward, once a lease, the claims of writers that died and
// whose adds nobody retried: their decisions stand, and an entry
// sequenced but never acknowledged is recorded as such.
func (d *Decider) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(d.cfg.Lease):
		}
		if err := d.sweep(ctx); err != nil && ctx.Err() == nil {
			d.cfg.Logger.Warn("could not finish dead writers' adds; will try again", "err", err)
		}
	}
}

// sweep rolls forward up to 100 expired claims.
func (d *Decider) sweep(ctx context.Context) error {
	c, cancel := context.WithTimeout(ctx, d.cfg.Wait)
	rows, err := d.db.QueryContext(c, `SELECT path, claimed, token FROM cpantlog_paths WHERE lease_until < NOW(6) AND claimed IS NOT NULL LIMIT 100`)
	if err != nil {
		cancel()
		return err
	}
	type orphan struct {
		path string
		claimResult
	}
	var orphans []orphan
	for rows.Next() {
		o := orphan{claimResult: claimResult{outcome: claimOrphan}}
		if err := rows.Scan(&o.path, &o.leaf, &o.token); err != nil {
			rows.Close()
			cancel()
			return err
		}
		orphans = append(orphans, o)
	}
	rows.Close()
	cancel()
	for _, o := range orphans {
		c, cancel := context.WithTimeout(ctx, d.cfg.Wait)
		unlock, err := d.paths.LockContext(c, o.path)
		if err == nil {
			err = d.rollForward(c, o.path, o.claimResult)
			unlock()
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			d.cfg.Logger.Warn("could not finish a dead writer's add; will try again", "path", o.path, "err", err)
		}
	}
	return nil
}

// Indexing needs nothing: the row holds what the index lacks.
func (d *Decider) Indexing([][]byte) {}

// Indexed needs nothing: no row is deleted when the index catches up.
func (d *Decider) Indexed(uint64) {}

// retryTx runs fn in a transaction, again when the database chose it as a
// deadlock victim, it waited too long for a lock, or a path another writer
// claimed for the first time at the same moment, while ctx allows.
func retryTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	for attempt := 0; ; attempt++ {
		tx, err := db.BeginTx(ctx, nil)
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
		if err != nil && errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205 || me.Number == 1062) && attempt < 10 && ctx.Err() == nil {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
			}
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
