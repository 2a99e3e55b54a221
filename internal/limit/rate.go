package limit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rate is a request rate: N requests per Per.
type Rate struct {
	N   int
	Per time.Duration
}

// IsZero reports whether no rate is set (unlimited).
func (r Rate) IsZero() bool { return r.N == 0 }

// String writes the rate as it is configured ("500/s", "3000/m", "10/h").
func (r Rate) String() string {
	if r.IsZero() {
		return ""
	}
	unit := "s"
	switch r.Per {
	case time.Minute:
		unit = "m"
	case time.Hour:
		unit = "h"
	}
	return strconv.Itoa(r.N) + "/" + unit
}

// Share is one of n equal shares of r: the same unit when it divides,
// else a longer one (200/s over 3 is 4000/m), else per hour rounded down
// (at least 1). n < 2 and the zero Rate give r.
func (r Rate) Share(n int) Rate {
	if n < 2 || r.IsZero() {
		return r
	}
	var hourly int
	for _, unit := range []time.Duration{time.Second, time.Minute, time.Hour} {
		if unit < r.Per || unit%r.Per != 0 {
			continue
		}
		total := r.N * int(unit/r.Per)
		if total%n == 0 {
			return Rate{N: total / n, Per: unit}
		}
		hourly = total
	}
	return Rate{N: max(hourly/n, 1), Per: time.Hour}
}

// PerSecond is the rate in requests per second.
func (r Rate) PerSecond() float64 {
	if r.IsZero() {
		return 0
	}
	return float64(r.N) / r.Per.Seconds()
}

// ParseRate reads "N/s", "N/m" or "N/h" (also "N/sec", "N/min",
// "N/hour"), N a positive integer. The empty string is the zero Rate.
func ParseRate(s string) (Rate, error) {
	if s == "" {
		return Rate{}, nil
	}
	num, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q: write requests per unit, like \"500/s\" or \"3000/m\"", s)
	}
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil || n <= 0 {
		return Rate{}, fmt.Errorf("rate %q: the count before / must be a positive whole number", s)
	}
	var per time.Duration
	switch strings.ToLower(strings.TrimSpace(unit)) {
	case "s", "sec", "second":
		per = time.Second
	case "m", "min", "minute":
		per = time.Minute
	case "h", "hour":
		per = time.Hour
	default:
		return Rate{}, fmt.Errorf("rate %q: the unit after / is s, m or h", s)
	}
	return Rate{N: n, Per: per}, nil
}

// Bucket is a token bucket admitting requests at a Rate, with a burst of
// a tenth of a second's worth (at least one). It is safe for concurrent use.
type Bucket struct {
	rate  Rate
	clock Clock

	mu    sync.Mutex
	pacer pacer
}

// NewBucket returns a full bucket for r (r must be non-zero).
func NewBucket(r Rate, clock Clock) *Bucket {
	if clock == nil {
		clock = SystemClock{}
	}
	return &Bucket{rate: r, clock: clock}
}

// Rate is the bucket's rate.
func (b *Bucket) Rate() Rate { return b.rate }

// Reserve takes a token and says how long to wait before using it (0 when
// one is available now).
func (b *Bucket) Reserve() time.Duration {
	now := b.clock.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pacer.reserve(now, b.rate.PerSecond())
}

// Wait takes a token, waiting until it is due or ctx ends. A token taken
// by a wait that ctx ended is not given back.
func (b *Bucket) Wait(ctx context.Context) error {
	return sleep(ctx, b.clock, b.Reserve())
}

// sleep waits d on clock, or until ctx ends.
func sleep(ctx context.Context, clock Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	c, stop := clock.NewTimer(d)
	defer stop()
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pacer spaces tokens at a rate per second with a burst of a tenth of a
// second's worth (at least one). The caller serializes calls.
type pacer struct {
	// next is when the bucket is empty again: each token moves it forward
	// by one interval; it never lags now by more than the burst.
	next time.Time
}

// reserve takes a token at perSecond and returns the wait before it is due.
func (p *pacer) reserve(now time.Time, perSecond float64) time.Duration {
	every := time.Duration(float64(time.Second) / perSecond)
	burst := every * time.Duration(max(1, int(perSecond/10)))
	if floor := now.Add(-burst); p.next.Before(floor) {
		p.next = floor
	}
	p.next = p.next.Add(every)
	if wait := p.next.Sub(now); wait > 0 {
		return wait
	}
	return 0
}
