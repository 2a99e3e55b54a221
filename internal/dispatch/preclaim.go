package dispatch

import (
	"math"
	"sync"
	"time"

	"github.com/walhook/walhook/internal/store"
)

// Claims made with the write (Options.ShareAll). A shared delivery costs
// the state Postgres three row versions when it is stored due, claimed and
// completed; the claim alone was as dear as the other two together. So the
// persister stores what this instance's retry workers can start soon
// already claimed by it (store.Delivery.Claim), and hands it to them after
// the commit; the rest is stored due, for any instance to claim. What is
// claimed with the write is still stored before its batch settles, and a
// lease ends as any other: an instance that dies holding some leaves them
// to its peers (docs/architecture.md, "Shared delivery").
const (
	// preclaimWindow is how much of an endpoint's measured retry rate may
	// be claimed with a write: a fast endpoint takes thousands a second
	// this way, a slow one a few, and the rest stays for other instances.
	preclaimWindow = 200 * time.Millisecond
	// preclaimFloor is how many times its concurrency limit an endpoint
	// may hold claimed with writes before its rate is known.
	preclaimFloor = 2
)

// held is an endpoint's deliveries claimed with a write, waiting for a
// retry worker. Its mutex is a leaf lock.
type held struct {
	mu       sync.Mutex
	q        []store.Delivery
	reserved int // marked for a write that has not committed yet
}

// preclaimRoom is how many more deliveries r may claim with a write now:
// what its retry workers send in preclaimWindow at their measured rate
// (alone: in maxQueueDelay, as much as a lane may hold), at least
// preclaimFloor times its concurrency limit, at most half of max_in_flight
// (a lane's cap), less what it holds and runs.
func (r *runner) preclaimRoom(alone bool) int {
	window := preclaimWindow
	if alone {
		// No peer would claim what is stored due: all of it would be
		// claimed again, by this instance.
		window = maxQueueDelay
	}
	budget := min(max(preclaimFloor*r.gate.Limit(), int(r.retryPerSecond()*window.Seconds())), int(r.maxQueue))
	r.held.mu.Lock()
	defer r.held.mu.Unlock()
	return budget - len(r.held.q) - r.held.reserved - int(r.retrying.Load())
}

// retryPerSecond is r's measured rate of retry attempts.
func (r *runner) retryPerSecond() float64 { return math.Float64frombits(r.retryRate.Load()) }

// heldWait bounds how long a write waits for room to claim its deliveries
// when this instance sends alone.
const heldWait = 50 * time.Millisecond

// awaitHeldRoom waits, up to heldWait, until the endpoints of batch have
// room to claim their shared deliveries with the write, when this instance
// sends alone: what it stores due it claims again later, a claim for
// nothing (in a 100,000-row drain, 62% of rows). It waits only for an
// endpoint whose measured rate frees that room within heldWait, so a slow
// or dead endpoint never holds up the writes of the others.
func (d *Dispatcher) awaitHeldRoom(batch []item) {
	deadline := time.NewTimer(heldWait)
	defer deadline.Stop()
	for {
		need := map[*runner]int{}
		now := time.Now()
		for i := range batch {
			if !batch[i].shared {
				continue
			}
			if ep := d.Endpoint(batch[i].d.EndpointID); ep != nil {
				if r := d.runnerFor(ep); preclaimable(ep, r, now) {
					need[r]++
				}
			}
		}
		wait := false
		for r, n := range need {
			short := min(n, int(r.maxQueue)/2) - r.preclaimRoom(true)
			if short > 0 && float64(short) <= r.retryPerSecond()*heldWait.Seconds() {
				wait = true
			}
		}
		if !wait {
			return
		}
		select {
		case <-d.heldTaken:
		case <-deadline.C:
			return
		}
	}
}

// preclaimable says whether ep's shared deliveries may be claimed with
// their write: one at a time, in any order, with no pause in force. Ordered
// endpoints keep the store's head-of-key claim, and batch endpoints the
// claim of batch mates.
func preclaimable(ep *Endpoint, r *runner, now time.Time) bool {
	return ep != nil && ep.Active && !ep.Ordered && ep.Batching == nil && !r.gate.PausedUntil().After(now)
}

// preclaim marks the shared deliveries of batch that this instance will
// send itself (Claim, leased until now+lease) and reserves them in their
// runners' held queues. It returns the runners with reservations; hold or
// unreserve settles them.
func (d *Dispatcher) preclaim(batch []item) map[string]*runner {
	if !d.opts.ShareAll || d.closing.Load() {
		// Closing, the retry loop is about to stop: what it would not send
		// is better stored due for the peers than leased until handed back.
		return nil
	}
	alone := d.sharers() == 1
	if alone {
		d.awaitHeldRoom(batch)
	}
	now := time.Now()
	until := now.Add(d.lease())
	runners := map[string]*runner{}
	room, reserved := map[string]int{}, map[string]int{}
	for i := range batch {
		it := &batch[i]
		if !it.shared {
			continue
		}
		ep := d.Endpoint(it.d.EndpointID)
		if ep == nil {
			continue
		}
		r, seen := runners[ep.ID]
		if !seen {
			r = d.runnerFor(ep)
			runners[ep.ID] = r
			room[ep.ID] = 0
			if preclaimable(ep, r, now) {
				room[ep.ID] = r.preclaimRoom(alone)
			}
		}
		if room[ep.ID] <= 0 {
			continue
		}
		room[ep.ID]--
		it.d.Claim, it.d.NextAttemptAt = true, until
		reserved[ep.ID]++
	}
	for id, r := range runners {
		if reserved[id] == 0 {
			delete(runners, id)
			continue
		}
		r.held.mu.Lock()
		r.held.reserved += reserved[id]
		r.held.mu.Unlock()
	}
	return runners
}

// hold queues the deliveries a write claimed for the retry workers and
// ends every reservation of batch; claimed are those WriteBatch inserted.
func (d *Dispatcher) hold(batch []item, runners map[string]*runner, claimed []store.Delivery) {
	if len(runners) == 0 {
		return
	}
	d.unreserve(batch, runners)
	for _, dl := range claimed {
		if r := runners[dl.EndpointID]; r != nil {
			r.held.mu.Lock()
			r.held.q = append(r.held.q, dl)
			r.held.mu.Unlock()
		}
	}
	d.signal()
}

// unreserve ends the reservations preclaim made for batch (a write given
// up at shutdown leaves its claims to their leases).
func (d *Dispatcher) unreserve(batch []item, runners map[string]*runner) {
	for _, it := range batch {
		if r := runners[it.d.EndpointID]; r != nil && it.d.Claim {
			r.held.mu.Lock()
			r.held.reserved--
			r.held.mu.Unlock()
		}
	}
}

// takeHeld takes up to n held deliveries whose endpoints have a free retry
// slot (reserveRetry), a few of each endpoint in turn.
func (d *Dispatcher) takeHeld(n int) []heldDelivery {
	if n <= 0 {
		return nil
	}
	d.mu.Lock()
	runners := make([]*runner, 0, len(d.runners))
	for _, r := range d.runners {
		runners = append(runners, r)
	}
	d.mu.Unlock()
	var out []heldDelivery
	for more := true; more && len(out) < n; {
		more = false
		for _, r := range runners {
			if len(out) == n {
				break
			}
			if r.heldCount() == 0 || !r.reserveRetry() { // the gate's lock is not taken under held.mu
				continue
			}
			r.held.mu.Lock()
			if len(r.held.q) == 0 { // only this loop takes; kept for safety
				r.held.mu.Unlock()
				r.retrying.Add(-1)
				continue
			}
			out = append(out, heldDelivery{r: r, d: r.held.q[0]})
			select { // a write may wait for this room (awaitHeldRoom)
			case d.heldTaken <- struct{}{}:
			default:
			}
			r.held.q[0] = store.Delivery{}
			r.held.q = r.held.q[1:]
			r.held.mu.Unlock()
			more = true
		}
	}
	return out
}

// heldDelivery is a delivery claimed with its write, taken for a worker;
// its endpoint's retry slot is reserved.
type heldDelivery struct {
	r *runner
	d store.Delivery
}

// heldCount is how many deliveries r holds claimed with writes, waiting.
func (r *runner) heldCount() int {
	r.held.mu.Lock()
	defer r.held.mu.Unlock()
	return len(r.held.q)
}

// measureRetries updates r's smoothed rate of retry attempts (pace loop).
func (r *runner) measureRetries(interval time.Duration) {
	n := r.retried.Load()
	perSec := float64(n-r.lastRetried) / interval.Seconds()
	r.lastRetried = n
	smoothed := 0.5*perSec + 0.5*math.Float64frombits(r.retryRate.Load())
	r.retryRate.Store(math.Float64bits(smoothed))
}
