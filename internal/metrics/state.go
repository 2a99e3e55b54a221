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

// WatchReader makes the reader's gauges read f at scrape time:
// walhook_source_connected, walhook_source_streaming. The lag gauges come
// from Postgres's view of the slot (WatchReplication).
func (m *Metrics) WatchReader(f func() cdc.Status) {
	m.state.mu.Lock()
	defer m.state.mu.Unlock()
	m.state.reader = f
}

// stateCollector computes the gauges from the watched sources when
// scraped. Gauges whose source is not watched, or failed to read with no
// earlier value, are left out of the scrape.
type stateCollector struct {
	queueDepth, queueDue, oldestDue, failed, disabled *prometheus.Desc
	connected, stream, readErrors                     *prometheus.Desc
	replicationDescs
	outboxDescs

	mu          sync.Mutex // serialises scrapes and guards everything below
	queue       func(ctx context.Context) (store.QueueStats, error)
	health      func(ctx context.Context) ([]store.Health, error)
	reader      func() cdc.Status
	replication func() Replication
	outbox      func(ctx context.Context) (OutboxBacklog, error)
	now         func() time.Time

	outboxAt time.Time
	outboxOK bool
	backlog  OutboxBacklog

	queueAt, healthAt time.Time // when the cached values were read
	queueOK, healthOK bool
	queueStats        store.QueueStats
	disabledCount     int
	errors            float64
}

func newStateCollector() *stateCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &stateCollector{
		queueDepth:       d("walhook_retry_queue_depth", "Pending deliveries in the retry store."),
		queueDue:         d("walhook_retry_due", "Pending deliveries due now (not yet attempted again)."),
		oldestDue:        d("walhook_retry_oldest_due_seconds", "How long the oldest due delivery has been due; 0 when none is."),
		failed:           d("walhook_deliveries_failed", "Failed deliveries stored (replayable with retry or recover)."),
		disabled:         d("walhook_endpoints_disabled", "Endpoints currently disabled."),
		connected:        d("walhook_source_connected", "1 while the replication connection is open."),
		stream:           d("walhook_source_streaming", "1 while the slot is held and changes are flowing."),
		readErrors:       d("walhook_metrics_read_errors_total", "Failed reads of the state database while computing gauges."),
		replicationDescs: newReplicationDescs(),
		outboxDescs:      newOutboxDescs(),
		now:              time.Now,
	}
}

// Describe sends every gauge's description.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.queueDepth, c.queueDue, c.oldestDue, c.failed, c.disabled,
		c.connected, c.stream, c.readErrors} {
		ch <- d
	}
	for _, d := range c.replicationDescs.all() {
		ch <- d
	}
	for _, d := range c.outboxDescs.all() {
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
		gauge(c.connected, boolValue(st.Connected))
		gauge(c.stream, boolValue(st.Streaming))
	}
	if c.replication != nil {
		c.replicationDescs.collect(ch, c.replication(), now)
	}
	c.collectOutbox(ch, now)
	ch <- prometheus.MustNewConstMetric(c.readErrors, prometheus.CounterValue, c.errors)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
