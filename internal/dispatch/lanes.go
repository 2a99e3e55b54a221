package dispatch

import (
	"hash/maphash"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/walhook/walhook/internal/store"
)

// runner holds one endpoint's lanes. An unordered endpoint has one queue
// served by several workers; an ordered one has Concurrency queues with
// one worker each, a key always going to the same queue, and a ledger.
type runner struct {
	id     string
	keys   *ledger // nil unless the endpoint orders by key
	queues []chan *job
	seed   maphash.Seed
	// gate caps attempts in flight to the endpoint, first attempts and
	// retries together: by default twice its concurrency, since its lanes
	// make at most concurrency first attempts at once and its retries are
	// claimed up to concurrency (retryCap). SetInFlightLimit changes it.
	gate *gate
	// retrying counts this endpoint's retries claimed and not finished.
	retrying atomic.Int64
	retryCap int
	// workers is how many lane workers run (guarded by Dispatcher.mu).
	workers int

	closeOnce sync.Once

	// Pacing (see pace.go): jobs finished in memory, the queue length a
	// lane may reach before new jobs go to the store, and the measured rate.
	// Only the pace loop touches the plain fields.
	finished   atomic.Int64
	allowed    atomic.Int64
	lastDone   int64
	rate       float64 // jobs per second, smoothed
	backlogged int     // consecutive pace intervals with a backlog
	minQueue   int64
	startQueue int64
	maxQueue   int64
}

func (d *Dispatcher) runnerFor(ep *Endpoint) *runner {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r, ok := d.runners[ep.ID]; ok {
		return r
	}
	r := &runner{id: ep.ID, seed: maphash.MakeSeed(), gate: newGate(2 * ep.Concurrency), retryCap: ep.Concurrency}
	lanes, workers := 1, ep.Concurrency
	if ep.Ordered {
		r.keys = newLedger()
		lanes, workers = ep.Concurrency, 1
	}
	// A lane's channel can hold its share of MaxInFlight; how much of it
	// may be used at a time is paced by the endpoint's measured speed.
	// One endpoint may hold half of MaxInFlight, so others keep room.
	r.maxQueue = int64(max(d.opts.MaxInFlight/2/lanes, 1))
	r.startQueue = r.maxQueue
	r.minQueue = min(int64(2*ep.Concurrency/lanes), r.maxQueue)
	r.allowed.Store(r.startQueue)
	for i := 0; i < lanes; i++ {
		r.queues = append(r.queues, make(chan *job, r.maxQueue))
	}
	for _, q := range r.queues {
		d.addWorkersLocked(r, q, workers)
	}
	d.runners[ep.ID] = r
	return r
}

// addWorkersLocked starts n more workers on lane q. Caller holds d.mu.
func (d *Dispatcher) addWorkersLocked(r *runner, q chan *job, n int) {
	for range n {
		r.workers++
		d.lanes.Add(1)
		go func() { defer d.lanes.Done(); d.work(r, q) }()
	}
}

func (r *runner) queueFor(key string) chan *job {
	if len(r.queues) == 1 {
		return r.queues[0]
	}
	return r.queues[maphash.String(r.seed, key)%uint64(len(r.queues))]
}

// close closes the lanes; called once routing has stopped.
func (r *runner) close() {
	r.closeOnce.Do(func() {
		for _, q := range r.queues {
			close(q)
		}
	})
}

// work serves one lane until it is closed.
func (d *Dispatcher) work(r *runner, q chan *job) {
	for j := range q {
		d.first(r, j)
		r.finished.Add(1)
		<-d.inflight
	}
}

// first makes a job's first attempt; a failure goes to the store with its
// attempt and next due time. No lock is held at any point.
func (d *Dispatcher) first(r *runner, j *job) {
	if r.keys != nil && !r.keys.beginAttempt(j.key) {
		// An earlier delivery of the key went to the store: queue behind it.
		d.persist.hand(d.storeCtx, item{d: newDelivery(j, store.StatusPending, ""), tx: j.tx, fresh: true, keys: r.keys})
		return
	}
	ctx := d.sendCtx
	if ctx.Err() != nil || d.health.disabled(j.ep.ID) {
		status, reason := store.StatusPending, ""
		if ctx.Err() == nil {
			status, reason = store.StatusFailed, "endpoint disabled"
		}
		d.storeFromMemory(r, j, item{d: newDelivery(j, status, reason), tx: j.tx, fresh: true})
		return
	}

	m := message{id: j.ev.ID, typ: j.ev.Type, body: j.body, tenant: j.ev.Tenant, deliveryID: store.DeliveryID(j.ev.ID, j.ep.ID), number: 1}
	a, res, err := d.attempt(ctx, r.gate, j.ep, m)
	if err != nil {
		// Cut short by our own shutdown: not the endpoint's failure.
		d.storeFromMemory(r, j, item{d: newDelivery(j, store.StatusPending, ""), tx: j.tx, fresh: true})
		return
	}
	if res.OK() {
		if r.keys != nil {
			r.keys.finished(j.key)
		}
		j.tx.Done()
		d.health.succeeded(d.storeCtx, j.ep.ID)
		if d.opts.LogAttempts {
			dl := newDelivery(j, store.StatusDelivered, "")
			dl.Attempts, dl.LastStatus = 1, res.StatusCode
			d.persist.logSuccess(d.storeCtx, dl, a)
		}
		return
	}

	dl := newDelivery(j, store.StatusPending, "")
	dl.Attempts, dl.LastStatus, dl.LastError = 1, res.StatusCode, res.ErrorText()
	disable := ""
	if res.StatusCode == http.StatusGone {
		dl.Status = store.StatusFailed
		disable = "endpoint answered 410 Gone"
	} else if delay, ok := nextDelay(j.ep.Retry, 1, res.RetryAfter); ok {
		dl.NextAttemptAt = a.AttemptedAt.Add(delay)
	} else {
		dl.Status = store.StatusFailed
	}
	d.log.Debug().Str("endpoint", j.ep.Name).Str("event_id", j.ev.ID).Int("status", res.StatusCode).
		Str("error", res.ErrorText()).Msg("first attempt failed; stored for retry")
	d.storeFromMemory(r, j, item{d: dl, attempt: &a, tx: j.tx, failedEndpoint: j.ep})
	if disable != "" {
		d.disable(d.storeCtx, j.ep, disable)
	}
}

// storeFromMemory hands a job that was in memory to the persister.
func (d *Dispatcher) storeFromMemory(r *runner, j *job, it item) {
	if r.keys != nil {
		r.keys.divert(j.key)
		it.keys = r.keys
	}
	d.persist.hand(d.storeCtx, it)
}
