package cdc_test

import (
	"context"
	"testing"
	"time"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

// TestReadSlotView: the slot as pg_replication_slots shows it, whether a
// reader streams or not, and a missing slot.
func TestReadSlotView(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	cfg := testConfig(t, db, "contacts")
	ctx := context.Background()
	conn := db.Conn(t)
	v, err := cdc.ReadSlotView(ctx, conn, cfg.Slot)
	if err != nil || v.Exists || v.Current == 0 {
		t.Fatalf("no slot yet: %+v, %v", v, err)
	}
	if err := cdc.Prepare(ctx, "", cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cdc.Teardown(context.Background(), db.URL, cfg.Slot, cfg.Publication) })
	db.Exec(t, `INSERT INTO contacts (organization_id, first_name) SELECT 1, 'x' FROM generate_series(1, 200)`)
	// The test cluster runs with synchronous_commit = off: the WAL write
	// position (what the view reads) passes the insert once the WAL
	// writer has written it.
	inserted := currentLSN(t, db)
	testkit.EventuallyWithin(t, 30*time.Second, "the WAL write position to pass the insert", func() bool {
		v, err = cdc.ReadSlotView(ctx, conn, cfg.Slot)
		if err != nil {
			t.Fatal(err)
		}
		return v.Current >= inserted
	})
	var restart, confirmed cdc.LSN
	var walStatus string
	var active bool
	var retained, lag int64
	err = conn.QueryRow(ctx, `SELECT active, restart_lsn, confirmed_flush_lsn, wal_status,
		pg_wal_lsn_diff($2::text::pg_lsn, restart_lsn)::bigint, pg_wal_lsn_diff($2::text::pg_lsn, confirmed_flush_lsn)::bigint
		FROM pg_replication_slots WHERE slot_name = $1`, cfg.Slot, v.Current.String()).
		Scan(&active, &restart, &confirmed, &walStatus, &retained, &lag)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Exists || v.Active != active || v.Restart != restart || v.Confirmed != confirmed || v.WALStatus != walStatus ||
		v.RetainedBytes() != retained || v.LagBytes() != lag || lag <= 0 || retained < lag {
		t.Fatalf("view %+v (retained %d, lag %d); pg_replication_slots: active %v restart %s confirmed %s %s, retained %d, lag %d",
			v, v.RetainedBytes(), v.LagBytes(), active, restart, confirmed, walStatus, retained, lag)
	}
}

// TestReadTables: what the catalog says about configured tables as they
// are dropped, re-created and renamed under the publication.
func TestReadTables(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	ctx := context.Background()
	conn := db.Conn(t)
	pub := testenv.Name(t, "pub")
	db.Exec(t, `CREATE TABLE watched_a (id int PRIMARY KEY); CREATE TABLE watched_b (id int PRIMARY KEY)`)
	tables := []string{"public.watched_a", "public.watched_b"}
	read := func(oids ...uint32) cdc.TablesView {
		t.Helper()
		v, err := cdc.ReadTables(ctx, conn, pub, tables, oids)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := read(); v.PublicationExists || v.Configured["public.watched_a"] == 0 || len(v.Published) != 0 {
		t.Fatalf("before the publication: %+v", v)
	}
	if err := cdc.RepublishTables(ctx, conn, pub, tables, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec(t, `DROP PUBLICATION IF EXISTS `+pub) })
	v := read()
	a, b := v.Configured["public.watched_a"], v.Configured["public.watched_b"]
	if !v.PublicationExists || !v.Published[a] || !v.Published[b] || v.Names[a] != "public.watched_a" {
		t.Fatalf("published: %+v", v)
	}

	db.Exec(t, `DROP TABLE watched_a; CREATE TABLE watched_a (id int PRIMARY KEY); ALTER TABLE watched_b RENAME TO watched_c`)
	v = read(a, b)
	a2 := v.Configured["public.watched_a"]
	if a2 == 0 || a2 == a || v.Published[a2] || v.Published[a] {
		t.Errorf("re-created: old oid %d, new %d, view %+v", a, a2, v)
	}
	if _, named := v.Names[a]; named {
		t.Errorf("the dropped table still has a name: %+v", v.Names)
	}
	if v.Configured["public.watched_b"] != 0 || !v.Published[b] || v.Names[b] != "public.watched_c" {
		t.Errorf("renamed: %+v", v)
	}

	db.Exec(t, `ALTER TABLE watched_c RENAME TO watched_b`)
	if err := cdc.RepublishTables(ctx, conn, pub, tables, nil); err != nil {
		t.Fatal(err)
	}
	if v = read(); !v.Published[a2] || !v.Published[b] {
		t.Errorf("republished: %+v", v)
	}
	db.Exec(t, `INSERT INTO watched_a SELECT generate_series(1, 7)`)
	if n, more, err := cdc.CountRows(ctx, conn, "public.watched_a", 10); n != 7 || more || err != nil {
		t.Errorf("CountRows = %d, %v, %v; want 7", n, more, err)
	}
	if n, more, err := cdc.CountRows(ctx, conn, "public.watched_a", 5); n != 5 || !more || err != nil {
		t.Errorf("CountRows up to 5 = %d, %v, %v; want 5 and more", n, more, err)
	}
}

// TestOldestUnconfirmed: the commit time of the oldest transaction handed
// over and not acknowledged, kept while the reader is stopped.
func TestOldestUnconfirmed(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	cfg := testConfig(t, db, "contacts")
	r := start(t, cfg, false)
	if !r.reader.OldestUnconfirmed().IsZero() {
		t.Fatal("oldest unconfirmed before anything was read")
	}
	db.Exec(t, `INSERT INTO contacts (organization_id, first_name) VALUES (1, 'a')`)
	db.Exec(t, `INSERT INTO contacts (organization_id, first_name) VALUES (1, 'b')`)
	txns := r.sink.waitTransactions(t, 2)
	if got := r.reader.OldestUnconfirmed(); !got.Equal(txns[0].CommitTime) {
		t.Fatalf("oldest unconfirmed %v, want the first commit's %v", got, txns[0].CommitTime)
	}
	r.reader.Ack(txns[0].EndLSN)
	if got := r.reader.OldestUnconfirmed(); !got.Equal(txns[1].CommitTime) {
		t.Fatalf("after acking the first: %v, want %v", got, txns[1].CommitTime)
	}
	r.stop(t)
	if got := r.reader.OldestUnconfirmed(); !got.Equal(txns[1].CommitTime) {
		t.Fatalf("stopped: %v, want %v", got, txns[1].CommitTime)
	}
	r.reader.Ack(txns[1].EndLSN)
	if got := r.reader.OldestUnconfirmed(); !got.IsZero() {
		t.Fatalf("all acknowledged: %v", got)
	}
}
