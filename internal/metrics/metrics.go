// Package metrics exposes walhook's Prometheus metrics: counters fed by
// the dispatcher (as its dispatch.Observer) and gauges read at scrape time
// from the retry store and the change reader. docs/api.md lists them with
// suggested alerts.
package metrics

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/walhook/walhook/internal/dispatch"
	"github.com/walhook/walhook/internal/store"
)

// Metrics holds walhook's metrics. Its Observer methods are cheap and safe
// for concurrent use.
type Metrics struct {
	gatherer   prometheus.Gatherer
	registerer prometheus.Registerer

	changesRead       prometheus.Counter
	eventsEmitted     *prometheus.CounterVec
	evaluationsFailed prometheus.Counter
	deliveries        *prometheus.CounterVec
	attempts          *prometheus.CounterVec
	attemptDuration   *prometheus.HistogramVec
	overflow          *prometheus.CounterVec
	disabled          prometheus.Counter
	concurrencyLimit  *prometheus.GaugeVec
	captureGaps       *prometheus.CounterVec
	outboxSkipped     *prometheus.CounterVec
	leasesTakenOver   prometheus.Counter
	connections       *prometheus.CounterVec

	// The series every delivery moves, looked up once (see series).
	emittedBy   series[prometheus.Counter]  // eventsEmitted by type
	succeededAt series[prometheus.Counter]  // attempts{result="2xx"} by endpoint
	durationAt  series[prometheus.Observer] // attemptDuration by endpoint
	deliveredAt series[prometheus.Counter]  // deliveries{outcome="delivered"} by endpoint
	connectedTo series[prometheus.Counter]  // connections by endpoint

	state     *stateCollector
	instances *instanceCollector
}

var _ dispatch.Observer = (*Metrics)(nil)

// AttemptBuckets are the attempt duration histogram's buckets, in seconds.
var AttemptBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 30}

// New registers walhook's metrics with reg; a nil reg means a new
// registry of its own, with the Go runtime and process collectors too.
// Handler serves what reg gathers when reg is also a prometheus.Gatherer
// (a *prometheus.Registry is), else the default gatherer.
func New(reg prometheus.Registerer) *Metrics {
	if reg == nil {
		r := prometheus.NewRegistry()
		r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		reg = r
	}
	m := &Metrics{
		changesRead: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "walhook_changes_read_total", Help: "Row changes read from the source.",
		}),
		eventsEmitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walhook_events_emitted_total", Help: "Events produced by the rules, by event type.",
		}, []string{"type"}),
		evaluationsFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "walhook_evaluations_failed_total", Help: "Rule evaluations that failed on a change (the change is recorded as a failed evaluation).",
		}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walhook_deliveries_total", Help: "Deliveries by endpoint and outcome: delivered, retrying (stored for a later attempt) or failed (given up).",
		}, []string{"endpoint", "outcome"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walhook_attempts_total", Help: "HTTP attempts by endpoint and result: 2xx, 3xx, 4xx, 5xx, or error (no response).",
		}, []string{"endpoint", "result"}),
		attemptDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "walhook_attempt_duration_seconds", Help: "Duration of HTTP attempts, by endpoint.", Buckets: AttemptBuckets,
		}, []string{"endpoint"}),
		overflow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walhook_overflow_total", Help: "Deliveries sent to the retry store unattempted because the in-memory cap was reached.",
		}, []string{"endpoint"}),
		disabled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "walhook_endpoints_disabled_total", Help: "Times an endpoint was disabled (410 Gone or failing too long).",
		}),
		concurrencyLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "walhook_endpoint_concurrency_limit", Help: "Requests an endpoint may have in flight now, as adapted to its latency and refusals (at most its concurrency setting).",
		}, []string{"endpoint"}),
		captureGaps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walhook_capture_gaps_total", Help: "Times changes went uncaptured or stopped matching rules, by reason (table_recreated, table_unpublished, table_renamed, table_dropped, table_missing); the log says what was missed and what to run.",
		}, []string{"reason"}),
		outboxSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walhook_outbox_rows_skipped_total", Help: "Outbox rows consumed without a delivery, by reason (no_subscriber: no endpoint wants the row's event type).",
		}, []string{"reason"}),
		leasesTakenOver: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "walhook_leases_taken_over_total", Help: "Claimed deliveries of dead instances this instance made due again before their leases ended.",
		}),
		connections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walhook_connections_opened_total", Help: "Connections opened to an endpoint (with a TLS handshake for https) rather than reused: rising with the attempts, the receiver does not keep connections alive.",
		}, []string{"endpoint"}),
		state:     newStateCollector(),
		instances: newInstanceCollector(),
	}
	m.emittedBy.with = func(typ string) prometheus.Counter { return m.eventsEmitted.WithLabelValues(typ) }
	m.succeededAt.with = func(ep string) prometheus.Counter { return m.attempts.WithLabelValues(ep, "2xx") }
	m.durationAt.with = func(ep string) prometheus.Observer { return m.attemptDuration.WithLabelValues(ep) }
	m.deliveredAt.with = func(ep string) prometheus.Counter { return m.deliveries.WithLabelValues(ep, "delivered") }
	m.connectedTo.with = func(ep string) prometheus.Counter { return m.connections.WithLabelValues(ep) }
	m.outboxSkipped.WithLabelValues("no_subscriber")
	for _, r := range gapReasons {
		m.captureGaps.WithLabelValues(r) // from 0, so that increase() sees the first
	}
	reg.MustRegister(m.changesRead, m.eventsEmitted, m.evaluationsFailed, m.deliveries, m.attempts,
		m.attemptDuration, m.overflow, m.disabled, m.concurrencyLimit, m.captureGaps, m.outboxSkipped, m.leasesTakenOver, m.connections, m.state, m.instances)
	m.registerer = reg
	if g, ok := reg.(prometheus.Gatherer); ok {
		m.gatherer = g
	} else {
		m.gatherer = prometheus.DefaultGatherer
	}
	return m
}

// Register adds a collector of another part of walhook (the backfill
// runner) to the metrics served.
func (m *Metrics) Register(c prometheus.Collector) error { return m.registerer.Register(c) }

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// ChangesRead counts n row changes read.
func (m *Metrics) ChangesRead(n int) { m.changesRead.Add(float64(n)) }

// EventEmitted counts one event of eventType.
func (m *Metrics) EventEmitted(eventType string) { m.emittedBy.get(eventType).Inc() }

// EvaluationsFailed counts n failed rule evaluations.
func (m *Metrics) EvaluationsFailed(n int) { m.evaluationsFailed.Add(float64(n)) }

// Attempted counts one HTTP attempt and its duration; a first attempt
// that succeeded is also a delivery (the dispatcher reports no Outcome
// for it: nothing is stored).
func (m *Metrics) Attempted(a store.Attempt, _ string) {
	if a.OK() {
		m.succeededAt.get(a.EndpointID).Inc()
	} else {
		m.attempts.WithLabelValues(a.EndpointID, result(false, a.StatusCode)).Inc()
	}
	m.durationAt.get(a.EndpointID).Observe(a.Duration.Seconds())
	if a.OK() && a.Number == 1 {
		m.deliveredAt.get(a.EndpointID).Inc()
	}
	if a.Connected {
		m.connectedTo.get(a.EndpointID).Inc()
	}
}

// series holds the children of a metric vector by one label value, made
// on first use as WithLabelValues makes them. WithLabelValues hashes the
// values and takes the vector's lock on every call; a lookup here takes
// no lock. Only for vectors whose series are never deleted.
type series[T any] struct {
	with func(value string) T
	m    sync.Map // value -> T
}

// get is the child of value.
func (s *series[T]) get(value string) T {
	if c, ok := s.m.Load(value); ok {
		return c.(T)
	}
	c := s.with(value)
	s.m.Store(value, c) // one racing it stores the same child
	return c
}

// result is an attempt's result label.
func result(ok bool, status int) string {
	switch {
	case ok:
		return "2xx"
	case status >= 100 && status < 600:
		return strconv.Itoa(status/100) + "xx"
	}
	return "error"
}

// Overflowed counts a delivery stored because memory was full.
func (m *Metrics) Overflowed(endpointID string) { m.overflow.WithLabelValues(endpointID).Inc() }

// Outcome counts a delivery reaching "delivered", "retrying" or "failed".
func (m *Metrics) Outcome(endpointID, outcome string) {
	m.deliveries.WithLabelValues(endpointID, outcome).Inc()
}

// Disabled counts an endpoint being disabled.
func (m *Metrics) Disabled(endpointID string) { m.disabled.Inc() }

// ConcurrencyLimit sets an endpoint's current concurrency limit
// (walhook_endpoint_concurrency_limit); 0 drops the gauge of an endpoint
// that was removed.
func (m *Metrics) ConcurrencyLimit(endpointID string, limit int) {
	if limit <= 0 {
		m.concurrencyLimit.DeleteLabelValues(endpointID)
		return
	}
	m.concurrencyLimit.WithLabelValues(endpointID).Set(float64(limit))
}

// OutboxRowSkipped counts an outbox row consumed without a delivery, by
// reason (walhook_outbox_rows_skipped_total).
func (m *Metrics) OutboxRowSkipped(reason string) { m.outboxSkipped.WithLabelValues(reason).Inc() }

// LeasesTakenOver counts n claimed deliveries of dead instances released
// (walhook_leases_taken_over_total).
func (m *Metrics) LeasesTakenOver(n int) { m.leasesTakenOver.Add(float64(n)) }
