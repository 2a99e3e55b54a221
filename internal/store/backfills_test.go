package store

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// TestBackfillLifecycle: backfills are claimed oldest first, record their
// progress, and move between states only along allowed transitions.
func TestBackfillLifecycle(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	if _, err := s.NextBackfill(ctx(t)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("NextBackfill with none: %v, want ErrNotFound", err)
	}
	first, err := s.CreateBackfill(ctx(t), Backfill{Table: "public.items", IDSeed: "s1", ChunkSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.CreateBackfill(ctx(t), Backfill{Table: "public.deals", Where: "id > 1", IDSeed: "s2", ChunkSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	if first.Status != BackfillPending || first.RowsTotal != nil || first.LastKey != nil {
		t.Fatalf("created %+v", first)
	}
	got, err := s.NextBackfill(ctx(t))
	if err != nil || got.ID != first.ID || got.Status != BackfillRunning || got.StartedAt == nil {
		t.Fatalf("NextBackfill = %+v, %v; want the first, running", got, err)
	}
	if err := s.SetBackfillTotal(ctx(t), first.ID, 1000, true); err != nil {
		t.Fatal(err)
	}
	st, err := s.RecordBackfillChunk(ctx(t), first.ID, []string{"a", "it's"}, 100, 98)
	if err != nil || st != BackfillRunning {
		t.Fatalf("RecordBackfillChunk = %v, %v", st, err)
	}
	// A restart claims the running one again, with its progress.
	got, err = s.NextBackfill(ctx(t))
	if err != nil || got.ID != first.ID || !reflect.DeepEqual(got.LastKey, []string{"a", "it's"}) ||
		got.RowsDone != 100 || got.RowsSent != 98 || *got.RowsTotal != 1000 || !got.TotalExact {
		t.Fatalf("after a restart: %+v, %v", got, err)
	}

	if _, err := s.SetBackfillStatus(ctx(t), first.ID, BackfillPaused, "", BackfillPending, BackfillRunning); err != nil {
		t.Fatal(err)
	}
	if got, err := s.NextBackfill(ctx(t)); err != nil || got.ID != second.ID {
		t.Fatalf("with the first paused, NextBackfill = %+v, %v; want the second", got, err)
	}
	cur, err := s.SetBackfillStatus(ctx(t), first.ID, BackfillPaused, "", BackfillPending, BackfillRunning)
	if !errors.Is(err, ErrBackfillState) || cur.Status != BackfillPaused {
		t.Fatalf("pausing a paused backfill: %+v, %v; want ErrBackfillState with the backfill", cur, err)
	}
	done, err := s.SetBackfillStatus(ctx(t), second.ID, BackfillFailed, "table gone", BackfillRunning)
	if err != nil || done.FinishedAt == nil || done.LastError != "table gone" || !done.Status.Finished() {
		t.Fatalf("failing: %+v, %v", done, err)
	}
	if _, err := s.SetBackfillStatus(ctx(t), "bf_missing", BackfillCancelled, "", BackfillRunning); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown backfill: %v, want ErrNotFound", err)
	}
	list, err := s.ListBackfills(ctx(t), 10)
	if err != nil || len(list) != 2 || list[0].ID != second.ID {
		t.Fatalf("ListBackfills = %d, %v; want both, newest first", len(list), err)
	}
}

// TestNextBackfillRespectsAConcurrentPause: a pause that commits while
// NextBackfill waits for the row's lock wins; the claim finds nothing
// instead of setting the paused backfill running again (the recheck
// after the lock applies the status condition, not only the id).
func TestNextBackfillRespectsAConcurrentPause(t *testing.T) {
	t.Parallel()
	s, db := setup(t)
	b, err := s.CreateBackfill(ctx(t), Backfill{Table: "public.items", IDSeed: "s1", ChunkSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	// The pause holds the row lock, uncommitted, while the claim runs.
	pause, err := db.Pool.Begin(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pause.Rollback(ctx(t))
	if _, err := pause.Exec(ctx(t), s.sql(`UPDATE {s}.backfills SET status = 'paused' WHERE id = $1`), b.ID); err != nil {
		t.Fatal(err)
	}
	claimed := make(chan error, 1)
	go func() {
		got, err := s.NextBackfill(ctx(t))
		if err == nil {
			err = fmt.Errorf("claimed %s (%s)", got.ID, got.Status)
		}
		claimed <- err
	}()
	// Wait until the claim is blocked on the row lock, then commit.
	for {
		var waiting bool
		if err := db.Pool.QueryRow(ctx(t), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%backfills%')`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		select {
		case err := <-claimed:
			t.Fatalf("NextBackfill returned before the pause committed: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := pause.Commit(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := <-claimed; !errors.Is(err, ErrNotFound) {
		t.Fatalf("NextBackfill after a concurrent pause: %v, want ErrNotFound", err)
	}
	if st, err := s.BackfillStatusOf(ctx(t), b.ID); err != nil || st != BackfillPaused {
		t.Fatalf("status = %v, %v; want paused", st, err)
	}
}
