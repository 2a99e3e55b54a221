package cdc_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/pgcluster"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

// TestInvalidatedSlot: a slot Postgres invalidated (max_slot_wal_keep_size
// exceeded, wal_status lost) stops the reader with a gap, and CheckSlot
// (validate --db, status) reports the same; Recreate gives a working slot.
func TestInvalidatedSlot(t *testing.T) {
	t.Parallel()
	if testenv.Shared(t).Dir() == "" {
		t.Skip("needs a throwaway cluster of its own")
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{Settings: map[string]string{
		"max_slot_wal_keep_size": "1MB", "wal_keep_size": "0", "min_wal_size": "32MB", "max_wal_size": "32MB",
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cluster.Stop() }()
	conn, err := pgx.Connect(ctx, cluster.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`CREATE TABLE items (id int PRIMARY KEY)`)
	recs := newRecords()
	cfg := cdc.ReaderConfig{URL: cluster.URL, Slot: "inval", Publication: "inval", Tables: []string{"items"},
		StatusInterval: testConfig(t, &testenv.DB{}, "x").StatusInterval, HeartbeatInterval: -1, MaxBackoff: waitTimeout, Records: recs}
	r := run(t, cfg, true)
	testkit.Await(t, "streaming", r.signals.Streaming)
	r.stop(t)

	// Move the WAL on by a few segments and checkpoint: the slot, held at
	// its position, falls out of max_slot_wal_keep_size.
	testkit.Eventually(t, "the slot invalidated", func() bool {
		for range 3 {
			exec(`INSERT INTO items SELECT coalesce(max(id), 0) + 1 FROM items`)
			exec(`SELECT pg_switch_wal()`)
		}
		exec(`CHECKPOINT`)
		var status string
		_ = conn.QueryRow(ctx, `SELECT coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = 'inval'`).Scan(&status)
		return status == "lost"
	})

	err = runUntilError(t, cfg)
	wantGap(t, err, cfg, recs.get(t, "inval").Confirmed, "Postgres invalidated it (wal_status lost)")
	rec := recs.get(t, "inval")
	check, err := cdc.CheckSlot(ctx, cluster.URL, "inval", "inval", recs)
	if err != nil || !errors.Is(check.Problem, cdc.ErrGap) || !strings.Contains(check.Problem.Error(), "wal_status lost") {
		t.Fatalf("CheckSlot: %+v, %v; want the same gap", check, err)
	}

	if rec, _, err = cdc.Recreate(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := recs.SaveSlot(ctx, rec); err != nil {
		t.Fatal(err)
	}
	r2 := run(t, cfg, true)
	exec(`INSERT INTO items VALUES (1000)`)
	if got := flatten(r2.sink.waitTransactions(t, 1)); len(got) != 1 || fmt.Sprint(got[0].New["id"]) != "1000" {
		t.Fatalf("after Recreate got %v", got)
	}
}
