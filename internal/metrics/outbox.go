package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// OutboxBacklog is what waits in a polled outbox table.
type OutboxBacklog struct {
	Rows      int64         // an estimate beyond a cap (docs/outbox.md)
	OldestAge time.Duration // zero when none waits
}

// outboxDescs are the outbox backlog gauges.
type outboxDescs struct {
	waiting, oldestAge *prometheus.Desc
}

func newOutboxDescs() outboxDescs {
	return outboxDescs{
		waiting:   prometheus.NewDesc("walhook_outbox_rows_waiting", "Rows in the polled outbox table, not yet consumed (counted up to 10000, the planner's estimate beyond).", nil, nil),
		oldestAge: prometheus.NewDesc("walhook_outbox_oldest_age_seconds", "Age of the next outbox row to be claimed (the lowest id), by its created_at; 0 when none waits.", nil, nil),
	}
}

func (d outboxDescs) all() []*prometheus.Desc { return []*prometheus.Desc{d.waiting, d.oldestAge} }

// WatchOutbox makes the outbox backlog gauges read f at scrape time
// (cached for 2s): walhook_outbox_rows_waiting,
// walhook_outbox_oldest_age_seconds.
func (m *Metrics) WatchOutbox(f func(ctx context.Context) (OutboxBacklog, error)) {
	m.state.mu.Lock()
	defer m.state.mu.Unlock()
	m.state.outbox = f
	m.state.outboxAt = time.Time{}
}

// collectOutbox sends the backlog gauges; c.mu is held.
func (c *stateCollector) collectOutbox(ch chan<- prometheus.Metric, now time.Time) {
	if c.outbox == nil {
		return
	}
	if now.Sub(c.outboxAt) >= cacheFor {
		ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
		b, err := c.outbox(ctx)
		cancel()
		if err != nil {
			c.errors++
		} else {
			c.backlog, c.outboxOK = b, true
		}
		c.outboxAt = now
	}
	if c.outboxOK {
		ch <- prometheus.MustNewConstMetric(c.outboxDescs.waiting, prometheus.GaugeValue, float64(c.backlog.Rows))
		ch <- prometheus.MustNewConstMetric(c.outboxDescs.oldestAge, prometheus.GaugeValue, c.backlog.OldestAge.Seconds())
	}
}
