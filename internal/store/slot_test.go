package store

import (
	"errors"
	"testing"
)

// TestSlotRecord: a slot's record is saved, only ever advanced on one
// server, replaced by a save on another, and deleted only for its own
// database.
func TestSlotRecord(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	if _, err := s.SlotRecord(ctx(t), "wh"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SlotRecord with none: %v, want ErrNotFound", err)
	}
	if err := s.AdvanceSlotRecord(ctx(t), "wh", 100); !errors.Is(err, ErrNotFound) {
		t.Fatalf("AdvanceSlotRecord with none: %v, want ErrNotFound", err)
	}
	if err := s.SaveSlotRecord(ctx(t), SlotRecord{Slot: "wh", Database: "app", SystemID: "7301", Confirmed: 0x1_0000_0010}); err != nil {
		t.Fatal(err)
	}
	if err := s.AdvanceSlotRecord(ctx(t), "wh", 0x1_0000_0020); err != nil {
		t.Fatal(err)
	}
	if err := s.AdvanceSlotRecord(ctx(t), "wh", 0x1_0000_0015); err != nil {
		t.Fatal(err)
	}
	r, err := s.SlotRecord(ctx(t), "wh")
	if err != nil || r.Database != "app" || r.SystemID != "7301" || r.Confirmed != 0x1_0000_0020 {
		t.Fatalf("after advancing to 1/20 and back to 1/15: %+v, %v; want 1/20", r, err)
	}
	if err := s.SaveSlotRecord(ctx(t), SlotRecord{Slot: "wh", Database: "app", SystemID: "7301", Confirmed: 0x1_0000_0008}); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.SlotRecord(ctx(t), "wh"); r.Confirmed != 0x1_0000_0020 {
		t.Fatalf("a save behind the record on the same server keeps %s, want 1/20", r.Confirmed)
	}
	if err := s.SaveSlotRecord(ctx(t), SlotRecord{Slot: "wh", Database: "app", SystemID: "9999", Confirmed: 0x1_0000_0008}); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.SlotRecord(ctx(t), "wh"); r.Confirmed != 0x1_0000_0008 || r.SystemID != "9999" {
		t.Fatalf("a save on another server keeps %+v, want 1/8 on 9999", r)
	}
	if found, err := s.DeleteSlotRecord(ctx(t), "wh", "other"); err != nil || found {
		t.Fatalf("deleting the record for another database: %v, %v; want it left", found, err)
	}
	if found, err := s.DeleteSlotRecord(ctx(t), "wh", "app"); err != nil || !found {
		t.Fatalf("DeleteSlotRecord = %v, %v", found, err)
	}
	if _, err := s.SlotRecord(ctx(t), "wh"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}
