package dispatch

import (
	"hash/maphash"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walhook/walhook/internal/limit"
	"github.com/walhook/walhook/internal/store"
)

// runner holds one endpoint's lanes. An unordered endpoint has one queue
// served by several workers; an ordered one has Concurrency queues with
// at most one worker each, a key always going to the same queue, and a
// ledger. Workers start on demand and leave when idle, so an endpoint
// costs goroutines only while it has work (see spawn and work).
type runner struct {
	id     string
	keys   *ledger // nil unless the endpoint orders by key
	queues []chan *job
	seed   maphash.Seed
	// gate admits every attempt to the endpoint, first attempts and
	// retries together (internal/limit): an adaptive concurrency limit
	// with the endpoint's concurrency as its ceiling, Retry-After pauses
	// and the rate limit. An unordered lane runs as many workers as the
	// limit allows; SetEndpoints and SetInFlightLimit change it in place,
	// so what it learned survives a rebuild of the routing table.
	gate *limit.Gate
	// retrying counts this endpoint's retries claimed and not finished.
	retrying atomic.Int64
	// held is what this instance claimed as it stored it (preclaim.go);
	// retried counts retry attempts made, retryRate is their smoothed rate
	// per second (float64 bits), lastRetried is for the pace loop only.
	held        held
	retried     atomic.Int64
	retryRate   atomic.Uint64
	lastRetried int64
	// followed is when the peer limits the gate last followed were
	// published (Unix µs, the database's clock; peers.go).
	followed atomic.Int64

	// mu guards workers and closed; a leaf lock (Dispatcher.mu → runner.mu
	// when lanes close).
	mu      sync.Mutex
	workers []int // per lane
	closed  bool

	// Pacing (see pace.go): jobs finished in memory, the queue length a
	// lane may reach before new jobs go to the store, and the measured rate.
	// Only the pace loop touches the plain fields.
	finished   atomic.Int64
	allowed    atomic.Int64
	throughput atomic.Uint64 // float64 bits: first attempts per second, smoothed
	lastDone   int64
	rate       float64 // jobs per second, smoothed
	backlogged int     // consecutive pace intervals with a backlog
	minQueue   int64
	startQueue int64
	maxQueue   int64
}

// workerIdle is how long a lane worker waits for a job before it leaves.
const workerIdle = 2 * time.Second

// maxLaneWorkers caps lane workers across endpoints beyond each lane's
// first: every worker may hold a connection, and a hundred endpoints each
// growing to its own limit would hold tens of thousands. 1,024 keeps four
// 50 ms endpoints at 5,000 requests/s each.
const maxLaneWorkers = 1024

func (d *Dispatcher) runnerFor(ep *Endpoint) *runner {
	d.mu.Lock()
	r, ok := d.runners[ep.ID]
	if !ok {
		r = d.newRunner(ep)
		d.runners[ep.ID] = r
	}
	d.mu.Unlock()
	if !ok {
		d.obs.ConcurrencyLimit(ep.ID, r.gate.Limit())
		d.follow(d.health.get(ep.ID)) // a pause or limits the peers published
	}
	return r
}

func (d *Dispatcher) newRunner(ep *Endpoint) *runner {
	id, obs := ep.ID, d.obs
	r := &runner{id: id, seed: maphash.MakeSeed()}
	r.gate = limit.NewGate(limit.GateOptions{Ceiling: d.ceiling(ep), Rate: d.rate(ep),
		OnLimit: func(l int) { obs.ConcurrencyLimit(id, l) }, OnSignal: func(s limit.Signal) { d.onSignal(id, s) }})
	lanes := 1
	if ep.Ordered {
		r.keys = newLedger()
		lanes = ep.Concurrency
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
	r.workers = make([]int, lanes)
	return r
}

// wantWorkers is how many workers one lane may have: one on an ordered
// endpoint's lane (it keeps the key order), the gate's current limit
// otherwise.
func (r *runner) wantWorkers() int {
	if r.keys != nil {
		return 1
	}
	return r.gate.Limit()
}

// spawn starts a worker on lane i when the lane has none, or has jobs no
// worker took and fewer workers than wanted. It reports whether it did.
// Called after a job is queued and after a worker finishes a job (the
// limit may have grown).
func (d *Dispatcher) spawn(r *runner, i int) bool {
	want := r.wantWorkers() // outside r.mu: the gate has its own lock
	q := r.queues[i]
	r.mu.Lock()
	n := r.workers[i]
	start := !r.closed && (n == 0 || (len(q) > 0 && n < want && d.laneWorkers.Load() < maxLaneWorkers))
	if start {
		r.workers[i]++
		d.laneWorkers.Add(1)
		d.lanes.Add(1) // before Shutdown's Wait: it closes the runner first
	}
	r.mu.Unlock()
	if start {
		go func() {
			defer d.lanes.Done()
			defer d.laneWorkers.Add(-1)
			d.work(r, i)
		}()
	}
	return start
}

// leave reports whether a worker of lane i should stop, and counts it out
// if so: when idle with nothing queued, or (after a job) when the lane has
// more workers than the limit now wants. The last worker of a lane with
// jobs queued stays.
func (r *runner) leave(i int, idle bool) bool {
	want := r.wantWorkers()
	q := r.queues[i]
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.workers[i]
	stop := (idle && len(q) == 0) || (!idle && n > want && (n > 1 || len(q) == 0))
	if stop {
		r.workers[i]--
	}
	return stop
}

func (r *runner) queueIndex(key string) int {
	if len(r.queues) == 1 {
		return 0
	}
	return int(maphash.String(r.seed, key) % uint64(len(r.queues)))
}

// close closes the lanes; called once routing has stopped. No worker
// starts after it.
func (r *runner) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	for _, q := range r.queues {
		close(q)
	}
}

// work serves lane i until it is closed, the worker is idle for
// workerIdle, or the lane has more workers than the limit wants.
func (d *Dispatcher) work(r *runner, i int) {
	q := r.queues[i]
	var idle *time.Timer
	defer func() {
		if idle != nil {
			idle.Stop()
		}
	}()
	var carry *job // taken by a batch it did not fit in: sent next
	for {
		var j *job
		ok := true
		if carry != nil {
			j, carry = carry, nil
		} else {
			select {
			case j, ok = <-q:
			default:
				if idle == nil {
					idle = time.NewTimer(workerIdle)
				} else {
					idle.Reset(workerIdle)
				}
				select {
				case j, ok = <-q:
				case <-idle.C:
					if r.leave(i, true) {
						return
					}
					continue
				}
			}
		}
		if !ok {
			r.mu.Lock()
			r.workers[i]--
			r.mu.Unlock()
			return
		}
		n := 1
		if b := j.ep.Batching; b != nil {
			var jobs []*job
			jobs, carry = gather(q, j, b)
			d.firstBatch(r, jobs)
			n = len(jobs)
		} else {
			d.first(r, j)
		}
		r.finished.Add(int64(n))
		for range n {
			<-d.inflight
		}
		if carry == nil && r.leave(i, false) {
			return
		}
		d.spawn(r, i)
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

	// No delivery id: it is a hash, and only a stored or logged attempt
	// needs it (newDelivery makes it then).
	m := message{id: j.ev.ID, typ: j.ev.Type, body: j.body, tenant: j.ev.Tenant, number: 1, memo: j.memo}
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
			a.DeliveryID = dl.ID
			d.persist.logSuccess(d.storeCtx, dl, a)
		}
		return
	}

	dl := newDelivery(j, store.StatusPending, "")
	dl.Attempts, dl.LastStatus, dl.LastError = 1, res.StatusCode, res.ErrorText()
	a.DeliveryID = dl.ID
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
	failed := a // the item keeps its own copy: a stays on the stack on success
	d.storeFromMemory(r, j, item{d: dl, attempt: &failed, tx: j.tx, failedEndpoint: j.ep})
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
