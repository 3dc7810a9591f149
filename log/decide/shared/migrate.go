package shared

import (
	"context"
	"database/sql"
	"fmt"
)

// migrate moves the rows of the two tables of before (cpantlog_claims,
// one row per claim in flight; cpantlog_acked, the entries acknowledged
// but not indexed yet) into cpantlog_paths, then replaces them with
// tables of one column (tombstone): a writer of the release before,
// started after the migration, creates its tables only if they do not
// exist, and would then decide in them, blind to cpantlog_paths (and the
// new writers blind to its claims: two contents of one path in flight);
// with the tombstones there, its statements name columns they lack, and
// every add of it fails instead. It is idempotent: a row already moved is
// left as it is, a tombstone holds nothing to move, and a migration cut
// short runs again at the next open. Every writer must still run this
// version before any takes adds: one of the release before, live while
// the migration runs, may claim between the move and the tombstone.
//
// An acknowledged entry becomes its path's last entry, the one before it
// (if several wait for the index) its prior; with only one, the entry
// itself is taken as prior, so the path's next decision waits until the
// index holds it (whatever came before is then indexed too).
func migrate(ctx context.Context, db *sql.DB) error {
	// A table of the release before has a path column; a tombstone not.
	has := func(table string) (bool, error) {
		var n int
		err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? AND column_name = 'path'`, table).Scan(&n)
		return n > 0, err
	}
	acked, err := has("cpantlog_acked")
	if err != nil {
		return err
	}
	if acked {
		type entry struct {
			idx  uint64
			leaf []byte
		}
		last := map[string][2]*entry{} // path -> last, prior
		rows, err := db.QueryContext(ctx, `SELECT idx, path, leaf FROM cpantlog_acked ORDER BY idx`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var e entry
			var p string
			if err := rows.Scan(&e.idx, &p, &e.leaf); err != nil {
				rows.Close()
				return err
			}
			l := last[p]
			last[p] = [2]*entry{&e, l[0]}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for p, l := range last {
			prior := l[0].idx
			if l[1] != nil {
				prior = l[1].idx
			}
			if _, err := db.ExecContext(ctx, `INSERT INTO cpantlog_paths (path, idx, leaf, prior_idx) VALUES (?, ?, ?, ?)
				ON DUPLICATE KEY UPDATE idx = IF(idx IS NULL OR idx < VALUES(idx), VALUES(idx), idx),
				leaf = IF(leaf IS NULL OR idx = VALUES(idx), VALUES(leaf), leaf),
				prior_idx = IF(prior_idx IS NULL OR prior_idx < VALUES(prior_idx), VALUES(prior_idx), prior_idx)`, p, l[0].idx, l[0].leaf, prior); err != nil {
				return fmt.Errorf("move acknowledged entry of %s: %w", p, err)
			}
		}
	}
	claims, err := has("cpantlog_claims")
	if err != nil {
		return err
	}
	if claims {
		// A claim in flight stays in flight (its lease as it was): its
		// writer, or whoever meets it after the lease, finishes it. The
		// token is compared last, whether the server assigns left to
		// right or all at once.
		if _, err := db.ExecContext(ctx, `INSERT INTO cpantlog_paths (path, claimed, token, writer, lease_until)
			SELECT path, leaf, token, writer, lease_until FROM cpantlog_claims c WHERE c.leaf IS NOT NULL
			ON DUPLICATE KEY UPDATE claimed = IF(cpantlog_paths.token IS NULL, c.leaf, cpantlog_paths.claimed),
				writer = IF(cpantlog_paths.token IS NULL, c.writer, cpantlog_paths.writer),
				lease_until = IF(cpantlog_paths.token IS NULL, c.lease_until, cpantlog_paths.lease_until),
				token = IF(cpantlog_paths.token IS NULL, c.token, cpantlog_paths.token)`); err != nil {
			return fmt.Errorf("move claims: %w", err)
		}
	}
	// Dropped once moved, and a tombstone in its place: a second run
	// finds nothing to move, and a writer of the release before nothing
	// to decide in.
	for _, t := range []string{"cpantlog_acked", "cpantlog_claims"} {
		old, err := has(t)
		if err != nil {
			return err
		}
		if old {
			if _, err := db.ExecContext(ctx, `DROP TABLE IF EXISTS `+t); err != nil {
				return err
			}
		}
		if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+t+` (moved_to_cpantlog_paths BOOLEAN NULL)`); err != nil {
			return err
		}
	}
	return nil
}
