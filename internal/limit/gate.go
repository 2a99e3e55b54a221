package limit

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/walhook/walhook/internal/sender"
)

// MaxPause bounds how long one Retry-After pauses a whole endpoint; the
// delivery that got it is still retried no sooner than it asked.
const MaxPause = time.Minute

// GateOptions configure a Gate.
type GateOptions struct {
	// Ceiling is the endpoint's concurrency setting: the highest the
	// adaptive limit grows. 0 means DefaultCeiling.
	Ceiling int
	// Rate, when non-zero, caps requests per unit of time across first
	// attempts and retries.
	Rate  Rate
	Clock Clock
	// OnLimit, when set, is told each new concurrency limit (for the
	// walhook_endpoint_concurrency_limit gauge).
	OnLimit func(limit int)
	// OnSignal, when set, is told what the gate learned from an attempt
	// that the other instances sending to the endpoint should follow
	// (peers.go); it is called outside the gate's locks.
	OnSignal func(Signal)
}

// Gate admits the attempts of one endpoint: a slot under its adaptive
// concurrency limit, then the end of any pause a Retry-After imposed, then
// a token of its configured rate limit and of the rate it learned from
// 429s (see learned.go). It is safe for concurrent use.
type Gate struct {
	conc     *Adaptive
	bucket   atomic.Pointer[Bucket] // nil: no rate limit; SetRate swaps it
	clock    Clock
	onSignal func(Signal)

	mu          sync.Mutex
	pausedUntil time.Time
	learned     learnedRate
}

// NewGate returns a Gate.
func NewGate(opts GateOptions) *Gate {
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	g := &Gate{clock: opts.Clock, onSignal: opts.OnSignal}
	g.conc = NewAdaptive(AdaptiveOptions{Ceiling: opts.Ceiling, Clock: opts.Clock, OnChange: opts.OnLimit})
	if !opts.Rate.IsZero() {
		g.bucket.Store(NewBucket(opts.Rate, opts.Clock))
	}
	return g
}

// Limit is the current concurrency limit.
func (g *Gate) Limit() int { return g.conc.Limit() }

// Ceiling is the highest the concurrency limit may grow.
func (g *Gate) Ceiling() int { return g.conc.Ceiling() }

// Rate is the configured rate limit (zero when none).
func (g *Gate) Rate() Rate {
	b := g.bucket.Load()
	if b == nil {
		return Rate{}
	}
	return b.Rate()
}

// SetRate changes the configured rate limit (zero: none) unless it is
// unchanged; a new rate starts with a full bucket.
func (g *Gate) SetRate(r Rate) {
	if r == g.Rate() {
		return
	}
	if r.IsZero() {
		g.bucket.Store(nil)
		return
	}
	g.bucket.Store(NewBucket(r, g.clock))
}

// SetCeiling changes the highest the concurrency limit may grow (0:
// DefaultCeiling); a current limit above it comes down to it.
func (g *Gate) SetCeiling(c int) { g.conc.SetCeiling(c, false) }

// SetLimit sets the concurrency limit and its ceiling to n now (an
// operator's override); adaptation goes on below n.
func (g *Gate) SetLimit(n int) { g.conc.SetCeiling(n, true) }

// InFlight is the number of attempts holding a slot.
func (g *Gate) InFlight() int { return g.conc.InFlight() }

// PausedUntil is when the current pause ends; zero or past when none.
func (g *Gate) PausedUntil() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pausedUntil
}

// Pause holds every attempt of the endpoint for d (at most MaxPause) from
// now; a longer pause already in force stands.
func (g *Gate) Pause(d time.Duration) { g.pause(d) }

// pause is Pause, and reports whether it moved the end of the pause.
func (g *Gate) pause(d time.Duration) bool {
	until := g.clock.Now().Add(min(d, MaxPause))
	g.mu.Lock()
	defer g.mu.Unlock()
	if until.After(g.pausedUntil) {
		g.pausedUntil = until
		return true
	}
	return false
}

// Permit is an admitted attempt; call Done (or Cancel) exactly once. It is
// a value, so admitting an attempt allocates nothing; the zero Permit is
// held by no gate, and its Done and Cancel do nothing.
type Permit struct {
	g       *Gate
	started time.Time
}

// Acquire waits until an attempt may start, or ctx ends.
func (g *Gate) Acquire(ctx context.Context) (Permit, error) {
	if err := g.conc.Acquire(ctx); err != nil {
		return Permit{}, err
	}
	if err := g.waitTurn(ctx); err != nil {
		g.conc.Release(0, Ignore)
		return Permit{}, err
	}
	return Permit{g: g, started: g.clock.Now()}, nil
}

// waitTurn waits out any pause, then for a token of the configured and
// the learned rate; a pause begun meanwhile is waited out as well.
func (g *Gate) waitTurn(ctx context.Context) error {
	reserved := false
	for {
		now := g.clock.Now()
		var wait time.Duration
		g.mu.Lock()
		pause := g.pausedUntil.Sub(now)
		if pause <= 0 && !reserved {
			wait = g.learned.reserve(now)
		}
		g.mu.Unlock()
		if pause > 0 {
			if err := sleep(ctx, g.clock, pause); err != nil {
				return err
			}
			continue
		}
		if reserved {
			return nil
		}
		reserved = true
		if b := g.bucket.Load(); b != nil {
			wait = max(wait, b.Reserve())
		}
		if err := sleep(ctx, g.clock, wait); err != nil {
			return err
		}
	}
}

// LearnedRate is the requests per second the endpoint is paced at after
// refusing requests with 429; 0 when it is not.
func (g *Gate) LearnedRate() float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.learned.current(g.clock.Now())
}

// Done reports the attempt's result: its duration and status adjust the
// limit, a 429 teaches a rate (learned.go), and a 429 or 503 with
// Retry-After pauses the endpoint. A 503 without Retry-After only cuts the
// concurrency limit: an endpoint failing at random answers 503s at any
// rate, and a rate learned from them would only ever fall.
func (p Permit) Done(res sender.Result) {
	if p.g == nil {
		return
	}
	out := Classify(res)
	var sig Signal
	switch {
	case refusal(res.StatusCode):
		if res.StatusCode == http.StatusTooManyRequests {
			now := p.g.clock.Now()
			p.g.mu.Lock()
			sig.Learned = p.g.learned.refused(now)
			p.g.mu.Unlock()
		}
		if res.RetryAfter > 0 && p.g.pause(res.RetryAfter) {
			sig.Pause = min(res.RetryAfter, MaxPause)
		}
	case res.OK():
		now := p.g.clock.Now()
		p.g.mu.Lock()
		p.g.learned.accepted(now)
		p.g.mu.Unlock()
	}
	rtt := res.Duration
	if rtt <= 0 {
		rtt = p.g.clock.Now().Sub(p.started)
	}
	sig.Cut = p.g.conc.Release(rtt, out)
	if p.g.onSignal != nil && sig.any() {
		sig.Limit, sig.Rate = p.g.Limit(), p.g.LearnedRate()
		p.g.onSignal(sig)
	}
}

// Cancel frees the slot of an attempt walhook itself cut short or never
// made; it says nothing about the endpoint.
func (p Permit) Cancel() {
	if p.g != nil {
		p.g.conc.Release(0, Ignore)
	}
}

// Classify reads what an attempt's result says about the endpoint's load:
// 429, 503, timeouts and refused or reset connections are Overload; any
// other response, and errors of the request itself, are Success.
func Classify(res sender.Result) Outcome {
	if res.Err == nil {
		if refusal(res.StatusCode) {
			return Overload
		}
		return Success
	}
	var timeout *sender.TimeoutError
	if errors.As(res.Err, &timeout) || isOverloadError(res.Err) {
		return Overload
	}
	return Success
}

// isOverloadError reports a refused or reset connection, or a network
// timeout: signs of an endpoint that cannot take more.
func isOverloadError(err error) bool {
	var netErr net.Error
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		(errors.As(err, &netErr) && netErr.Timeout())
}

// refusal reports a status by which an endpoint refuses work for now.
func refusal(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
}
