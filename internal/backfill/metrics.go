package backfill

import (
	"github.com/prometheus/client_golang/prometheus"
)

// collector exposes a Runner's work to Prometheus: see docs/api.md.
type collector struct {
	r                          *Runner
	active, total, done, sent  *prometheus.Desc
	rowsRead, rowsSent, chunks *prometheus.Desc
	chunkRetries               *prometheus.Desc
}

// Collector returns the runner's metrics: walhook_backfill_active,
// walhook_backfill_rows (total, done, sent; labels backfill, table) of the
// backfill running here, and counters of rows read, rows sent, chunks and
// chunks read again since start.
func (r *Runner) Collector() prometheus.Collector {
	return &collector{
		r:      r,
		active: prometheus.NewDesc("walhook_backfill_active", "1 while this process runs a backfill.", nil, nil),
		total: prometheus.NewDesc("walhook_backfill_rows_total", "Rows the running backfill reads (counted at its start).",
			[]string{"backfill", "table"}, nil),
		done: prometheus.NewDesc("walhook_backfill_rows_done", "Rows the running backfill has read.",
			[]string{"backfill", "table"}, nil),
		sent: prometheus.NewDesc("walhook_backfill_rows_sent", "Rows the running backfill has sent as read events (the others the stream changed meanwhile).",
			[]string{"backfill", "table"}, nil),
		rowsRead:     prometheus.NewDesc("walhook_backfill_rows_read_total", "Rows read by backfills since start.", nil, nil),
		rowsSent:     prometheus.NewDesc("walhook_backfill_rows_emitted_total", "Rows emitted as read changes by backfills since start.", nil, nil),
		chunks:       prometheus.NewDesc("walhook_backfill_chunks_total", "Chunks read by backfills since start.", nil, nil),
		chunkRetries: prometheus.NewDesc("walhook_backfill_chunk_retries_total", "Chunks read again because the stream changed their table in a way not tied to one key.", nil, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.active, c.total, c.done, c.sent, c.rowsRead, c.rowsSent, c.chunks, c.chunkRetries} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	p, ok := c.r.Active()
	active := 0.0
	if ok {
		active = 1
		if p.RowsTotal >= 0 {
			ch <- prometheus.MustNewConstMetric(c.total, prometheus.GaugeValue, float64(p.RowsTotal), p.ID, p.Table)
		}
		ch <- prometheus.MustNewConstMetric(c.done, prometheus.GaugeValue, float64(p.RowsRead), p.ID, p.Table)
		ch <- prometheus.MustNewConstMetric(c.sent, prometheus.GaugeValue, float64(p.RowsSent), p.ID, p.Table)
	}
	ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, active)
	ch <- prometheus.MustNewConstMetric(c.rowsRead, prometheus.CounterValue, float64(c.r.rowsRead.Load()))
	ch <- prometheus.MustNewConstMetric(c.rowsSent, prometheus.CounterValue, float64(c.r.rowsEmitted.Load()))
	ch <- prometheus.MustNewConstMetric(c.chunks, prometheus.CounterValue, float64(c.r.chunks.Load()))
	ch <- prometheus.MustNewConstMetric(c.chunkRetries, prometheus.CounterValue, float64(c.r.chunkRetries.Load()))
}
