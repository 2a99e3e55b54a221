package dispatch

import (
	"context"
	"math"
	"time"

	"github.com/walhook/walhook/internal/store"
)

// Pacing keeps in memory only what an endpoint can deliver soon. Every
// paceInterval each endpoint's throughput is measured; a lane that has a
// backlog may hold about maxQueueDelay of it, and jobs beyond that go to the
// store (oldest first), so that a hanging endpoint holds only a few jobs —
// and so the slot — while a fast one draining a backlog keeps its lane full
// (routing waits for room) and never pays for the store.
const (
	paceInterval  = 250 * time.Millisecond
	maxQueueDelay = 5 * time.Second
	// paceWarmup is how many intervals a backlog must last before the
	// endpoint's speed is judged.
	paceWarmup = 4
)

// paceAll paces every endpoint's queue; it runs every paceInterval.
func (d *Dispatcher) paceAll(context.Context) {
	d.mu.Lock()
	runners := make([]*runner, 0, len(d.runners))
	for _, r := range d.runners {
		runners = append(runners, r)
	}
	d.mu.Unlock()
	for _, r := range runners {
		d.pace(r)
	}
}

// pace updates r's allowed queue length and moves the excess to the store.
func (d *Dispatcher) pace(r *runner) {
	r.measureRetries(paceInterval)
	done := r.finished.Load()
	delta := done - r.lastDone
	r.lastDone = done
	perSec := float64(delta) / paceInterval.Seconds()
	smoothed := 0.25*perSec + 0.75*math.Float64frombits(r.throughput.Load())
	r.throughput.Store(math.Float64bits(smoothed))

	backlog := int64(0)
	for _, q := range r.queues {
		backlog += int64(len(q))
	}
	lanes := int64(len(r.queues))
	if backlog == 0 {
		// Not limited by its own speed: no reason to shrink.
		r.backlogged, r.rate = 0, 0
		r.allowed.Store(max(r.allowed.Load(), r.startQueue))
		return
	}
	if r.backlogged == 0 {
		r.rate = perSec
	} else {
		r.rate = 0.5*r.rate + 0.5*perSec
	}
	r.backlogged++
	if r.backlogged < paceWarmup {
		// Too early to judge: the first requests pay for connecting.
		return
	}
	allowed := int64(r.rate*maxQueueDelay.Seconds()) / lanes
	allowed = min(max(allowed, r.minQueue/lanes, 1), r.maxQueue)
	r.allowed.Store(allowed)

	for _, q := range r.queues {
		for int64(len(q)) > allowed {
			j := r.takeForStore(q)
			if j == nil {
				break
			}
			d.spill(r, j)
		}
	}
}

// takeForStore takes the job at the head of q, without waiting; nil when
// there is none. On an ordered endpoint the ledger counts it as on its way
// to the store in the same step: the lane's worker may take the job behind
// it at once, and must then find its key blocked.
func (r *runner) takeForStore(q chan *job) *job {
	if r.keys != nil {
		return r.keys.takeDiverted(q)
	}
	select {
	case j := <-q:
		return j
	default:
		return nil
	}
}

// spill moves a job taken by takeForStore to the store, due now.
func (d *Dispatcher) spill(r *runner, j *job) {
	<-d.inflight
	d.obs.Overflowed(j.ep.ID)
	d.persist.hand(d.storeCtx, item{d: newDelivery(j, store.StatusPending, ""), tx: j.tx, fresh: true, keys: r.keys})
}
