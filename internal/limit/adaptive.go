package limit

import (
	"context"
	"math"
	"sync"
	"time"
)

// Defaults of an Adaptive limit.
const (
	// DefaultCeiling is the highest limit when the endpoint sets no
	// concurrency: enough for a 50 ms endpoint to take 5,000 requests/s.
	DefaultCeiling = 256
	// DefaultInitial is the limit an endpoint starts with.
	DefaultInitial = 8
	// DefaultTolerance is how many times its quiet latency an endpoint's
	// latency may reach before the limit stops growing and shrinks.
	DefaultTolerance = 2.0
	// DefaultSlack is added to the tolerated latency, so that the jitter of
	// an endpoint answering in microseconds is not read as queueing.
	DefaultSlack = 2 * time.Millisecond
)

// Outcome is what an attempt says about the endpoint's load.
type Outcome int

const (
	// Success is a response that says nothing of overload: any status but
	// 429 and 503 (a 500 or 404 comes back as fast as a 200).
	Success Outcome = iota
	// Overload is a 429, a 503, a timeout or a refused connection: the
	// endpoint has more than it can take.
	Overload
	// Ignore is an attempt cut short by walhook itself (shutdown); it
	// frees its slot and says nothing about the endpoint.
	Ignore
)

// AdaptiveOptions configure an Adaptive limit; zero fields take defaults.
type AdaptiveOptions struct {
	Ceiling   int // highest limit; DefaultCeiling
	Initial   int // starting limit; DefaultInitial, at most Ceiling
	Min       int // lowest limit; 1
	Tolerance float64
	Slack     time.Duration
	Clock     Clock
	// OnChange, when set, is called with the new limit each time it
	// changes (outside the limiter's lock; calls may arrive out of order
	// under concurrency, so read Limit for the current value).
	OnChange func(limit int)
}

// Adaptive is an endpoint's in-flight limit, adjusted from the latency and
// outcome of the requests it admits, in the manner of TCP Vegas and
// Netflix's concurrency-limits:
//
//   - Requests are judged in windows of about one round trip: a window
//     closes once it has as many completions as the limit.
//   - The quiet latency (baseline) is the lowest window mean seen; it
//     drifts up slowly so an endpoint that became slower for good is
//     relearned.
//   - A window whose mean stays within Tolerance×baseline+Slack, and in
//     which at least half the limit was in use, grows the limit: doubling
//     until the first sign of load (slow start), then by √limit.
//   - A window whose mean exceeds that shrinks the limit in proportion
//     (at most by half), but not below Initial.
//   - An Overload outcome cuts the limit to 70% at once, but only for
//     requests started after the previous cut: a burst of 429s answering
//     requests sent together counts once.
//
// It is safe for concurrent use.
type Adaptive struct {
	opts AdaptiveOptions

	mu        sync.Mutex
	limit     float64
	inflight  int
	waiters   []chan struct{} // FIFO; a closed channel is a granted slot
	slowStart bool
	baseline  time.Duration // 0 until the first window closes
	lastCut   time.Time

	winSamples     int
	winRTTSum      time.Duration
	winMaxInflight int
}

// NewAdaptive returns a limit at opts.Initial.
func NewAdaptive(opts AdaptiveOptions) *Adaptive {
	if opts.Ceiling <= 0 {
		opts.Ceiling = DefaultCeiling
	}
	if opts.Min <= 0 {
		opts.Min = 1
	}
	opts.Min = min(opts.Min, opts.Ceiling)
	if opts.Initial <= 0 {
		opts.Initial = DefaultInitial
	}
	opts.Initial = max(min(opts.Initial, opts.Ceiling), opts.Min)
	if opts.Tolerance < 1 {
		opts.Tolerance = DefaultTolerance
	}
	if opts.Slack <= 0 {
		opts.Slack = DefaultSlack
	}
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	return &Adaptive{opts: opts, limit: float64(opts.Initial), slowStart: true}
}

// Limit is the current number of requests allowed in flight.
func (a *Adaptive) Limit() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return int(a.limit)
}

// Ceiling is the highest the limit may grow.
func (a *Adaptive) Ceiling() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.opts.Ceiling
}

// SetCeiling changes the highest the limit may grow (0: DefaultCeiling);
// a limit above it comes down to it, and with reach the limit is set to
// the ceiling at once. Slots freed by a higher limit go to waiters.
func (a *Adaptive) SetCeiling(c int, reach bool) {
	if c <= 0 {
		c = DefaultCeiling
	}
	a.mu.Lock()
	before := int(a.limit)
	a.opts.Ceiling = c
	a.opts.Min = min(a.opts.Min, c)
	if reach {
		a.limit = float64(c)
	}
	a.setLocked(a.limit)
	after := int(a.limit)
	a.grantLocked()
	a.mu.Unlock()
	if after != before && a.opts.OnChange != nil {
		a.opts.OnChange(after)
	}
}

// InFlight is the number of slots held.
func (a *Adaptive) InFlight() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inflight
}

// TryAcquire takes a slot if one is free (and nobody waits for one).
func (a *Adaptive) TryAcquire() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.waiters) > 0 || a.inflight >= int(a.limit) {
		return false
	}
	a.takeLocked()
	return true
}

// Acquire waits for a slot, in arrival order, or for ctx to end. Each
// acquired slot must be given back with Release.
func (a *Adaptive) Acquire(ctx context.Context) error {
	a.mu.Lock()
	if len(a.waiters) == 0 && a.inflight < int(a.limit) {
		a.takeLocked()
		a.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	a.waiters = append(a.waiters, ch)
	a.mu.Unlock()

	select {
	case <-ch:
		return nil
	case <-ctx.Done():
	}
	a.mu.Lock()
	for i, w := range a.waiters {
		if w == ch {
			a.waiters = append(a.waiters[:i], a.waiters[i+1:]...)
			a.mu.Unlock()
			return ctx.Err()
		}
	}
	// Granted while ctx ended: pass the slot on.
	a.inflight--
	a.grantLocked()
	a.mu.Unlock()
	return ctx.Err()
}

func (a *Adaptive) takeLocked() {
	a.inflight++
	a.winMaxInflight = max(a.winMaxInflight, a.inflight)
}

// grantLocked hands free slots to waiters, oldest first.
func (a *Adaptive) grantLocked() {
	for len(a.waiters) > 0 && a.inflight < int(a.limit) {
		ch := a.waiters[0]
		a.waiters[0] = nil
		a.waiters = a.waiters[1:]
		a.takeLocked()
		close(ch)
	}
}

// Release gives back a slot held for a request that took rtt and ended
// with outcome, and adjusts the limit. It reports whether an Overload
// outcome cut the limit.
func (a *Adaptive) Release(rtt time.Duration, outcome Outcome) (cut bool) {
	a.mu.Lock()
	a.inflight--
	before := int(a.limit)
	switch outcome {
	case Overload:
		cut = a.overloadLocked(a.opts.Clock.Now().Add(-rtt))
	case Success:
		a.sampleLocked(rtt)
	}
	after := int(a.limit)
	a.grantLocked()
	a.mu.Unlock()
	if after != before && a.opts.OnChange != nil {
		a.opts.OnChange(after)
	}
	return cut
}

// CutTo lowers the limit to l (not below the lowest) as an Overload would,
// unless it is already at or below l: a peer instance saw the endpoint
// overloaded (peers.go). Adaptation goes on from there.
func (a *Adaptive) CutTo(l int) {
	a.mu.Lock()
	before := int(a.limit)
	if float64(l) < a.limit {
		a.lastCut = a.opts.Clock.Now()
		a.slowStart = false
		a.setLocked(float64(l))
		a.resetWindowLocked()
	}
	after := int(a.limit)
	a.mu.Unlock()
	if after != before && a.opts.OnChange != nil {
		a.opts.OnChange(after)
	}
}

// overloadLocked cuts the limit for a request that started at started,
// unless the limit was already cut after it started; it reports whether it
// cut.
func (a *Adaptive) overloadLocked(started time.Time) bool {
	if !a.lastCut.IsZero() && started.Before(a.lastCut) {
		return false
	}
	a.lastCut = a.opts.Clock.Now()
	a.slowStart = false
	a.setLocked(a.limit * 0.7)
	a.resetWindowLocked()
	return true
}

// sampleLocked adds a successful request to the window and, when the
// window is complete, judges it.
func (a *Adaptive) sampleLocked(rtt time.Duration) {
	a.winSamples++
	a.winRTTSum += rtt
	if a.winSamples < int(a.limit) {
		return
	}
	mean := a.winRTTSum / time.Duration(a.winSamples)
	used := a.winMaxInflight*2 >= int(a.limit)
	a.resetWindowLocked()

	switch {
	case a.baseline == 0 || mean < a.baseline:
		a.baseline = mean
	default:
		// Drift up by 1/64 of the gap: a lasting change is relearned in
		// about a hundred windows, a passing one barely moves it.
		a.baseline += (mean - a.baseline) / 64
	}
	tolerated := time.Duration(float64(a.baseline)*a.opts.Tolerance) + a.opts.Slack
	switch {
	case mean > tolerated:
		// Latency alone never takes the limit below where it starts
		// (Initial): on a busy machine walhook's own scheduling delays read
		// as the endpoint's latency, and a limit of 1 or 2 then queues
		// every delivery behind one request. Refusals, timeouts and
		// refused connections (overloadLocked) take it lower.
		a.slowStart = false
		floor := math.Min(a.limit, float64(a.opts.Initial))
		a.setLocked(math.Max(floor, a.limit*math.Max(0.5, float64(tolerated)/float64(mean))))
	case !used:
		// The limit is not what holds the endpoint back: leave it.
	case a.slowStart:
		a.setLocked(a.limit * 2)
	default:
		a.setLocked(a.limit + math.Max(1, math.Sqrt(a.limit)))
	}
}

func (a *Adaptive) resetWindowLocked() {
	a.winSamples, a.winRTTSum, a.winMaxInflight = 0, 0, a.inflight
}

func (a *Adaptive) setLocked(l float64) {
	a.limit = math.Max(float64(a.opts.Min), math.Min(float64(a.opts.Ceiling), l))
}
