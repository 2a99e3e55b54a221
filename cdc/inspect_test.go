package cdc_test

import (
	"context"
	"testing"
	"time"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/testenv"
)

func TestInspect(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	slotName, pubName := testenv.Name(t, "slot"), testenv.Name(t, "pub")

	slot, pub, err := cdc.Inspect(ctx, db.URL, slotName, pubName)
	if err != nil || slot.Exists || pub.Exists || slot.Name != slotName || pub.Name != pubName {
		t.Fatalf("before Prepare: %+v %+v %v", slot, pub, err)
	}
	cfg := cdc.ReaderConfig{Slot: slotName, Publication: pubName, Tables: []string{"public.contacts", "public.deals"}}
	if err := cdc.Prepare(ctx, db.URL, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cdc.Teardown(context.Background(), db.URL, slotName, pubName) })
	db.Exec(t, "INSERT INTO contacts (organization_id, first_name) VALUES (1, 'Ada')")
	slot, pub, err = cdc.Inspect(ctx, db.URL, slotName, pubName)
	if err != nil {
		t.Fatal(err)
	}
	if !slot.Exists || slot.Active || slot.ActivePID != 0 || slot.ConfirmedLSN == "" || slot.LagBytes < 0 || slot.WALStatus != "reserved" {
		t.Errorf("slot after Prepare and an insert: %+v", slot)
	}
	if !pub.Exists || pub.Tables != 2 {
		t.Errorf("publication: %+v", pub)
	}
}
