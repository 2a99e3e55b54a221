package metrics

import (
	"testing"
	"time"

	"github.com/walhook/walhook/cdc"
)

// TestReplicationGauges: the lag gauges come from Postgres's view of the
// slot (bytes from restart_lsn and confirmed_flush_lsn) and from the
// oldest unsettled commit, whatever the reader's own status says.
func TestReplicationGauges(t *testing.T) {
	t.Parallel()
	m := New(nil)
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m.state.now = func() time.Time { return clock }
	rep := Replication{
		Read:              true,
		View:              cdc.SlotView{Exists: true, Current: 100_000, Restart: 20_000, Confirmed: 60_000, WALStatus: "extended"},
		OldestUnconfirmed: clock.Add(-42 * time.Second),
		TablesNotCaptured: 1,
	}
	m.WatchReplication(func() Replication { return rep })
	// Not streaming: the reader knows nothing, the slot still tells.
	m.WatchReader(func() cdc.Status { return cdc.Status{} })
	m.CaptureGap(GapTableRenamed)

	got := scrape(t, m.Handler())
	want := map[string]float64{
		"walhook_replication_lag_bytes":                      40_000,
		"walhook_slot_retained_wal_bytes":                    80_000,
		"walhook_confirmed_lsn":                              60_000,
		"walhook_replication_lag_seconds":                    42,
		"walhook_tables_not_captured":                        1,
		`walhook_slot_wal_status{status="extended"}`:         1,
		`walhook_slot_wal_status{status="reserved"}`:         0,
		`walhook_slot_wal_status{status="lost"}`:             0,
		`walhook_slot_wal_status{status="missing"}`:          0,
		"walhook_source_streaming":                           0,
		`walhook_capture_gaps_total{reason="table_renamed"}`: 1,
		// Counted from 0, so that increase() sees the first gap.
		`walhook_capture_gaps_total{reason="table_recreated"}`: 0,
	}
	for series, v := range want {
		if g, ok := got[series]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", series, g, ok, v)
		}
	}

	// An invalidated slot: lost, restart_lsn unknown.
	rep.View = cdc.SlotView{Exists: true, Current: 100_000, Confirmed: 60_000, WALStatus: "lost"}
	got = scrape(t, m.Handler())
	if got[`walhook_slot_wal_status{status="lost"}`] != 1 || got[`walhook_slot_wal_status{status="extended"}`] != 0 || got["walhook_slot_retained_wal_bytes"] != 0 {
		t.Errorf("lost slot: %v", got)
	}

	// No slot: "missing", and no byte gauges to mistake for "caught up".
	rep.View = cdc.SlotView{Current: 100_000}
	got = scrape(t, m.Handler())
	if got[`walhook_slot_wal_status{status="missing"}`] != 1 {
		t.Errorf("missing slot: status gauges %v", got)
	}
	for _, s := range []string{"walhook_replication_lag_bytes", "walhook_slot_retained_wal_bytes", "walhook_confirmed_lsn"} {
		if _, ok := got[s]; ok {
			t.Errorf("%s exported for a missing slot", s)
		}
	}

	// The last read failed: the view's gauges are left out, not stale.
	rep.Read = false
	rep.OldestUnconfirmed = time.Time{}
	got = scrape(t, m.Handler())
	for _, s := range []string{"walhook_replication_lag_bytes", `walhook_slot_wal_status{status="missing"}`} {
		if _, ok := got[s]; ok {
			t.Errorf("%s exported after a failed read", s)
		}
	}
	if got["walhook_replication_lag_seconds"] != 0 {
		t.Errorf("lag seconds with nothing unsettled = %v", got["walhook_replication_lag_seconds"])
	}
}

func TestLagSeconds(t *testing.T) {
	t.Parallel()
	now := time.Now()
	for _, c := range []struct {
		oldest time.Time
		want   float64
	}{
		{time.Time{}, 0},
		{now.Add(time.Second), 0}, // a commit time ahead of our clock is no negative lag
		{now, 0},
		{now.Add(-90 * time.Second), 90},
	} {
		if got := LagSeconds(c.oldest, now); got != c.want {
			t.Errorf("LagSeconds(%v) = %v, want %v", now.Sub(c.oldest), got, c.want)
		}
	}
}

func TestWALStatus(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		v    cdc.SlotView
		want string
	}{
		{cdc.SlotView{}, "missing"},
		{cdc.SlotView{Exists: true}, "reserved"},
		{cdc.SlotView{Exists: true, WALStatus: "unreserved"}, "unreserved"},
	} {
		if got := WALStatus(c.v); got != c.want {
			t.Errorf("WALStatus(%+v) = %q, want %q", c.v, got, c.want)
		}
	}
}
