package relay

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/backfill"
	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/rules"
	"github.com/walhook/walhook/internal/store"
)

// SlotRecreation is what RecreateSlot did.
type SlotRecreation struct {
	// Before is the slot as it was (Exists false: it was gone).
	Before cdc.SlotStatus
	// Previous is walhook's record before; nil when there was none.
	Previous *cdc.SlotRecord
	// Record is the new slot, now recorded.
	Record cdc.SlotRecord
	// Backfills are the backfills queued (with backfill).
	Backfills []store.Backfill
	// NotBackfilled names each table not backfilled, with the reason.
	NotBackfilled []string
}

// RecreateSlot is the way out of a gap (cdc.ErrGap, docs/operations.md
// "When the slot or publication is lost"): it re-creates the publication
// and the slot of cfg from the current position (cdc.Recreate, which
// refuses while a reader streams from the slot), records the new slot in
// the state store, and with withBackfill queues a backfill of each table
// whose rules read ("read" in on), under new event ids, for the running
// walhook to send.
func RecreateSlot(ctx context.Context, cfg *config.Config, withBackfill bool) (SlotRecreation, error) {
	var out SlotRecreation
	pool, err := pgxpool.New(ctx, cfg.StateURL())
	if err != nil {
		return out, fmt.Errorf("connecting to the state database: %w", err)
	}
	defer pool.Close()
	st, err := store.Open(ctx, pool, cfg.State.Schema)
	if err != nil {
		return out, err
	}
	records := SlotRecords(st)
	prev, found, err := records.LoadSlot(ctx, cfg.Source.Slot)
	if err != nil {
		return out, err
	}
	if found {
		out.Previous = &prev
	}
	rc := cdc.ReaderConfig{URL: cfg.Source.URL, Slot: cfg.Source.Slot, Publication: cfg.Source.Publication, Tables: cfg.Source.Tables}
	if out.Record, out.Before, err = cdc.Recreate(ctx, rc); err != nil {
		return out, err
	}
	if err := records.SaveSlot(ctx, out.Record); err != nil {
		return out, fmt.Errorf("the slot is re-created at %s but not recorded (run the command again): %w", out.Record.Confirmed, err)
	}
	if !withBackfill {
		return out, nil
	}
	rs, err := rules.Compile(cfg)
	if err != nil {
		return out, fmt.Errorf("compiling rules: %w", err)
	}
	sub := &backfill.Submitter{URL: cfg.Source.URL, Store: st, Events: rs.Catalogue(), Subscribers: func() []backfill.Subscriber { return nil }}
	for _, table := range cfg.Source.Tables {
		// New ids: the rows are sent again after the gap, and a receiver
		// that de-duplicates must not drop them as already seen.
		seed := fmt.Sprintf("resync_%s_%s", out.Record.Confirmed, table)
		b, err := sub.Submit(ctx, backfill.Request{Table: table, IDSeed: seed})
		var invalid *backfill.InvalidError
		if errors.As(err, &invalid) {
			out.NotBackfilled = append(out.NotBackfilled, table+": "+invalid.Reason)
			continue
		}
		if err != nil {
			return out, fmt.Errorf("queuing the backfill of %s: %w", table, err)
		}
		out.Backfills = append(out.Backfills, b)
	}
	return out, nil
}
