package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walhook/walhook/cdc"
)

// Replication is what the replication gauges show (docs/operations.md,
// Metrics): Postgres's own view of the slot, as the relay's watcher last
// read it, and how far behind settlement the reader is.
type Replication struct {
	// Read is false before the first read of the slot and after a read
	// failed: the gauges taken from View are then left out of the scrape
	// rather than shown stale.
	Read bool
	View cdc.SlotView
	// OldestUnconfirmed is the commit time of the oldest transaction handed
	// to the pipeline and not yet settled; zero when there is none.
	OldestUnconfirmed time.Time
	// TablesNotCaptured counts the configured tables whose rows are not
	// captured now (renamed, dropped, missing, or not back in the
	// publication).
	TablesNotCaptured int
}

// WALStatuses are the values of walhook_slot_wal_status's status label:
// pg_replication_slots.wal_status, and "missing" when there is no slot.
var WALStatuses = []string{"reserved", "extended", "unreserved", "lost", "missing"}

// Capture gap reasons, the values of walhook_capture_gaps_total's reason
// label that walhook counts from the start (at 0).
const (
	GapTableRecreated   = "table_recreated"   // dropped and re-created: rows before it was published again are missed
	GapTableUnpublished = "table_unpublished" // removed from the publication: changes meanwhile are missed
	GapTableRenamed     = "table_renamed"     // renamed: its rows match no rule
	GapTableDropped     = "table_dropped"     // dropped: nothing to capture until it is back
	GapTableMissing     = "table_missing"     // configured but not there at start
)

var gapReasons = []string{GapTableRecreated, GapTableUnpublished, GapTableRenamed, GapTableDropped, GapTableMissing}

// WatchReplication makes the replication gauges read f at scrape time:
// walhook_replication_lag_bytes, walhook_slot_retained_wal_bytes,
// walhook_slot_wal_status, walhook_confirmed_lsn,
// walhook_replication_lag_seconds, walhook_tables_not_captured.
func (m *Metrics) WatchReplication(f func() Replication) {
	m.state.mu.Lock()
	defer m.state.mu.Unlock()
	m.state.replication = f
}

// CaptureGap counts a change capture could not see, by reason
// (walhook_capture_gaps_total).
func (m *Metrics) CaptureGap(reason string) { m.captureGaps.WithLabelValues(reason).Inc() }

// replicationDescs are the replication gauges' descriptions.
type replicationDescs struct {
	lagBytes, retained, walStatus, confirmed, lagSeconds, notCaptured *prometheus.Desc
}

func newReplicationDescs() replicationDescs {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return replicationDescs{
		lagBytes:    d("walhook_replication_lag_bytes", "WAL written since the slot's confirmed_flush_lsn, read from pg_replication_slots."),
		retained:    d("walhook_slot_retained_wal_bytes", "WAL the slot makes Postgres keep: the current WAL position minus the slot's restart_lsn."),
		walStatus:   d("walhook_slot_wal_status", "1 for the slot's current pg_replication_slots.wal_status (\"missing\": no slot), 0 for the others.", "status"),
		confirmed:   d("walhook_confirmed_lsn", "The slot's confirmed_flush_lsn, as a number."),
		lagSeconds:  d("walhook_replication_lag_seconds", "Age of the oldest commit handed to the pipeline and not yet settled (so not confirmable to the slot); 0 when none."),
		notCaptured: d("walhook_tables_not_captured", "Configured tables whose rows are not captured now (renamed, dropped, missing, or not back in the publication)."),
	}
}

func (d replicationDescs) all() []*prometheus.Desc {
	return []*prometheus.Desc{d.lagBytes, d.retained, d.walStatus, d.confirmed, d.lagSeconds, d.notCaptured}
}

// collect sends the replication gauges for r at now.
func (d replicationDescs) collect(ch chan<- prometheus.Metric, r Replication, now time.Time) {
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	gauge(d.lagSeconds, LagSeconds(r.OldestUnconfirmed, now))
	gauge(d.notCaptured, float64(r.TablesNotCaptured))
	if !r.Read {
		return
	}
	status := WALStatus(r.View)
	for _, s := range WALStatuses {
		gauge(d.walStatus, boolValue(s == status), s)
	}
	if !r.View.Exists {
		return
	}
	gauge(d.lagBytes, float64(r.View.LagBytes()))
	gauge(d.retained, float64(r.View.RetainedBytes()))
	gauge(d.confirmed, float64(r.View.Confirmed))
}

// WALStatus is the walhook_slot_wal_status label that is 1 for v.
func WALStatus(v cdc.SlotView) string {
	switch {
	case !v.Exists:
		return "missing"
	case v.WALStatus == "":
		return "reserved" // Postgres before 13 has no wal_status: nothing is ever lost there
	}
	return v.WALStatus
}

// LagSeconds is the age at now of the oldest unsettled commit (0 when
// there is none, or its time is not in the past).
func LagSeconds(oldest, now time.Time) float64 {
	if oldest.IsZero() || !now.After(oldest) {
		return 0
	}
	return now.Sub(oldest).Seconds()
}
