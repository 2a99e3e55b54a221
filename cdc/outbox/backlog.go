package outbox

import (
	"context"
	"fmt"
	"time"
)

// BacklogCountCap is the most rows ReadBacklog counts; beyond it, the
// planner's estimate of the table's rows stands in for the count, so that
// reading the backlog of a large table stays cheap.
const BacklogCountCap = 10000

// Backlog is what waits in an outbox table.
type Backlog struct {
	// Rows is the number of rows in the table (claimed ones included, until
	// their batch commits its delete); an estimate when Estimated.
	Rows      int64
	Estimated bool
	// OldestAge is the age of the row with the lowest id (the next one
	// claimed) by its created_at, on the database's clock; zero when the
	// table is empty or that created_at is NULL.
	OldestAge time.Duration
}

// ReadBacklog reads the backlog of the outbox table ("schema.table"): it
// counts up to BacklogCountCap rows and reads one row by the primary key.
func ReadBacklog(ctx context.Context, q querier, table string) (Backlog, error) {
	t, err := ident(table)
	if err != nil {
		return Backlog{}, err
	}
	var b Backlog
	b.Rows, b.Estimated, err = countRows(ctx, q, t)
	if err != nil {
		return Backlog{}, fmt.Errorf("reading the backlog of outbox table %s: %w", table, err)
	}
	var age float64
	err = q.QueryRow(ctx, `SELECT coalesce((SELECT extract(epoch FROM clock_timestamp() - created_at) FROM `+t+` ORDER BY id LIMIT 1), 0)::float8`).Scan(&age)
	if err != nil {
		return Backlog{}, fmt.Errorf("reading the backlog of outbox table %s: %w", table, err)
	}
	b.OldestAge = time.Duration(max(age, 0) * float64(time.Second))
	return b, nil
}

// countRows counts the rows of table t (quoted) up to BacklogCountCap, and
// gives the planner's estimate beyond (estimated true).
func countRows(ctx context.Context, q querier, t string) (rows int64, estimated bool, err error) {
	var estimate int64
	err = q.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM (SELECT 1 FROM `+t+` LIMIT $1) s),
		(SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = $2::regclass)`,
		BacklogCountCap, t).Scan(&rows, &estimate)
	if err != nil {
		return 0, false, err
	}
	if rows >= BacklogCountCap {
		return max(rows, estimate), true, nil
	}
	return rows, false, nil
}

// Backlog reads the backlog of the poller's table.
func (p *Poller) Backlog(ctx context.Context) (Backlog, error) {
	return ReadBacklog(ctx, p.pool, p.cfg.Table)
}
