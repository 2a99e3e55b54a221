package dispatch

import (
	"context"
	"sync"
	"time"

	"github.com/walhook/walhook/internal/limit"
	"github.com/walhook/walhook/internal/store"
)

// Limits across instances (docs/scaling.md, "Limits across the cluster").
// What an endpoint's gate learns from an attempt (limit.Signal) is written
// to the endpoint's health row by the publish loop: a Retry-After pause
// always (claims of every instance then leave the endpoint's deliveries
// alone until it ends), and with ShareAll among several senders also its
// concurrency limit after an overload cut and the rate it learned from
// 429s, scaled to the cluster. Every instance reads the row back with the
// health it already reads (each completion of a claimed delivery, the
// health refresh every 2 s), so following a peer costs no extra query, and
// its gate follows (limit.Gate.Follow). A pause is one write per pause,
// whatever the mode; nothing is written per attempt.

// limitsEvery is the least time between two publications of one
// endpoint's limits (a pause is published at once): under lasting
// overload the limit is cut once per round trip.
const limitsEvery = time.Second

// pauseSlack is how much later than the pause last published a new one
// must end to be published: the refusals of one burst, each moving the
// end of the pause by the time between them, are written once.
const pauseSlack = time.Second

// limitsTimeout bounds one publication; a publication that fails is
// logged and not retried (the next signal publishes again).
const limitsTimeout = 5 * time.Second

// publisher holds the signals not yet written, by endpoint id.
type publisher struct {
	wake chan struct{}

	mu      sync.Mutex
	pending map[string]signal
}

// signal is what is to be published of one endpoint: a pause until
// pausedUntil (zero: none) and the cluster's limits (zeros: none).
type signal struct {
	pausedUntil time.Time
	concurrency int
	rate        float64
}

func newPublisher() *publisher {
	return &publisher{wake: make(chan struct{}, 1), pending: map[string]signal{}}
}

// onSignal is the OnSignal of endpoint id's gate: it queues what the peers
// should follow for the publish loop.
func (d *Dispatcher) onSignal(id string, s limit.Signal) {
	var u signal
	if s.Pause > 0 {
		u.pausedUntil = time.Now().Add(s.Pause)
	}
	if n := d.sharers(); n > 1 && (s.Cut || s.Learned) {
		u.concurrency, u.rate = s.Limit*n, s.Rate*float64(n)
	}
	if u.pausedUntil.IsZero() && !u.limits() {
		return
	}
	p := d.publish
	p.mu.Lock()
	old := p.pending[id]
	if old.pausedUntil.After(u.pausedUntil) {
		u.pausedUntil = old.pausedUntil
	}
	if !u.limits() {
		u.concurrency, u.rate = old.concurrency, old.rate
	}
	p.pending[id] = u
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// limits reports whether s carries limits.
func (s signal) limits() bool { return s.concurrency > 0 || s.rate > 0 }

// publishLoop writes queued signals until ctx ends: pauses at once
// (unless one published ends within pauseSlack of it), limits at most once
// per limitsEvery per endpoint.
func (d *Dispatcher) publishLoop(ctx context.Context) {
	p := d.publish
	last := map[string]time.Time{}     // when each endpoint's limits were last written
	pausedTo := map[string]time.Time{} // the end of each endpoint's pause last written
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-timer.C:
		}
		now := time.Now()
		for id, at := range last {
			if now.Sub(at) >= limitsEvery {
				delete(last, id)
			}
		}
		for id, until := range pausedTo {
			if until.Before(now) {
				delete(pausedTo, id)
			}
		}
		due := map[string]signal{}
		var next time.Duration
		p.mu.Lock()
		for id, u := range p.pending {
			if wait := last[id].Add(limitsEvery).Sub(now); u.pausedUntil.IsZero() && wait > 0 {
				if next == 0 || wait < next {
					next = wait
				}
				continue
			}
			due[id] = u
			delete(p.pending, id)
		}
		p.mu.Unlock()
		for id, u := range due {
			if !u.pausedUntil.After(now) || u.pausedUntil.Before(pausedTo[id].Add(pauseSlack)) {
				u.pausedUntil = time.Time{} // over, or written already
			}
			if u.pausedUntil.IsZero() && !u.limits() {
				continue
			}
			if !u.pausedUntil.IsZero() {
				pausedTo[id] = u.pausedUntil
			}
			if u.limits() {
				last[id] = now
			}
			// A pause is written as what is left of it, from the
			// database's now.
			w := store.LimitsUpdate{Concurrency: u.concurrency, Rate: u.rate}
			if !u.pausedUntil.IsZero() {
				w.Pause = max(u.pausedUntil.Sub(time.Now()), time.Microsecond)
			}
			cctx, cancel := context.WithTimeout(ctx, limitsTimeout)
			err := d.store.PublishLimits(cctx, id, w)
			cancel()
			if err != nil && ctx.Err() == nil {
				d.log.Warn().Err(err).Str("endpoint_id", id).Msg("publishing an endpoint's pause and limits to the other instances")
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if next > 0 {
			timer.Reset(next)
		}
	}
}

// follow applies what the peers published of h's endpoint to its gate:
// always a pause, and with ShareAll the share of a peer's limits not
// followed yet (each publication once). An endpoint without a runner yet
// follows when its runner is made (runnerFor).
func (d *Dispatcher) follow(h store.Health) {
	l := h.Limits
	limits := d.opts.ShareAll && !l.Own && l.Published != nil && (l.Concurrency > 0 || l.Rate > 0)
	if !l.PausedUntil.After(time.Now()) && !limits {
		return
	}
	d.mu.Lock()
	r := d.runners[h.EndpointID]
	d.mu.Unlock()
	if r == nil {
		return
	}
	p := limit.Peer{PausedUntil: l.PausedUntil}
	if limits {
		at := l.Published.UnixMicro()
		if prev := r.followed.Load(); at > prev && r.followed.CompareAndSwap(prev, at) {
			n := d.sharers()
			if l.Concurrency > 0 {
				p.Limit = max(l.Concurrency/n, 1)
			}
			p.Rate, p.Since = l.Rate/float64(n), l.LimitedAt
		}
	}
	r.gate.Follow(p) // the gate's lock is not taken under d.mu
}
