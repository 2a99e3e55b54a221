package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/store"
)

// cacheFor is how long store-backed gauges are reused, so that frequent
// scrapes (or several scrapers) do not hammer Postgres.
const cacheFor = 2 * time.Second

// readTimeout bounds one store read at scrape time.
const readTimeout = 5 * time.Second

// WatchQueue makes the retry queue gauges read f at scrape time (cached
// for 2s): walhook_retry_queue_depth, walhook_retry_due,
// walhook_retry_oldest_due_seconds, walhook_deliveries_failed.
func (m *Metrics) WatchQueue(f func(ctx context.Context) (store.QueueStats, error)) {
	m.state.mu.Lock()
	defer m.state.mu.Unlock()
	m.state.queue = f
	m.state.queueAt = time.Time{}
}

// WatchHealth makes walhook_endpoints_disabled read f at scrape time
// (cached for 2s).
func (m *Metrics) WatchHealth(f func(ctx context.Context) ([]store.Health, error)) {
	m.state.mu.Lock()
	defer m.state.mu.Unlock()
	m.state.health = f
	m.state.healthAt = time.Time{}
}

// WatchReader makes the replication gauges read f at scrape time:
// walhook_replication_lag_bytes, walhook_replication_lag_seconds,
// walhook_confirmed_lsn, walhook_source_connected,
// walhook_source_streaming.
func (m *Metrics) WatchReader(f func() cdc.Status) {
	m.state.mu.Lock()
	defer m.state.mu.Unlock()
	m.state.reader = f
}

// stateCollector computes the gauges from the watched sources when
// scraped. Gauges whose source is not watched, or failed to read with no
// earlier value, are left out of the scrape.
type stateCollector struct {
	queueDepth, queueDue, oldestDue, failed, disabled  *prometheus.Desc
	lagBytes, lagSeconds, confirmed, connected, stream *prometheus.Desc
	readErrors                                         *prometheus.Desc

	mu     sync.Mutex // serialises scrapes and guards everything below
	queue  func(ctx context.Context) (store.QueueStats, error)
	health func(ctx context.Context) ([]store.Health, error)
	reader func() cdc.Status
	now    func() time.Time

	queueAt, healthAt time.Time // when the cached values were read
	queueOK, healthOK bool
	queueStats        store.QueueStats
	disabledCount     int
	errors            float64
}

func newStateCollector() *stateCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &stateCollector{
		queueDepth: d("walhook_retry_queue_depth", "Pending deliveries in the retry store."),
		queueDue:   d("walhook_retry_due", "Pending deliveries due now (not yet attempted again)."),
		oldestDue:  d("walhook_retry_oldest_due_seconds", "How long the oldest due delivery has been due; 0 when none is."),
		failed:     d("walhook_deliveries_failed", "Failed deliveries stored (replayable with retry or recover)."),
		disabled:   d("walhook_endpoints_disabled", "Endpoints currently disabled."),
		lagBytes:   d("walhook_replication_lag_bytes", "WAL bytes between the server's end and the position confirmed to the slot."),
		lagSeconds: d("walhook_replication_lag_seconds", "Age of the last received commit while it is not yet confirmed; 0 when caught up."),
		confirmed:  d("walhook_confirmed_lsn", "The LSN last confirmed to the replication slot, as a number."),
		connected:  d("walhook_source_connected", "1 while the replication connection is open."),
		stream:     d("walhook_source_streaming", "1 while the slot is held and changes are flowing."),
		readErrors: d("walhook_metrics_read_errors_total", "Failed reads of the state database while computing gauges."),
		now:        time.Now,
	}
}

// Describe sends every gauge's description.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.queueDepth, c.queueDue, c.oldestDue, c.failed, c.disabled,
		c.lagBytes, c.lagSeconds, c.confirmed, c.connected, c.stream, c.readErrors} {
		ch <- d
	}
}

// Collect reads the watched sources (the store ones through the cache)
// and sends the gauges.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	if c.queue != nil {
		if now.Sub(c.queueAt) >= cacheFor {
			ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
			st, err := c.queue(ctx)
			cancel()
			if err != nil {
				c.errors++
			} else {
				c.queueStats, c.queueOK = st, true
			}
			c.queueAt = now
		}
		if c.queueOK {
			st := c.queueStats
			gauge(c.queueDepth, float64(st.Pending))
			gauge(c.queueDue, float64(st.Due))
			gauge(c.failed, float64(st.Failed))
			oldest := 0.0
			if st.OldestDue != nil && now.After(*st.OldestDue) {
				oldest = now.Sub(*st.OldestDue).Seconds()
			}
			gauge(c.oldestDue, oldest)
		}
	}
	if c.health != nil {
		if now.Sub(c.healthAt) >= cacheFor {
			ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
			hs, err := c.health(ctx)
			cancel()
			if err != nil {
				c.errors++
			} else {
				n := 0
				for _, h := range hs {
					if h.Disabled {
						n++
					}
				}
				c.disabledCount, c.healthOK = n, true
			}
			c.healthAt = now
		}
		if c.healthOK {
			gauge(c.disabled, float64(c.disabledCount))
		}
	}
	if c.reader != nil {
		st := c.reader()
		gauge(c.lagBytes, LagBytes(st))
		gauge(c.lagSeconds, LagSeconds(st, now))
		gauge(c.confirmed, float64(st.Acked))
		gauge(c.connected, boolValue(st.Connected))
		gauge(c.stream, boolValue(st.Streaming))
	}
	ch <- prometheus.MustNewConstMetric(c.readErrors, prometheus.CounterValue, c.errors)
}

// LagBytes is ServerWALEnd - Acked, 0 when either is unknown or the
// difference is negative.
func LagBytes(st cdc.Status) float64 {
	if st.Acked == 0 || st.ServerWALEnd <= st.Acked {
		return 0
	}
	return float64(st.ServerWALEnd - st.Acked)
}

// LagSeconds is the age of the last received commit while something
// received is not yet confirmed.
func LagSeconds(st cdc.Status, now time.Time) float64 {
	if st.Received <= st.Acked || st.LastCommitTime.IsZero() || !now.After(st.LastCommitTime) {
		return 0
	}
	return now.Sub(st.LastCommitTime).Seconds()
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
