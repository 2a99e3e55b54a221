package dispatch

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/event"
	"github.com/walhook/walhook/internal/lifecycle"
	"github.com/walhook/walhook/internal/limit"
	"github.com/walhook/walhook/internal/settle"
	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/store"
)

// Options configure a Dispatcher. Every field is resolved by the caller
// (package config holds the defaults); New rejects what is not.
type Options struct {
	Store Store
	// MaxInFlight caps deliveries held in memory.
	MaxInFlight int
	// LogAttempts writes successful first attempts to the attempts log.
	LogAttempts bool
	// RetryWorkers bounds retries in flight across endpoints.
	RetryWorkers int
	// RetryPoll is how often the store is asked for due retries when idle.
	RetryPoll time.Duration
	// ShareAll sends every delivery through the store (delivery.share =
	// "all"): written in batches, settled once written, then claimed and
	// attempted by the retry loop of any instance (docs/scaling.md).
	ShareAll bool
	Observer Observer // nil: none
	Logger   zerolog.Logger
}

// Batch is the unit the pipeline hands to Dispatch: the events and failed
// evaluations of one captured transaction, one outbox poll, or any other
// position of a source. Settled is called exactly once, when every delivery
// of the batch and its failed evaluations are settled (accepted by their
// endpoint or durably stored); never called when the process stops first.
type Batch struct {
	Events   []event.Event
	Failures []event.Failure
	XID      uint32 // the source transaction, for failed evaluations
	Settled  func()
	// Unrouted, when set, is told of each event no endpoint wants, during
	// Dispatch (the outbox counts such rows as skipped).
	Unrouted func(*event.Event)
	// Bulk marks a piece of a large transaction (cdc.Transaction.Part):
	// its deliveries take at most half of an endpoint's lane and never
	// wait for room in it; the rest goes to the store at once. So the
	// source is not paced by the endpoint through a whole large
	// transaction, and what comes after it finds room in memory.
	Bulk bool
}

// Dispatcher delivers batches of events to endpoints. See
// docs/architecture.md for its stages, who owns which state, and the lock
// order.
type Dispatcher struct {
	opts  Options
	log   zerolog.Logger
	store Store
	obs   Observer

	table    atomic.Pointer[table]
	inflight chan struct{} // semaphore over deliveries held in memory

	mu      sync.Mutex // guards runners; a leaf lock
	runners map[string]*runner

	health   *healthCache
	publish  *publisher // pauses and limits for the other instances (peers.go)
	persist  *persister
	failures *failureLog // rate-limited warn lines of failed evaluations
	wake     chan struct{}
	// heldTaken is signalled when the retry loop takes a delivery claimed
	// with its write (preclaim.go).
	heldTaken chan struct{}

	loops *lifecycle.Group // pace, retry, health, sweep, persister
	lanes sync.WaitGroup   // lane workers; they stop when their queue closes
	// laneWorkers counts lane workers across endpoints (maxLaneWorkers).
	laneWorkers atomic.Int64
	// sendCtx ends when the drain's send deadline passes: lanes store
	// instead of sending. storeCtx ends at the shutdown deadline: store
	// writes are abandoned (their batches stay unsettled).
	sendCtx     context.Context
	cancelSend  context.CancelFunc
	storeCtx    context.Context
	cancelStore context.CancelFunc
	closing     atomic.Bool
	// senders is how many instances share the endpoints' limits (see
	// senders.go); 0 or 1: this one alone.
	senders atomic.Int64
}

// New returns a Dispatcher; call Start before Dispatch.
func New(opts Options) (*Dispatcher, error) {
	if opts.Store == nil || opts.MaxInFlight <= 0 || opts.RetryWorkers <= 0 || opts.RetryPoll <= 0 {
		return nil, fmt.Errorf("dispatcher options not resolved: store set %t, max_in_flight %d, retry_workers %d, retry poll %s",
			opts.Store != nil, opts.MaxInFlight, opts.RetryWorkers, opts.RetryPoll)
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	d := &Dispatcher{
		opts:      opts,
		log:       opts.Logger.With().Str("component", "dispatch").Logger(),
		store:     opts.Store,
		obs:       opts.Observer,
		inflight:  make(chan struct{}, opts.MaxInFlight),
		runners:   map[string]*runner{},
		wake:      make(chan struct{}, 1),
		heldTaken: make(chan struct{}, 1),
	}
	d.table.Store(&table{byID: map[string]*Endpoint{}})
	d.health = newHealthCache(opts.Store, d.log)
	d.health.onSet = d.follow
	d.publish = newPublisher()
	d.persist = newPersister(d)
	d.failures = newFailureLog(d.log, failureLogFirst)
	return d, nil
}

// Start starts the background loops: the persister, retries, health
// refresh, pacing and the sweep that releases ordered keys.
func (d *Dispatcher) Start(ctx context.Context) error {
	if err := d.health.refresh(ctx); err != nil {
		return fmt.Errorf("reading endpoint health: %w", err)
	}
	base := context.WithoutCancel(ctx)
	d.sendCtx, d.cancelSend = context.WithCancel(base)
	d.storeCtx, d.cancelStore = context.WithCancel(base)
	d.loops = lifecycle.New(ctx)
	d.persist.start(d.storeCtx)
	d.loops.Every(paceInterval, paceInterval, d.paceAll)
	d.loops.Go(d.retryLoop)
	d.loops.Go(d.publishLoop)
	d.loops.Every(healthRefresh, healthRefresh, d.health.refreshLogged)
	d.loops.Every(sweepInterval, sweepInterval, d.sweepAll)
	d.loops.Every(failureLogPeriod, failureLogPeriod, func(context.Context) { d.failures.flush() })
	return nil
}

// Endpoint returns the endpoint with id, or nil.
func (d *Dispatcher) Endpoint(id string) *Endpoint { return d.table.Load().byID[id] }

// Endpoints returns the current endpoints.
func (d *Dispatcher) Endpoints() []*Endpoint { return d.table.Load().list }

// SetEndpoints replaces the routing table; deliveries already routed keep
// the endpoint they were routed with. Ordered endpoints new to the table
// learn which keys have deliveries waiting in the store.
func (d *Dispatcher) SetEndpoints(ctx context.Context, eps []*Endpoint) error {
	old := d.table.Load()
	t := &table{byID: make(map[string]*Endpoint, len(eps))}
	for _, ep := range eps {
		if err := ep.check(); err != nil {
			return err
		}
	}
	for _, ep := range eps {
		t.list = append(t.list, ep)
		t.byID[ep.ID] = ep
		d.mu.Lock()
		r := d.runners[ep.ID]
		d.mu.Unlock()
		if r != nil {
			// A changed endpoint keeps its gate and what it learned.
			r.gate.SetCeiling(d.ceiling(ep))
			r.gate.SetRate(d.rate(ep))
			if _, known := old.byID[ep.ID]; !known {
				d.obs.ConcurrencyLimit(ep.ID, r.gate.Limit())
			}
		}
		if _, known := old.byID[ep.ID]; !known && ep.Ordered {
			keys, err := d.store.PendingKeys(ctx, ep.ID, nil)
			if err != nil {
				return fmt.Errorf("loading the pending keys of endpoint %s: %w", ep.Name, err)
			}
			if r := d.runnerFor(ep); r.keys != nil {
				r.keys.block(keys)
			}
		}
	}
	d.table.Store(t)
	for id := range old.byID {
		if _, kept := t.byID[id]; !kept {
			d.obs.ConcurrencyLimit(id, 0)
		}
	}
	return nil
}

// SetInFlightLimit sets how many attempts (first attempts and retries
// together) may be in flight to an endpoint now, and makes it the ceiling
// of its adaptive limit until the next SetEndpoints; it applies from the
// next attempt. An unordered endpoint starts more lane workers when jobs
// wait; an ordered one keeps one worker per lane (its lanes fix the key
// order). It reports false when the endpoint has no lanes yet.
func (d *Dispatcher) SetInFlightLimit(endpointID string, n int) bool {
	d.mu.Lock()
	r := d.runners[endpointID]
	d.mu.Unlock()
	if r == nil {
		return false
	}
	r.gate.SetLimit(n)
	for i := range r.queues {
		for d.spawn(r, i) {
		}
	}
	return true
}

// EndpointLoad is what the dispatcher knows of an endpoint's load now.
type EndpointLoad struct {
	Limit    int        // current adaptive concurrency limit
	InFlight int        // attempts holding a slot
	Retrying int        // retries claimed from the store and not finished
	Rate     limit.Rate // the configured rate limit; zero: none
	// Throughput is first attempts per second, smoothed over a second.
	Throughput float64
}

// Load reports an endpoint's load; false when it has no lanes yet.
func (d *Dispatcher) Load(endpointID string) (EndpointLoad, bool) {
	d.mu.Lock()
	r := d.runners[endpointID]
	d.mu.Unlock()
	if r == nil {
		return EndpointLoad{}, false
	}
	return EndpointLoad{Limit: r.gate.Limit(), InFlight: r.gate.InFlight(), Retrying: int(r.retrying.Load()), Rate: r.gate.Rate(),
		Throughput: math.Float64frombits(r.throughput.Load())}, true
}

type table struct {
	list []*Endpoint
	byID map[string]*Endpoint
}

// job is one event bound for one endpoint, held in memory.
type job struct {
	ep   *Endpoint
	ev   *event.Event
	body []byte
	key  string // ordering key; empty unless the endpoint orders
	tx   *settle.Tx
	memo *signing.Memo // shared by the jobs of one event; nil when it has one
	// batchID, with share = "all", is the batch the delivery is stored in
	// (sharedBatches); empty otherwise.
	batchID string
}

// owned is Dispatch's copy of an event, made with the first job that
// carries it in one allocation; the event's further jobs (fan-out) are
// made apart.
type owned struct {
	ev    event.Event
	first job
	taken bool // first is in use
}

// newJob returns a new job carrying o's event to ep.
func (o *owned) newJob(ep *Endpoint, body []byte) *job {
	j := &o.first
	if o.taken {
		j = &job{}
	}
	o.taken = true
	*j = job{ep: ep, ev: &o.ev, body: body}
	return j
}

// Dispatch is the dispatcher's entry point: it turns a batch into
// deliveries and routes them. It never waits on an endpoint: what memory
// cannot hold goes to the store. It waits only for room in memory or in
// the persister's queue (backpressure on the source), and returns early
// with ctx's error. A source dispatches its batches one at a time, in
// source order; other feeders (the relay's replays of failed evaluations)
// may call it at the same time.
func (d *Dispatcher) Dispatch(ctx context.Context, b Batch) error {
	if d.closing.Load() {
		return errors.New("dispatcher is shutting down")
	}
	tbl := d.table.Load()
	failures := b.Failures
	var jobs []*job
	var bodies event.Bodies // of one event at a time, reset for each
	for i := range b.Events {
		ev := &b.Events[i]
		d.obs.EventEmitted(ev.Type)
		// The batch's events may be scratch space: jobs keep a copy, own.
		var held *owned
		var own *event.Event
		rendered := false // bodies holds own's bodies
		first := len(jobs)
		wanted := false
		for _, ep := range tbl.list {
			if !ep.Wants(ev) {
				continue
			}
			wanted = true
			if held == nil {
				held = &owned{ev: *ev}
				own = &held.ev
			}
			var body []byte
			var err error
			if ep.BodyShape == "" {
				body, err = ep.Body(own)
			} else {
				if !rendered {
					bodies.Reset(own)
					rendered = true
				}
				body, err = bodies.Render(ep.BodyShape, ep.Body)
			}
			if err != nil {
				failures = append(failures, event.Failure{
					Rule: "endpoint " + ep.Name + " body", Table: own.Table, CommitLSN: own.CommitLSN,
					EndLSN: own.EndLSN, Position: own.Position, XID: b.XID,
					Error: fmt.Sprintf("rendering the body of %s for endpoint %s: %v", own.Type, ep.Name, err),
					Row:   own.Data,
					// A replay sends this event to this endpoint again.
					EventType: own.Type, EventID: own.ID, Endpoint: ep.ID, Event: own,
				})
				continue
			}
			j := held.newJob(ep, body)
			if ep.Ordered {
				j.key = own.Key
			}
			jobs = append(jobs, j)
		}
		if !wanted && b.Unrouted != nil {
			b.Unrouted(ev)
		}
		if len(jobs)-first > 1 {
			// Fan-out: endpoints sharing a secret and a body sign once.
			memo := &signing.Memo{}
			for _, j := range jobs[first:] {
				j.memo = memo
			}
		}
	}

	n := len(jobs)
	if len(failures) > 0 {
		n++
	}
	stx := settle.NewTx(n, b.Settled)
	if len(failures) > 0 {
		d.failures.record(failures)
		d.obs.EvaluationsFailed(len(failures))
		if err := d.persist.add(ctx, item{failures: failures, tx: stx}); err != nil {
			return err
		}
	}
	if d.opts.ShareAll {
		sharedBatches(jobs)
	}
	var wait laneTimer
	for _, j := range jobs {
		j.tx = stx
		if err := d.route(ctx, j, b.Bulk, &wait); err != nil {
			return err
		}
	}
	return nil
}

// route hands a job to its endpoint's lane, or to the store when the
// endpoint is disabled, its key is blocked, its lane holds more than the
// endpoint can deliver soon (see pace.go), or every delivery is shared. When memory as a whole is full
// it waits: only fast endpoints can fill it, since pacing keeps slow ones
// short. A bulk job (Batch.Bulk) goes to the store once its lane is half
// full, without waiting. It holds no lock while it waits or sends; it
// waits on wait's timer.
func (d *Dispatcher) route(ctx context.Context, j *job, bulk bool, wait *laneTimer) error {
	r := d.runnerFor(j.ep)
	if d.health.disabled(j.ep.ID) {
		return d.persist.add(ctx, item{d: newDelivery(j, store.StatusFailed, "endpoint disabled"), tx: j.tx})
	}
	if d.opts.ShareAll {
		// Nothing of the endpoint is ever in memory, so its ledger has
		// nothing to track: the store's head-of-key rule alone orders a
		// key, and the persister writes in routing order (source order).
		dl := newDelivery(j, store.StatusPending, "")
		dl.BatchID = j.batchID
		return d.persist.add(ctx, item{d: dl, tx: j.tx, fresh: true, shared: true})
	}
	select {
	case d.inflight <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if r.keys != nil && !r.keys.admit(j.key) {
		<-d.inflight
		return d.storeJob(ctx, r, j, false)
	}
	lane := r.queueIndex(j.key)
	q := r.queues[lane]
	allowed := r.allowed.Load()
	if bulk && int64(len(q)) >= max(allowed/2, 1) {
		<-d.inflight
		d.obs.Overflowed(j.ep.ID)
		return d.storeJob(ctx, r, j, true)
	}
	if allowed < r.maxQueue && int64(len(q)) >= allowed {
		// The endpoint is slower than its queue: store rather than wait.
		<-d.inflight
		d.obs.Overflowed(j.ep.ID)
		return d.storeJob(ctx, r, j, true)
	}
	select {
	case q <- j:
		d.spawn(r, lane)
		return nil
	default:
	}
	if bulk {
		<-d.inflight
		d.obs.Overflowed(j.ep.ID)
		return d.storeJob(ctx, r, j, true)
	}
	// The lane is full but the endpoint keeps up with it: wait a little.
	var err error
	select {
	case q <- j:
		wait.stop()
		d.spawn(r, lane)
		return nil
	case <-wait.start():
	case <-ctx.Done():
		wait.stop()
		err = ctx.Err()
	}
	<-d.inflight
	if err != nil {
		if r.keys != nil {
			r.keys.finished(j.key)
		}
		return err
	}
	d.obs.Overflowed(j.ep.ID)
	return d.storeJob(ctx, r, j, true)
}

// laneWait bounds how long routing waits for room in a full lane.
const laneWait = 100 * time.Millisecond

// laneTimer times route's waits for room in a full lane: one timer for
// the jobs of a Dispatch call, made when the first of them has to wait.
// Reset and Stop leave no stale tick in its channel (Go 1.23 timers).
type laneTimer struct{ t *time.Timer }

// start starts a wait of laneWait and returns the channel that ends it.
func (w *laneTimer) start() <-chan time.Time {
	if w.t == nil {
		w.t = time.NewTimer(laneWait)
	} else {
		w.t.Reset(laneWait)
	}
	return w.t.C
}

// stop ends a wait that ended otherwise.
func (w *laneTimer) stop() {
	if w.t != nil {
		w.t.Stop()
	}
}

// storeJob hands a job not yet attempted to the persister, due now. When
// inMemory, the job was counted in memory by the ledger and now leaves it.
func (d *Dispatcher) storeJob(ctx context.Context, r *runner, j *job, inMemory bool) error {
	it := item{d: newDelivery(j, store.StatusPending, ""), tx: j.tx, fresh: true}
	if r.keys != nil {
		if inMemory {
			r.keys.divert(j.key)
		}
		it.keys = r.keys
	}
	return d.persist.add(ctx, it)
}

func newDelivery(j *job, status store.Status, lastError string) store.Delivery {
	now := time.Now()
	return store.Delivery{
		ID:            store.DeliveryID(j.ev.ID, j.ep.ID),
		EventID:       j.ev.ID,
		EventType:     j.ev.Type,
		EndpointID:    j.ep.ID,
		Key:           j.key,
		Tenant:        j.ev.Tenant,
		Body:          j.body,
		EventTime:     j.ev.Timestamp,
		CommitLSN:     uint64(j.ev.CommitLSN),
		Position:      j.ev.Position,
		Status:        status,
		NextAttemptAt: now,
		LastError:     lastError,
		CreatedAt:     now,
		UpdatedAt:     now,
	}
}

// signal wakes the retry loop.
func (d *Dispatcher) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Shutdown stops accepting batches and drains within ctx's deadline.
// Deliveries in memory may be sent until a quarter of the time is left
// (at most 5s before the deadline); then whatever is left is handed to the
// store. Store writes not committed by the deadline are abandoned: their
// batches stay unsettled, so the watermark never covers them and they are
// read again after a restart. Call it after the source stopped calling
// Dispatch.
func (d *Dispatcher) Shutdown(ctx context.Context) error {
	d.closing.Store(true)
	d.mu.Lock()
	for _, r := range d.runners {
		r.close()
	}
	d.mu.Unlock()

	sendBy := time.Now().Add(time.Hour)
	if deadline, ok := ctx.Deadline(); ok {
		sendBy = deadline.Add(-min(time.Until(deadline)/4, 5*time.Second))
	}
	sendTimer := time.AfterFunc(time.Until(sendBy), func() {
		d.log.Warn().Msg("drain deadline near: storing the deliveries still in memory")
		d.cancelSend()
	})
	defer sendTimer.Stop()
	storeTimer := context.AfterFunc(ctx, func() { d.cancelSend(); d.cancelStore() })
	defer storeTimer()

	d.lanes.Wait()
	d.loops.Stop()
	err := d.persist.stop()
	d.loops.Wait()
	d.failures.flush()
	d.cancelSend()
	d.cancelStore()
	if err != nil {
		return fmt.Errorf("storing the last deliveries: %w", err)
	}
	return nil
}
