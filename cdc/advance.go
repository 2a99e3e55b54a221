package cdc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Confirm moves slot's confirmed position forward to lsn with
// pg_replication_slot_advance, for when no Reader streams from it (for
// example at shutdown, once the Reader has stopped and the last deliveries
// have settled). It waits briefly for a walsender still holding the slot
// to exit; a position at or behind the slot's is left as it is.
func Confirm(ctx context.Context, url, slot string, lsn LSN) error {
	return confirm(ctx, url, slot, lsn, 0)
}

// confirm is Confirm for a Reader whose last session's walsender was
// process own (0: unknown): it waits for that walsender to exit, but
// returns an error wrapping ErrSlotInUse at once when another process
// holds the slot, which has then been taken over (docs/scaling.md,
// "Rolling restarts") and is confirmed by its new reader.
func confirm(ctx context.Context, url, slot string, lsn LSN, own uint32) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connecting to confirm slot %s: %w", slot, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for {
		var text string
		var holder int64
		err := conn.QueryRow(ctx, `SELECT coalesce(confirmed_flush_lsn, '0/0')::text, coalesce(active_pid, 0) FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&text, &holder)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("confirming slot %s: the slot does not exist", slot)
		}
		if err != nil {
			return fmt.Errorf("reading slot %s: %w", slot, err)
		}
		confirmed, err := pglogrepl.ParseLSN(text)
		if err != nil {
			return fmt.Errorf("reading slot %s: %w", slot, err)
		}
		if lsn <= confirmed {
			return nil
		}
		if own != 0 && holder != 0 && holder != int64(own) {
			return fmt.Errorf("confirming slot %s at %s: %w: pid %d streams from it now", slot, lsn, ErrSlotInUse, holder)
		}
		_, err = conn.Exec(ctx, `SELECT pg_replication_slot_advance($1, $2::pg_lsn)`, slot, lsn.String())
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55006" { // object_in_use: the walsender is still exiting
			select {
			case <-ctx.Done():
				return fmt.Errorf("confirming slot %s at %s: %w", slot, lsn, ctx.Err())
			case <-time.After(100 * time.Millisecond):
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("confirming slot %s at %s: %w", slot, lsn, err)
		}
		return nil
	}
}
