package cdc_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

// records is a SlotRecords in memory that outlives Readers (as the state
// store does) and can be made to fail (as a state database that is down).
type records struct {
	mu       sync.Mutex
	recs     map[string]cdc.SlotRecord
	failing  bool
	attempts int
	tried    testkit.Notifier
}

func newRecords() *records {
	return &records{recs: map[string]cdc.SlotRecord{}, tried: testkit.NewNotifier()}
}

func (r *records) LoadSlot(_ context.Context, slot string) (cdc.SlotRecord, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.recs[slot]
	return rec, ok, nil
}

func (r *records) SaveSlot(_ context.Context, rec cdc.SlotRecord) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs[rec.Slot] = rec
	return nil
}

func (r *records) AdvanceSlot(_ context.Context, slot string, lsn cdc.LSN) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.tried.Notify()
	r.attempts++
	if r.failing {
		return errors.New("state database down")
	}
	if rec := r.recs[slot]; lsn > rec.Confirmed {
		rec.Confirmed = lsn
		r.recs[slot] = rec
	}
	return nil
}

func (r *records) get(t *testing.T, slot string) cdc.SlotRecord {
	t.Helper()
	rec, ok, _ := r.LoadSlot(context.Background(), slot)
	if !ok {
		t.Fatalf("no record of slot %s", slot)
	}
	return rec
}

func (r *records) setFailing(f bool) {
	r.mu.Lock()
	r.failing = f
	r.mu.Unlock()
}

// recordedConfig is testConfig with durable records.
func recordedConfig(t *testing.T, db *testenv.DB, recs *records) cdc.ReaderConfig {
	cfg := testConfig(t, db, "public.contacts")
	cfg.Records = recs
	cfg.RecordInterval = 50 * time.Millisecond
	return cfg
}

// runUntilError runs a reader on cfg and waits for Run to return.
func runUntilError(t *testing.T, cfg cdc.ReaderConfig) error {
	t.Helper()
	r := run(t, cfg, true)
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(waitTimeout):
		t.Fatalf("Run went on; want it to stop on a gap. Logs:\n%s", r.logs.String())
		return nil
	}
}

// wantGap checks that err is a gap naming the slot, the position and the
// way out.
func wantGap(t *testing.T, err error, cfg cdc.ReaderConfig, confirmed cdc.LSN, reason string) {
	t.Helper()
	if !errors.Is(err, cdc.ErrGap) {
		t.Fatalf("Run: %v, want a gap", err)
	}
	for _, want := range []string{
		"replication slot " + cfg.Slot + " cannot go on",
		reason,
		"the changes committed after " + confirmed.String() + ", the last position walhook confirmed, until the slot is re-created are not delivered",
		"walhook slot recreate -c <config> [--backfill]",
		`docs/operations.md, "When the slot or publication is lost"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("gap error lacks %q:\n%v", want, err)
		}
	}
}

// dropSlot ends the slot's walsender and drops the slot, as a DBA would,
// retrying while the reader takes it again.
func dropSlot(t *testing.T, db *testenv.DB, slot string) {
	t.Helper()
	testkit.Eventually(t, "dropping slot "+slot, func() bool {
		if pid := walsenderPID(t, db, slot); pid != 0 {
			db.Exec(t, `SELECT pg_terminate_backend($1)`, pid)
		}
		_, err := db.Pool.Exec(context.Background(), `SELECT pg_drop_replication_slot($1)`, slot)
		return err == nil
	})
}

// publicationExists says whether db has publication pub.
func publicationExists(t *testing.T, db *testenv.DB, pub string) bool {
	t.Helper()
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_publication WHERE pubname = $1`, pub).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func slotExists(t *testing.T, db *testenv.DB, slot string) bool {
	t.Helper()
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// TestSlotDroppedWhileRunning: a slot dropped under a running reader
// (walsender terminated first) stops it with a gap; it is not re-created.
func TestSlotDroppedWhileRunning(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	recs := newRecords()
	cfg := recordedConfig(t, db, recs)
	r := run(t, cfg, true)
	testkit.Await(t, "streaming", r.signals.Streaming)
	insertContact(t, db, 1)
	txns := r.sink.waitTransactions(t, 1)
	waitConfirmed(t, db, cfg.Slot, txns[0].EndLSN)
	if rec := recs.get(t, cfg.Slot); rec.Confirmed < txns[0].EndLSN || rec.Database != db.Name || rec.SystemID == "" {
		t.Fatalf("record %+v, want database %s and a position at or after %s", rec, db.Name, txns[0].EndLSN)
	}

	dropSlot(t, db, cfg.Slot)
	insertContact(t, db, 2)
	var err error
	select {
	case err = <-r.done:
		r.done <- err
	case <-time.After(waitTimeout):
		t.Fatalf("Run went on after the slot was dropped. Logs:\n%s", r.logs.String())
	}
	wantGap(t, err, cfg, recs.get(t, cfg.Slot).Confirmed, "the slot does not exist any more (it was dropped)")
	if slotExists(t, db, cfg.Slot) {
		t.Error("the reader re-created the dropped slot")
	}
	if st := r.reader.Status(); st.Streaming || !strings.Contains(st.LastError, "cannot go on") {
		t.Errorf("status after the gap: %+v", st)
	}
}

// TestSlotLostWhileStopped: a slot dropped, re-created by someone else, or
// whose publication was dropped while no reader ran stops the next reader
// with a gap; walhook re-creates neither.
func TestSlotLostWhileStopped(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		change func(t *testing.T, db *testenv.DB, cfg cdc.ReaderConfig)
		reason string
	}{
		{"dropped", func(t *testing.T, db *testenv.DB, cfg cdc.ReaderConfig) {
			dropSlot(t, db, cfg.Slot)
		}, "the slot does not exist any more"},
		{"recreated", func(t *testing.T, db *testenv.DB, cfg cdc.ReaderConfig) {
			dropSlot(t, db, cfg.Slot)
			insertContact(t, db, 3)
			db.Exec(t, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, cfg.Slot)
		}, "the last position walhook confirmed: someone re-created or advanced it"},
		{"advanced", func(t *testing.T, db *testenv.DB, cfg cdc.ReaderConfig) {
			insertContact(t, db, 3)
			// pg_current_wal_lsn is the WAL's write position, which trails
			// the insert with synchronous_commit = off (the advance stops
			// at the flushed WAL too): advance until the slot is past the
			// insert, or there is nothing to skip and no gap to find.
			var inserted string
			if err := db.Pool.QueryRow(context.Background(), `SELECT pg_current_wal_insert_lsn()::text`).Scan(&inserted); err != nil {
				t.Fatal(err)
			}
			testkit.Eventually(t, "advancing the slot past the insert once its walsender has exited", func() bool {
				var past bool
				err := db.Pool.QueryRow(context.Background(), `SELECT lsn >= $2::pg_lsn FROM pg_replication_slot_advance($1, pg_current_wal_lsn()) AS a(slot, lsn)`, cfg.Slot, inserted).Scan(&past)
				return err == nil && past
			})
		}, "someone re-created or advanced it"},
		{"publication", func(t *testing.T, db *testenv.DB, cfg cdc.ReaderConfig) {
			db.Exec(t, `DROP PUBLICATION `+cfg.Publication)
		}, "publication " + "%s does not exist (it was dropped)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			db := testenv.NewDB(t)
			recs := newRecords()
			cfg := recordedConfig(t, db, recs)
			r := run(t, cfg, true)
			testkit.Await(t, "streaming", r.signals.Streaming)
			insertContact(t, db, 1)
			r.sink.waitTransactions(t, 1)
			r.stop(t)
			confirmed := recs.get(t, cfg.Slot).Confirmed

			c.change(t, db, cfg)
			err := runUntilError(t, cfg)
			wantGap(t, err, cfg, confirmed, strings.ReplaceAll(c.reason, "%s", cfg.Publication))
			if c.name == "dropped" && slotExists(t, db, cfg.Slot) {
				t.Error("the reader re-created the dropped slot")
			}
			var pubs int
			_ = db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_publication WHERE pubname = $1`, cfg.Publication).Scan(&pubs)
			if c.name == "publication" && pubs != 0 {
				t.Error("the reader re-created the dropped publication")
			}
		})
	}
}

// TestPublicationDroppedWhileRunning: decoding a change committed after a
// DROP PUBLICATION fails in the stream, even once the publication is
// created again; the reader stops with a gap instead of looping.
func TestPublicationDroppedWhileRunning(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	recs := newRecords()
	cfg := recordedConfig(t, db, recs)
	r := run(t, cfg, true)
	testkit.Await(t, "streaming", r.signals.Streaming)
	db.Exec(t, `DROP PUBLICATION `+cfg.Publication)
	insertContact(t, db, 1) // decoded where the publication does not exist
	db.Exec(t, `CREATE PUBLICATION `+cfg.Publication+` FOR TABLE contacts`)
	var err error
	select {
	case err = <-r.done:
		r.done <- err
	case <-time.After(waitTimeout):
		t.Fatalf("Run went on after the publication was dropped. Logs:\n%s", r.logs.String())
	}
	if !errors.Is(err, cdc.ErrGap) || !strings.Contains(err.Error(), `publication \"`+cfg.Publication+`\" does not exist`) ||
		!strings.Contains(err.Error(), "walhook slot recreate") {
		t.Fatalf("Run: %v; want a gap naming the missing publication and the way out", err)
	}
}

// TestRecreateAfterGap: Recreate gives a new slot and record, from which a
// reader streams again; while a reader streams it refuses.
func TestRecreateAfterGap(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	recs := newRecords()
	cfg := recordedConfig(t, db, recs)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	r := run(t, cfg, true)
	testkit.Await(t, "streaming", r.signals.Streaming)
	if _, _, err := cdc.Recreate(ctx, cfg); !errors.Is(err, cdc.ErrSlotInUse) {
		t.Fatalf("Recreate while a reader streams: %v, want ErrSlotInUse", err)
	}
	r.stop(t)
	dropSlot(t, db, cfg.Slot)
	insertContact(t, db, 1) // lost: committed while the slot is gone
	if err := runUntilError(t, cfg); !errors.Is(err, cdc.ErrGap) {
		t.Fatalf("Run: %v, want a gap", err)
	}

	rec, before, err := cdc.Recreate(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if before.Exists || rec.Slot != cfg.Slot || rec.Database != db.Name || rec.SystemID != recs.get(t, cfg.Slot).SystemID || rec.Confirmed == 0 {
		t.Fatalf("Recreate = %+v (before %+v)", rec, before)
	}
	if err := recs.SaveSlot(ctx, rec); err != nil {
		t.Fatal(err)
	}
	r2 := run(t, cfg, true)
	insertContact(t, db, 2)
	got := r2.sink.waitTransactions(t, 1)
	if ids := contactIDs(got); !equalIDs(ids, 2) {
		t.Fatalf("after Recreate got contacts %v, want [2]", ids)
	}
}

// TestConfirmWaitsForTheRecord: the slot is confirmed only up to what is
// recorded; records that cannot be written hold confirmation back, and it
// goes on once they can.
func TestConfirmWaitsForTheRecord(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	recs := newRecords()
	cfg := recordedConfig(t, db, recs)
	r := run(t, cfg, true)
	testkit.Await(t, "streaming", r.signals.Streaming)
	before := confirmedFlush(t, db, cfg.Slot)
	recs.setFailing(true)
	insertContact(t, db, 1)
	txns := r.sink.waitTransactions(t, 1)
	// Two failed writes, each followed by standby status updates.
	for range 3 {
		testkit.Await(t, "a write of the record", recs.tried)
	}
	if got, rec := confirmedFlush(t, db, cfg.Slot), recs.get(t, cfg.Slot); got > rec.Confirmed || got >= txns[0].EndLSN {
		t.Fatalf("confirmed_flush_lsn %s (was %s) with the record at %s and the transaction ending at %s: confirmed beyond the record",
			got, before, rec.Confirmed, txns[0].EndLSN)
	}
	recs.setFailing(false)
	waitConfirmed(t, db, cfg.Slot, txns[0].EndLSN)
	if rec := recs.get(t, cfg.Slot); rec.Confirmed < confirmedFlush(t, db, cfg.Slot) {
		t.Fatalf("record %s behind the slot's confirmed position %s", rec.Confirmed, confirmedFlush(t, db, cfg.Slot))
	}
}

// TestTeardownLeavesAnotherDatabasesSlot: a teardown with another
// database's config (same slot and publication names) leaves the slot and
// says whose it is, and drops only its own database's publication
// (publications are per database; slots are cluster-wide, and dropSlot
// itself never drops another database's).
func TestTeardownLeavesAnotherDatabasesSlot(t *testing.T) {
	t.Parallel()
	db, other := testenv.NewDB(t), testenv.NewDB(t)
	cfg := testConfig(t, db, "public.contacts")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := cdc.Prepare(ctx, "", cfg); err != nil {
		t.Fatal(err)
	}
	other.Exec(t, "CREATE PUBLICATION "+cfg.Publication) // the other database's own
	err := cdc.Teardown(ctx, other.URL, cfg.Slot, cfg.Publication)
	want := "replication slot " + cfg.Slot + ` belongs to database "` + db.Name + `", not "` + other.Name + `", so it was left as it is`
	if !errors.Is(err, cdc.ErrSlotElsewhere) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Teardown with the other database: %v, want %q", err, want)
	}
	if !slotExists(t, db, cfg.Slot) {
		t.Fatal("the other database's teardown dropped the slot")
	}
	if !publicationExists(t, db, cfg.Publication) || publicationExists(t, other, cfg.Publication) {
		t.Fatalf("after the other database's teardown: publication in %s %v (want kept), in %s %v (want dropped)",
			db.Name, publicationExists(t, db, cfg.Publication), other.Name, publicationExists(t, other, cfg.Publication))
	}
	conn, err := pgx.Connect(ctx, other.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := cdc.DropSlot(ctx, conn, cfg.Slot); err != nil || !slotExists(t, db, cfg.Slot) {
		t.Fatalf("dropSlot from the other database: %v (slot left: %v)", err, slotExists(t, db, cfg.Slot))
	}
	check, err := cdc.CheckSlot(ctx, other.URL, cfg.Slot, cfg.Publication, nil)
	if err != nil || !check.Elsewhere() || !errors.Is(check.Problem, cdc.ErrPrerequisite) || check.Database != other.Name {
		t.Fatalf("CheckSlot from the other database: %+v, %v", check, err)
	}
	if err := cdc.Teardown(ctx, db.URL, cfg.Slot, cfg.Publication); err != nil || slotExists(t, db, cfg.Slot) {
		t.Fatalf("Teardown with its own database: %v (slot left: %v)", err, slotExists(t, db, cfg.Slot))
	}
}

// TestStreamGapClassification: the stream errors of a slot that cannot go
// on are gaps; others are retried.
func TestStreamGapClassification(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		err *pgconn.PgError
		gap bool
	}{
		{&pgconn.PgError{Code: "42704", Message: `publication "walhook" does not exist`}, true},
		{&pgconn.PgError{Code: "55000", Message: `cannot read from logical replication slot "walhook"`}, true},
		{&pgconn.PgError{Code: "55000", Message: `can no longer get changes from replication slot "walhook"`}, true},
		{&pgconn.PgError{Code: "57P01", Message: `terminating connection due to administrator command`}, false},
		{&pgconn.PgError{Code: "55006", Message: `replication slot "walhook" is active for PID 42`}, false},
	} {
		err := cdc.StreamGap(cdc.NewReader(cdc.ReaderConfig{Slot: "walhook", Publication: "walhook"}), c.err)
		if (err != nil) != c.gap || (err != nil && !errors.Is(err, cdc.ErrGap)) {
			t.Errorf("%v: gap %v, want %v", c.err, err, c.gap)
		}
	}
}
