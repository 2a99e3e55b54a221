package relay

import (
	"context"
	"errors"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/store"
)

// SlotRecords keeps the reader's record of the slot walhook owns in the
// state store (docs/operations.md, "When the slot or publication is lost").
func SlotRecords(st *store.Store) cdc.SlotRecords { return slotRecords{st} }

type slotRecords struct{ st *store.Store }

var _ cdc.SlotRecords = slotRecords{}

func (r slotRecords) LoadSlot(ctx context.Context, slot string) (cdc.SlotRecord, bool, error) {
	rec, err := r.st.SlotRecord(ctx, slot)
	if errors.Is(err, store.ErrNotFound) {
		return cdc.SlotRecord{}, false, nil
	}
	if err != nil {
		return cdc.SlotRecord{}, false, err
	}
	return cdc.SlotRecord{Slot: rec.Slot, Database: rec.Database, SystemID: rec.SystemID, Confirmed: rec.Confirmed}, true, nil
}

func (r slotRecords) SaveSlot(ctx context.Context, rec cdc.SlotRecord) error {
	return r.st.SaveSlotRecord(ctx, store.SlotRecord{Slot: rec.Slot, Database: rec.Database, SystemID: rec.SystemID, Confirmed: rec.Confirmed})
}

func (r slotRecords) AdvanceSlot(ctx context.Context, slot string, lsn cdc.LSN) error {
	return r.st.AdvanceSlotRecord(ctx, slot, lsn)
}
