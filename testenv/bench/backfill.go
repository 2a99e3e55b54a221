package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

// backfill: a table of backfill-rows rows sent by a backfill submitted
// through the admin API (`walhook backfill` does the same), while a live
// stream of 500 single-row transactions a second goes on. Timed from the
// submission to the last verified row; reports the live events'
// commit-to-delivery latency during the backfill.
func (b *bench) backfill(ctx context.Context) (result, error) {
	const liveRate = 500
	rows := b.o.backfillRows
	e, err := b.setup(ctx, map[string]string{"bench": newSecret()}, "-latency-type", b.table.event)
	if err != nil {
		return result{}, err
	}
	defer e.stop(ctx)
	fmt.Fprintf(os.Stderr, "  writing %d rows to backfill…\n", rows)
	for _, q := range []string{
		`CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, amount numeric(12,2), created_at timestamptz NOT NULL DEFAULT now())`,
		`INSERT INTO items (id, name, amount) SELECT i, 'item ' || i, i * 0.25 FROM generate_series(1, ` + fmt.Sprint(rows) + `) i`,
		`VACUUM ANALYZE items`,
		`ALTER PUBLICATION ` + pgx.Identifier{e.slot}.Sanitize() + ` ADD TABLE items`,
	} {
		if _, err := e.pool.Exec(ctx, q); err != nil {
			return result{}, fmt.Errorf("preparing the table: %w", err)
		}
	}
	// The table was there before the slot, as it is for a user: the slot
	// (its restart position too, which needs the running-transactions
	// record a checkpoint writes) moves past the load, so that walhook's
	// start does not decode it again.
	if _, err := e.pool.Exec(ctx, `CHECKPOINT`); err != nil {
		return result{}, err
	}
	if _, err := e.pool.Exec(ctx, `SELECT pg_replication_slot_advance($1, pg_current_wal_lsn())`, e.slot); err != nil {
		return result{}, fmt.Errorf("moving the slot past the load: %w", err)
	}
	admin, err := e.startWithAdmin(ctx, "", `event "item.synced" {
  table = "items"
  on    = ["read"]
}`)
	if err != nil {
		return result{}, err
	}

	stop := make(chan struct{})
	live := make(chan error, 1)
	go func() {
		_, err := e.writeLive(ctx, liveRate, 0, stop)
		live <- err
	}()
	time.Sleep(time.Second) // the live stream runs before the backfill starts
	m := e.startMeter()
	if err := admin.post(ctx, "/v1/backfills", []byte(`{"table": "items"}`)); err != nil {
		close(stop)
		return result{}, fmt.Errorf("submitting the backfill: %w", err)
	}
	s, err := e.waitReceivedOf(ctx, "item.synced", rows, b.o.timeout)
	res := m.finish(rows)
	close(stop)
	if lerr := <-live; lerr != nil {
		return res, lerr
	}
	res.extra = fmt.Sprintf("rows/s with a live stream of %d rows/s; live commit-to-delivery p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d live events)",
		liveRate, s.P50ms, s.P99ms, s.MaxMs, s.ByType[b.table.event])
	if errors.Is(err, errIncomplete) {
		res.extra = fmt.Sprintf("INCOMPLETE: %d of %d within %s; ", s.ByType["item.synced"], rows, b.o.timeout) + res.extra
		return res, nil
	}
	return res, err
}
