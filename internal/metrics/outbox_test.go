package metrics

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestOutboxGauges: the backlog gauges read the watched function at most
// every 2s; without a first good read they are left out and the failure
// counted; the skip counter starts at 0 and counts by reason.
func TestOutboxGauges(t *testing.T) {
	t.Parallel()
	m := New(nil)
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m.state.now = func() time.Time { return clock }
	got := scrape(t, m.Handler())
	if _, ok := got["walhook_outbox_rows_waiting"]; ok {
		t.Error("backlog gauges exported without WatchOutbox")
	}
	if v, ok := got[`walhook_outbox_rows_skipped_total{reason="no_subscriber"}`]; !ok || v != 0 {
		t.Errorf("skip counter %v (present %v), want 0 from the start", v, ok)
	}

	fail := true
	reads := 0
	m.WatchOutbox(func(context.Context) (OutboxBacklog, error) {
		reads++
		if fail {
			return OutboxBacklog{}, errors.New("source database down")
		}
		return OutboxBacklog{Rows: int64(10 * reads), OldestAge: 90 * time.Second}, nil
	})
	got = scrape(t, m.Handler())
	if _, ok := got["walhook_outbox_rows_waiting"]; ok || got["walhook_metrics_read_errors_total"] != 1 {
		t.Errorf("after a failed first read: %v", got)
	}
	fail = false
	clock = clock.Add(2 * time.Second)
	got = scrape(t, m.Handler())
	if got["walhook_outbox_rows_waiting"] != 20 || got["walhook_outbox_oldest_age_seconds"] != 90 {
		t.Errorf("backlog gauges %v, %v; want 20, 90", got["walhook_outbox_rows_waiting"], got["walhook_outbox_oldest_age_seconds"])
	}
	clock = clock.Add(time.Second)
	if got = scrape(t, m.Handler()); reads != 2 || got["walhook_outbox_rows_waiting"] != 20 {
		t.Errorf("within 2s: %d reads, %v rows; want the cached read", reads, got["walhook_outbox_rows_waiting"])
	}
	m.OutboxRowSkipped("no_subscriber")
	m.OutboxRowSkipped("no_subscriber")
	if got = scrape(t, m.Handler()); got[`walhook_outbox_rows_skipped_total{reason="no_subscriber"}`] != 2 {
		t.Errorf("skip counter %v, want 2", got[`walhook_outbox_rows_skipped_total{reason="no_subscriber"}`])
	}
}
