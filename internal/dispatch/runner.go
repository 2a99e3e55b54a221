package dispatch

import (
	"context"
	"hash/maphash"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walhook/walhook/internal/sender"
	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/store"
)

// runner holds one endpoint's lanes. An unordered endpoint has one queue
// served by Concurrency workers; an ordered one has Concurrency queues with
// one worker each, a key always going to the same queue.
type runner struct {
	id      string
	ordered bool
	queues  []chan *job
	seed    maphash.Seed
	retries chan struct{} // limits this endpoint's retries in flight

	mu      sync.Mutex
	closed  bool
	blocked map[string]uint64 // ordered: key -> generation of its last store write
	gen     uint64
	inLane  map[string]int // ordered: jobs of a key queued or being sent in memory
	// persisting counts an ordered key's store writes not yet committed.
	persisting map[string]int

	// Pacing (see pace.go): jobs finished in memory, the queue length a
	// lane may reach before new jobs go to the store, and the measured rate.
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
	r := &runner{
		id:      ep.ID,
		ordered: ep.Ordered,
		seed:    maphash.MakeSeed(),
		retries: make(chan struct{}, ep.Concurrency),
		blocked: map[string]uint64{},
		inLane:  map[string]int{},

		persisting: map[string]int{},
	}
	lanes, workers := 1, ep.Concurrency
	if ep.Ordered {
		lanes, workers = ep.Concurrency, 1
	}
	// A lane's channel can hold its share of MaxInFlight; how much of it
	// may be used at a time is paced by the endpoint's measured speed.
	// One endpoint may hold half of MaxInFlight, so others keep room.
	r.maxQueue = int64(max(d.opts.MaxInFlight/2/lanes, 1))
	r.startQueue = r.maxQueue
	r.minQueue = min(int64(2*workers), r.maxQueue)
	r.allowed.Store(r.startQueue)
	for i := 0; i < lanes; i++ {
		q := make(chan *job, r.maxQueue)
		r.queues = append(r.queues, q)
		for w := 0; w < workers; w++ {
			d.lanes.Add(1)
			go func() { defer d.lanes.Done(); d.work(r, q) }()
		}
	}
	d.runners[ep.ID] = r
	return r
}

func (r *runner) queueFor(key string) chan *job {
	if len(r.queues) == 1 {
		return r.queues[0]
	}
	return r.queues[maphash.String(r.seed, key)%uint64(len(r.queues))]
}

// block marks key as having deliveries in the store. Caller holds r.mu.
func (r *runner) block(key string) {
	r.gen++
	r.blocked[key] = r.gen
}

// leaveLaneLocked notes that a job of key left memory. Caller holds r.mu.
func (r *runner) leaveLaneLocked(key string) {
	if r.inLane[key] <= 1 {
		delete(r.inLane, key)
	} else {
		r.inLane[key]--
	}
}

// busyInMemory reports whether jobs of key are queued or in flight in
// memory, or on their way to the store: a job leaves inLane only after its
// store write is counted in persisting, so between the two counts every
// job of the key not yet sent or stored is seen.
func (r *runner) busyInMemory(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inLane[key] > 0 || r.persisting[key] > 0
}

func (r *runner) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		for _, q := range r.queues {
			close(q)
		}
	}
}

// work serves one lane until it is closed.
func (d *Dispatcher) work(r *runner, q chan *job) {
	for j := range q {
		d.first(r, j)
		r.finished.Add(1)
		<-d.inflight
		if r.ordered {
			r.mu.Lock()
			r.leaveLaneLocked(j.key)
			r.mu.Unlock()
		}
	}
}

// first makes a job's first attempt; a failure goes to the store with its
// attempt and next due time.
func (d *Dispatcher) first(r *runner, j *job) {
	ctx := d.sendCtx
	bg := context.WithoutCancel(ctx)
	if r.ordered {
		r.mu.Lock()
		if _, blocked := r.blocked[j.key]; blocked {
			err := d.persistBehindLocked(bg, r, j)
			r.mu.Unlock()
			d.logPersistErr(err)
			return
		}
		r.mu.Unlock()
	}
	if ctx.Err() != nil {
		// Draining past the deadline: store it, due now.
		d.logPersistErr(d.storeFresh(bg, r, j))
		return
	}
	if d.health.disabled(j.ep.ID) {
		d.logPersistErr(d.persist.add(bg, item{d: newDelivery(j, store.StatusFailed, "endpoint disabled"), tx: j.tx}))
		return
	}

	started := time.Now()
	res := d.send(ctx, j.ep, j.ev.ID, j.ev.Type, j.body, 1)
	if res.Err != nil && ctx.Err() != nil {
		// Cut short by our own shutdown: not the endpoint's failure.
		d.logPersistErr(d.storeFresh(bg, r, j))
		return
	}
	a := attemptOf(j.ep.ID, store.DeliveryID(j.ev.ID, j.ep.ID), j.ev.ID, j.ev.Type, 1, started, res)
	d.obs.Attempted(a, j.ev.Tenant)
	if res.OK() {
		j.tx.Done()
		d.health.succeeded(bg, j.ep.ID)
		if d.opts.LogAttempts {
			dl := newDelivery(j, store.StatusDelivered, "")
			dl.Attempts, dl.LastStatus = 1, res.StatusCode
			d.persist.logSuccess(dl, a)
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
		dl.NextAttemptAt = started.Add(delay)
	} else {
		dl.Status = store.StatusFailed
	}
	d.log.Debug().Str("endpoint", j.ep.Name).Str("event_id", j.ev.ID).Int("status", res.StatusCode).
		Str("error", res.ErrorText()).Msg("first attempt failed; stored for retry")
	it := item{d: dl, attempt: &a, tx: j.tx, failedEndpoint: j.ep}
	if r.ordered {
		r.mu.Lock()
		r.block(j.key)
		err := d.persist.addOrdered(bg, r, it)
		r.mu.Unlock()
		d.logPersistErr(err)
	} else {
		d.logPersistErr(d.persist.add(bg, it))
	}
	if disable != "" {
		d.disable(bg, j.ep, disable)
	}
}

// storeFresh stores a job not yet attempted, due now, behind its key.
func (d *Dispatcher) storeFresh(ctx context.Context, r *runner, j *job) error {
	if !r.ordered {
		return d.persist.add(ctx, item{d: newDelivery(j, store.StatusPending, ""), tx: j.tx, fresh: true})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return d.persistBehindLocked(ctx, r, j)
}

func (d *Dispatcher) logPersistErr(err error) {
	if err != nil {
		d.log.Error().Err(err).Msg("handing a delivery to the store")
	}
}

// send signs and posts one attempt.
func (d *Dispatcher) send(ctx context.Context, ep *Endpoint, id, typ string, body []byte, attempt int) sender.Result {
	h := make(http.Header, len(ep.Header)+4)
	for k, v := range ep.Header {
		h[k] = v
	}
	h.Set("Webhook-Attempt", strconv.Itoa(attempt))
	if ep.Signer != nil {
		ep.Signer.Sign(h, signing.Message{ID: id, Type: typ, Timestamp: time.Now(), Body: body})
	}
	return ep.Client.Send(ctx, sender.Request{URL: ep.URL, Header: h, Body: body, Timeout: ep.Timeout})
}

func attemptOf(endpointID, deliveryID, eventID, eventType string, n int, at time.Time, res sender.Result) store.Attempt {
	a := store.Attempt{
		DeliveryID:  deliveryID,
		EventID:     eventID,
		EventType:   eventType,
		EndpointID:  endpointID,
		Number:      n,
		AttemptedAt: at,
		Duration:    res.Duration,
		StatusCode:  res.StatusCode,
		Response:    string(res.Response),
	}
	if !res.OK() {
		a.Error = res.ErrorText()
	}
	return a
}
