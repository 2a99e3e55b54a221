package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/event"
	"github.com/walhook/walhook/internal/rules"
	"github.com/walhook/walhook/internal/settle"
	"github.com/walhook/walhook/internal/store"
)

var _ cdc.Sink = (*Dispatcher)(nil)

// Options configure a Dispatcher.
type Options struct {
	Store *store.Store
	Rules *rules.Rules
	// Evaluate, when set, replaces Rules.Evaluate in Apply: the relay uses
	// it to read inserts into an outbox table as ready-made events.
	Evaluate func(c *cdc.Change, out []event.Event) ([]event.Event, []event.Failure)
	// Ack receives each new settled watermark (cdc.Reader.Ack).
	Ack func(cdc.LSN)
	// MaxInFlight caps deliveries held in memory; default 10000.
	MaxInFlight int
	// LogAttempts writes successful first attempts to the attempts log.
	LogAttempts bool
	// RetryWorkers bounds retries in flight across endpoints; default 16.
	RetryWorkers int
	// RetryPoll is how often the store is asked for due retries when idle;
	// default 1s.
	RetryPoll time.Duration
	Observer  Observer
	Logger    zerolog.Logger
}

// Dispatcher routes the events of captured transactions to endpoints and
// delivers them. It implements cdc.Sink.
type Dispatcher struct {
	opts    Options
	log     zerolog.Logger
	store   *store.Store
	rules   *rules.Rules
	obs     Observer
	tracker *settle.Tracker

	table    atomic.Pointer[table]
	inflight chan struct{} // semaphore over deliveries held in memory

	mu      sync.Mutex
	runners map[string]*runner

	health  *healthCache
	persist *persister
	wake    chan struct{}

	sendCtx    context.Context // canceled when a drain's deadline passes
	cancelSend context.CancelFunc
	bgCancel   context.CancelFunc
	bg         sync.WaitGroup
	lanes      sync.WaitGroup
	closing    atomic.Bool

	events []event.Event // scratch for Apply, which is never concurrent
}

// New returns a Dispatcher; call Start before Apply.
func New(opts Options) *Dispatcher {
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 10000
	}
	if opts.RetryWorkers <= 0 {
		opts.RetryWorkers = 16
	}
	if opts.RetryPoll <= 0 {
		opts.RetryPoll = time.Second
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	d := &Dispatcher{
		opts:     opts,
		log:      opts.Logger.With().Str("component", "dispatch").Logger(),
		store:    opts.Store,
		rules:    opts.Rules,
		obs:      opts.Observer,
		inflight: make(chan struct{}, opts.MaxInFlight),
		runners:  map[string]*runner{},
		wake:     make(chan struct{}, 1),
	}
	d.tracker = settle.NewTracker(func(l cdc.LSN) {
		if opts.Ack != nil {
			opts.Ack(l)
		}
	})
	d.table.Store(&table{byID: map[string]*Endpoint{}})
	d.health = newHealthCache(opts.Store, d.log)
	d.persist = newPersister(d)
	return d
}

// Start starts the background work: the persister, retry workers, health
// refresh and the sweep that unblocks ordered keys.
func (d *Dispatcher) Start(ctx context.Context) error {
	if err := d.health.refresh(ctx); err != nil {
		return err
	}
	d.sendCtx, d.cancelSend = context.WithCancel(context.WithoutCancel(ctx))
	bg, cancel := context.WithCancel(ctx)
	d.bgCancel = cancel
	d.persist.start()
	d.bg.Add(4)
	go func() { defer d.bg.Done(); d.paceLoop(bg) }()
	go func() { defer d.bg.Done(); d.retryLoop(bg) }()
	go func() { defer d.bg.Done(); d.health.loop(bg) }()
	go func() { defer d.bg.Done(); d.sweepLoop(bg) }()
	return nil
}

// Settled is the watermark: every transaction up to it is settled.
func (d *Dispatcher) Settled() cdc.LSN { return d.tracker.Settled() }

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
		ep.fill()
		t.list = append(t.list, ep)
		t.byID[ep.ID] = ep
		if _, known := old.byID[ep.ID]; !known {
			if err := d.loadBlocked(ctx, ep); err != nil {
				return fmt.Errorf("loading the pending keys of endpoint %s: %w", ep.Name, err)
			}
		}
	}
	d.table.Store(t)
	return nil
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
}

// Apply turns one committed transaction into deliveries and routes them.
// It never waits on an endpoint: deliveries that cannot be held in memory
// are handed to the store.
func (d *Dispatcher) Apply(ctx context.Context, tx cdc.Transaction) error {
	if d.closing.Load() {
		return errors.New("dispatcher is shutting down")
	}
	d.obs.ChangesRead(len(tx.Changes))
	events := d.events[:0]
	var failures []event.Failure
	evaluate := d.rules.Evaluate
	if d.opts.Evaluate != nil {
		evaluate = d.opts.Evaluate
	}
	for i := range tx.Changes {
		var fs []event.Failure
		events, fs = evaluate(&tx.Changes[i], events)
		failures = append(failures, fs...)
	}
	d.events = events[:0]

	return d.dispatch(ctx, events, failures, tx.XID, func(n int) *settle.Tx { return d.tracker.Begin(tx.EndLSN, n) })
}

// ApplyEvents routes ready-made events (from an outbox table, say) and
// records failures; settled is called once every delivery of them is
// settled. Unlike Apply it does not move the WAL watermark.
func (d *Dispatcher) ApplyEvents(ctx context.Context, events []event.Event, failures []event.Failure, settled func()) error {
	if d.closing.Load() {
		return errors.New("dispatcher is shutting down")
	}
	return d.dispatch(ctx, events, failures, 0, func(n int) *settle.Tx { return settle.NewTx(n, settled) })
}

// dispatch routes events to the endpoints that want them; begin registers
// the batch with its number of outstanding deliveries.
func (d *Dispatcher) dispatch(ctx context.Context, events []event.Event, failures []event.Failure, xid uint32, begin func(n int) *settle.Tx) error {
	tbl := d.table.Load()
	var jobs []*job
	for i := range events {
		ev := &events[i]
		ev2 := *ev // events may be scratch space: jobs keep their own copy
		d.obs.EventEmitted(ev.Type)
		var own *event.Event
		for _, ep := range tbl.list {
			if !ep.Wants(ev) {
				continue
			}
			if own == nil {
				own = &ev2
			}
			body, err := renderBody(ep, own)
			if err != nil {
				failures = append(failures, event.Failure{
					Rule: "endpoint " + ep.Name + " body", Table: own.Table, CommitLSN: own.CommitLSN,
					EndLSN: own.EndLSN, Position: own.Position, XID: xid,
					Error: fmt.Sprintf("rendering the body of %s for endpoint %s: %v", own.Type, ep.Name, err),
					Row:   own.Data,
				})
				continue
			}
			j := &job{ep: ep, ev: own, body: body}
			if ep.Ordered {
				j.key = own.Key
			}
			jobs = append(jobs, j)
		}
	}

	n := len(jobs)
	if len(failures) > 0 {
		n++
	}
	stx := begin(n)
	if len(failures) > 0 {
		for _, f := range failures {
			d.log.Warn().Str("rule", f.Rule).Str("table", f.Table).Stringer("lsn", f.CommitLSN).
				Int("position", f.Position).Str("error", f.Error).Msg("rule failed on a change; recorded as a failed evaluation")
		}
		d.obs.EvaluationsFailed(len(failures))
		if err := d.persist.addFailures(ctx, failures, stx); err != nil {
			return err
		}
	}
	for _, j := range jobs {
		j.tx = stx
		if err := d.route(ctx, j); err != nil {
			return err
		}
	}
	return nil
}

// route hands a job to its endpoint's lane, or to the store when the
// endpoint is disabled, its key is blocked, or its lane holds more than the
// endpoint can deliver soon (see pace.go). When memory as a whole is full
// it waits: only fast endpoints can fill it, since pacing keeps slow ones
// short, and making the reader wait for them costs less than storing
// deliveries that are about to succeed.
func (d *Dispatcher) route(ctx context.Context, j *job) error {
	r := d.runnerFor(j.ep)
	if d.health.disabled(j.ep.ID) {
		return d.persist.add(ctx, item{d: newDelivery(j, store.StatusFailed, "endpoint disabled"), tx: j.tx})
	}
	select {
	case d.inflight <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if r.ordered {
		// Taken after the memory token, never while waiting for one:
		// workers need r.mu to finish the jobs that free tokens.
		r.mu.Lock()
		defer r.mu.Unlock()
		if _, blocked := r.blocked[j.key]; blocked {
			<-d.inflight
			return d.persistBehindLocked(ctx, r, j)
		}
	}
	q := r.queueFor(j.key)
	if allowed := r.allowed.Load(); allowed < r.maxQueue && int64(len(q)) >= allowed {
		// The endpoint is slower than its queue: store rather than wait.
		<-d.inflight
		return d.overflow(ctx, r, j)
	}
	if r.ordered {
		r.inLane[j.key]++
	}
	select {
	case q <- j:
		return nil
	default:
	}
	// The lane is full but the endpoint keeps up with it: wait a little
	// for room. (Holding r.mu here is safe: workers take jobs without it.)
	t := time.NewTimer(laneWait)
	defer t.Stop()
	var err error
	select {
	case q <- j:
		return nil
	case <-t.C:
	case <-ctx.Done():
		err = ctx.Err()
	}
	<-d.inflight
	if r.ordered {
		r.leaveLaneLocked(j.key)
	}
	if err != nil {
		return err
	}
	return d.overflow(ctx, r, j)
}

// laneWait bounds how long routing waits for room in a full lane.
const laneWait = 100 * time.Millisecond

// overflow sends a job that memory cannot hold to the store, due now.
// For ordered endpoints the caller holds r.mu.
func (d *Dispatcher) overflow(ctx context.Context, r *runner, j *job) error {
	d.obs.Overflowed(j.ep.ID)
	if r.ordered {
		return d.persistBehindLocked(ctx, r, j)
	}
	return d.persist.add(ctx, item{d: newDelivery(j, store.StatusPending, ""), tx: j.tx, fresh: true})
}

// persistBehindLocked stores a job of an ordered endpoint behind the
// deliveries of its key already in the store, and blocks the key.
func (d *Dispatcher) persistBehindLocked(ctx context.Context, r *runner, j *job) error {
	r.block(j.key)
	return d.persist.addOrdered(ctx, r, item{d: newDelivery(j, store.StatusPending, ""), tx: j.tx, fresh: true})
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

func renderBody(ep *Endpoint, ev *event.Event) ([]byte, error) {
	if ep.Body != nil {
		return ep.Body(ev)
	}
	return rules.DefaultBody(ev), nil
}

// signal wakes the retry loop.
func (d *Dispatcher) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Shutdown stops accepting transactions and drains: deliveries in memory
// get until ctx's deadline to be accepted; whatever is left then is written
// to the store, so that the watermark covers everything Apply was given.
func (d *Dispatcher) Shutdown(ctx context.Context) error {
	d.closing.Store(true)
	d.mu.Lock()
	for _, r := range d.runners {
		r.close()
	}
	d.mu.Unlock()

	lanesDone := make(chan struct{})
	go func() { d.lanes.Wait(); close(lanesDone) }()
	select {
	case <-lanesDone:
	case <-ctx.Done():
		d.log.Warn().Msg("drain deadline passed: storing the deliveries still in memory")
		d.cancelSend() // lane workers now store instead of sending
		<-lanesDone
	}
	d.bgCancel()
	d.bg.Wait()
	d.cancelSend()
	// The store writes that settle the last deliveries must not be cut
	// short by the caller's deadline: they are what lets the slot advance.
	err := d.persist.stop(context.WithoutCancel(ctx))
	if err != nil {
		return fmt.Errorf("storing the last deliveries: %w", err)
	}
	return nil
}
