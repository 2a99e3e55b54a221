package dispatch

import "github.com/walhook/walhook/internal/limit"

// With Options.ShareAll every instance sends an endpoint's deliveries, so
// each keeps to its share of the endpoint's concurrency and rate limit:
// the configured value divided by the number of instances sending
// (SetSenders), so that together they stay within it rather than
// multiply it (docs/scaling.md). Below that ceiling, what one instance
// learns (a Retry-After pause, an overload cut, a rate from 429s) the
// others follow (peers.go).

// SetSenders sets how many instances send this config's deliveries (this
// one included; membership counts the alive ones at each heartbeat) and
// applies each endpoint's share of its limits. Without ShareAll only the
// slot holder makes first attempts, and the limits stay whole.
func (d *Dispatcher) SetSenders(n int) {
	if !d.opts.ShareAll || n < 1 {
		n = 1
	}
	d.senders.Store(int64(n))
	for _, ep := range d.table.Load().list {
		d.mu.Lock()
		r := d.runners[ep.ID]
		d.mu.Unlock()
		if r != nil { // the gate's lock is not taken under d.mu
			r.gate.SetCeiling(d.ceiling(ep))
			r.gate.SetRate(d.rate(ep))
		}
	}
}

// sharers is the number of instances an endpoint's limits are shared by.
func (d *Dispatcher) sharers() int { return max(int(d.senders.Load()), 1) }

// ceiling is this instance's share of ep's concurrency, at least 1.
func (d *Dispatcher) ceiling(ep *Endpoint) int {
	return max(ep.Concurrency/d.sharers(), 1)
}

// rate is this instance's share of ep's rate limit.
func (d *Dispatcher) rate(ep *Endpoint) limit.Rate { return ep.RateLimit.Share(d.sharers()) }
