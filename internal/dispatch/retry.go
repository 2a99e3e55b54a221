package dispatch

import (
	"context"
	"sync"
	"time"

	"github.com/walhook/walhook/internal/store"
)

// retryLoop claims due deliveries from the store and attempts them. Every
// walhook instance runs it; FOR UPDATE SKIP LOCKED and a lease keep two
// instances from attempting the same delivery at once.
func (d *Dispatcher) retryLoop(ctx context.Context) {
	comp := d.startCompleter()
	defer comp.stop() // after the workers: deferred calls run last first
	sem := make(chan struct{}, d.opts.RetryWorkers)
	var wg sync.WaitGroup
	defer wg.Wait()
	// start runs the attempt of g (one delivery, or a batch and its mates)
	// on a worker; r's retry slot (when r is set) and a worker slot are
	// taken.
	start := func(g []store.Delivery, r *runner, since uint64) {
		sem <- struct{}{} // never blocks: at most free were taken
		wg.Add(1)
		// The endpoint's retry slot is free again once its attempt
		// ended (writing the outcome is the store's load, not the
		// endpoint's); the worker's once the outcome is handed to
		// the completer.
		attempted := func() {}
		if r != nil {
			attempted = sync.OnceFunc(func() {
				r.retrying.Add(-1)
				r.retried.Add(1)
				d.signal()
			})
		}
		go func() {
			defer wg.Done()
			defer d.signal() // a slot is free: claim more at once
			defer func() { <-sem }()
			defer attempted()
			if g[0].BatchID != "" {
				d.retryBatch(ctx, comp, r, g, attempted)
				return
			}
			d.retry(ctx, comp, r, g[0], since, attempted)
		}()
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	var lastClaim time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-d.wake:
		}
		next := d.opts.RetryPoll
		for ctx.Err() == nil {
			busy := len(sem)
			free := cap(sem) - busy
			if free == 0 {
				break
			}
			// Deliveries claimed with their write first: they are this
			// instance's already (preclaim.go).
			for _, h := range d.takeHeld(free) {
				start([]store.Delivery{h.d}, h.r, 0)
				free--
			}
			if free == 0 {
				break
			}
			busy = len(sem)
			exclude, room := d.claimRoom()
			if room >= 0 {
				// Claim no more than the endpoints can take: a claimed
				// delivery beyond an endpoint's retry cap is handed back,
				// a write for nothing (with one endpoint at a limit of 8
				// and 32 workers, 24 of every claim).
				free = min(free, room)
			}
			if free == 0 {
				break
			}
			if wait := claimGather - time.Since(lastClaim); busy > 0 && free < busy && wait > 0 {
				// Retries are running and each that ends frees a slot:
				// wait a moment for more, so that a claim takes many
				// rows rather than one per finished retry.
				next = min(next, wait)
				break
			}
			since := d.commitCounts() // before the claim's snapshot: see retry
			cctx, cancel := context.WithTimeout(ctx, storeTimeout)
			ds, err := d.store.ClaimDue(cctx, free, d.lease(), exclude)
			cancel()
			lastClaim = time.Now()
			if err != nil {
				if ctx.Err() == nil {
					d.log.Warn().Err(err).Msg("claiming due retries")
				}
				break
			}
			for _, g := range d.groupBatches(ctx, ds) { // a failed batch goes together (retrybatch.go)
				dl := g[0]
				var r *runner
				if ep := d.Endpoint(dl.EndpointID); ep != nil {
					r = d.runnerFor(ep)
					if !r.reserveRetry() {
						// The claim raced past the endpoint's retry cap (it
						// was not saturated when asked): hand the delivery
						// back rather than park a worker behind the cap.
						for _, dl := range g {
							d.release(ctx, dl)
						}
						continue
					}
				}
				start(g, r, since[dl.EndpointID])
			}
			if len(ds) < free {
				break
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// claimGather is how long the retry loop may wait, while retries run, for
// enough of them to end that a claim takes many rows.
const claimGather = 5 * time.Millisecond

// lease is how long a claimed delivery stays invisible to other claims:
// long enough for the slowest endpoint's attempt, and a wait at its gate.
func (d *Dispatcher) lease() time.Duration {
	var longest time.Duration
	for _, ep := range d.table.Load().list {
		longest = max(longest, ep.Timeout)
	}
	return 2*longest + 30*time.Second
}

// reserveRetry counts one more retry of r in flight unless it already has
// as many as its gate's current concurrency limit.
func (r *runner) reserveRetry() bool {
	limit := int64(r.gate.Limit())
	for {
		n := r.retrying.Load()
		if n >= limit {
			return false
		}
		if r.retrying.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release hands a claimed delivery back, due now, without attempting it.
func (d *Dispatcher) release(ctx context.Context, dl store.Delivery) {
	d.postpone(ctx, dl, time.Now())
}

// postpone moves a claimed delivery's next attempt to until, trying for a
// while: a delivery left claimed waits for its lease, and a keyed one holds
// back its key as long.
func (d *Dispatcher) postpone(ctx context.Context, dl store.Delivery, until time.Time) {
	err := retryStore(ctx, completeWithin, func(ctx context.Context) error { return d.store.Postpone(ctx, dl.ID, until) }, nil)
	if err != nil && ctx.Err() == nil {
		d.log.Warn().Err(err).Str("delivery_id", dl.ID).Msg("releasing a claimed delivery; it is due again when its lease ends")
	}
}

// completeWithin is how long recording a retry's outcome is tried before
// the delivery is left to its lease (which is longer).
const completeWithin = 20 * time.Second

// claimRoom returns the endpoints a claim leaves out (at their retry cap,
// or paused) and how many retries the others can start now: the sum of
// their free retry slots, or -1 when an endpoint of the routing table has
// no runner yet (its room is not known, so claims are not capped).
func (d *Dispatcher) claimRoom() (exclude []string, room int) {
	list := d.table.Load().list
	d.mu.Lock()
	runners := make([]*runner, 0, len(d.runners))
	for _, r := range d.runners {
		runners = append(runners, r)
	}
	for _, ep := range list {
		if _, ok := d.runners[ep.ID]; !ok {
			room = -1
		}
	}
	if len(d.runners) == 0 {
		room = -1
	}
	d.mu.Unlock()
	now := time.Now()
	for _, r := range runners { // the gate's lock is not taken under d.mu
		// What r holds claimed with writes goes first (takeHeld).
		free := int64(r.gate.Limit()) - r.retrying.Load() - int64(r.heldCount())
		if free <= 0 || r.gate.PausedUntil().After(now) {
			exclude = append(exclude, r.id)
		} else if room >= 0 {
			room += int(free)
		}
	}
	return exclude, room
}

// commitCounts reads each ordered endpoint's ledger.commitCount.
func (d *Dispatcher) commitCounts() map[string]uint64 {
	runners := d.orderedRunners()
	out := make(map[string]uint64, len(runners))
	for _, r := range runners { // the ledger's lock is not taken under d.mu
		out[r.id] = r.keys.commitCount()
	}
	return out
}

// retry makes one attempt of a stored delivery and records the outcome.
// r is the endpoint's runner, nil when the endpoint no longer exists.
// since is r's ledger.commitCount read before the claim that returned dl.
// attempted is called once the endpoint no longer serves the attempt.
func (d *Dispatcher) retry(ctx context.Context, comp *completer, r *runner, dl store.Delivery, since uint64, attempted func()) {
	bg := d.storeCtx
	ep := d.Endpoint(dl.EndpointID)
	now := time.Now()
	if ep == nil || r == nil {
		d.complete(bg, comp, nil, dl, store.Attempt{AttemptedAt: now, Error: "endpoint no longer exists; not sent"}, store.Outcome{Status: store.StatusFailed})
		return
	}
	if r.keys != nil && dl.Key != "" {
		if r.keys.busy(dl.Key) {
			// An earlier delivery of this key is in memory or on its way
			// to the store: wait for it.
			d.postpone(bg, dl, now.Add(time.Second))
			return
		}
		// Nothing of the key is in memory or on its way now, but a write
		// of it may have committed after the claim's snapshot: an earlier
		// delivery that went from memory to the store meanwhile, which
		// the claim could not see. Then the store says who is first.
		if r.keys.committedSince(dl.Key, since) {
			first, err := d.store.FirstOfKey(bg, dl)
			if err != nil || !first {
				d.release(bg, dl)
				return
			}
		}
	}
	if !ep.Active || d.health.disabledFresh(bg, ep.ID) {
		d.complete(bg, comp, ep, dl, store.Attempt{AttemptedAt: now, Error: "endpoint disabled; not sent"}, store.Outcome{Status: store.StatusFailed})
		return
	}
	if until := r.gate.PausedUntil(); until.After(now) {
		// A Retry-After paused the whole endpoint: hand the delivery back,
		// due when the pause ends, rather than hold a retry worker.
		d.postpone(bg, dl, until)
		return
	}
	n := dl.Attempts + 1
	m := message{deliveryID: dl.ID, id: dl.EventID, typ: dl.EventType, body: dl.Body, tenant: dl.Tenant, number: n}
	if ep.Batching != nil {
		m.asBatchOfOne(now) // a batch endpoint gets batch bodies on retries too (batch.go)
	}
	a, res, err := d.attempt(ctx, r.gate, ep, m)
	attempted()
	if err != nil {
		return // our shutdown: the lease expires and the delivery is due again
	}
	out, disable := retryOutcome(ep, n, res, a)
	d.complete(bg, comp, ep, dl, a, out, func(h store.Health) {
		if disable == "" && !res.OK() && failingTooLong(ep, h, time.Now()) {
			disable = "failing continuously for " + ep.DisableAfter.String()
		}
		if disable != "" {
			d.disable(bg, ep, disable)
		}
	})
}

// complete hands an attempt's outcome to the completer's next group write,
// which tries for a while (a completion may be repeated); if the store
// cannot be reached by then, the lease runs out and the delivery is
// attempted again. then, when set, runs after a successful write with the
// endpoint's new health (in the completer: it must not wait long).
func (d *Dispatcher) complete(ctx context.Context, comp *completer, ep *Endpoint, dl store.Delivery, a store.Attempt, out store.Outcome, then ...func(store.Health)) {
	a.DeliveryID, a.EventID, a.EventType, a.EndpointID = dl.ID, dl.EventID, dl.EventType, dl.EndpointID
	if a.Number == 0 {
		a.Number = dl.Attempts + 1
	}
	// A first attempt that succeeded (a spilled or shared delivery) is
	// logged only with log_attempts = "all", as one from memory would be.
	// A recovered delivery starts its numbering again but was attempted
	// before (its last answer is kept): its success is logged.
	fresh := dl.LastStatus == 0 && dl.LastError == ""
	unlogged := out.Status == store.StatusDelivered && a.Number == 1 && fresh && !d.opts.LogAttempts
	comp.complete(ctx, store.Completion{Delivery: dl, Attempt: a, Outcome: out, Unlogged: unlogged}, func(h store.Health, err error) {
		if err != nil {
			d.log.Error().Err(err).Str("delivery_id", dl.ID).Msg("recording a retry's outcome; it will be attempted again")
			return
		}
		d.health.set(h)
		// A first attempt (a spilled or shared delivery) that succeeded was
		// counted delivered by Observer.Attempted already.
		if out.Status != store.StatusDelivered || a.Number != 1 {
			outcome := map[store.Status]string{store.StatusDelivered: "delivered", store.StatusPending: "retrying", store.StatusFailed: "failed"}[out.Status]
			d.obs.Outcome(dl.EndpointID, outcome)
		}
		if ep != nil && out.Status == store.StatusFailed {
			d.log.Warn().Str("endpoint", ep.Name).Str("delivery_id", dl.ID).Str("event_id", dl.EventID).
				Int("attempts", a.Number).Str("error", a.Error).Msg("delivery failed for good; replay it with retry or recover")
		}
		for _, f := range then {
			f(h)
		}
	})
}
