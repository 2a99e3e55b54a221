package limit_test

import (
	"context"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/limit"
)

// round admits n requests at once, lets rtt pass, and releases them all
// with outcome.
func round(t *testing.T, a *limit.Adaptive, c *manualClock, n int, rtt time.Duration, outcome limit.Outcome) {
	t.Helper()
	for i := 0; i < n; i++ {
		if !a.TryAcquire() {
			t.Fatalf("TryAcquire %d of %d refused at limit %d", i+1, n, a.Limit())
		}
	}
	c.Advance(rtt)
	for i := 0; i < n; i++ {
		a.Release(rtt, outcome)
	}
}

func TestAdaptiveSlowStartDoublesToTheCeiling(t *testing.T) {
	c := newManualClock()
	var changes []int
	a := limit.NewAdaptive(limit.AdaptiveOptions{Clock: c, OnChange: func(l int) { changes = append(changes, l) }})
	want := []int{16, 32, 64, 128, 256, 256}
	for _, w := range want {
		round(t, a, c, a.Limit(), time.Millisecond, limit.Success)
		if got := a.Limit(); got != w {
			t.Fatalf("limit = %d, want %d", got, w)
		}
	}
	if len(changes) != 5 || changes[4] != 256 {
		t.Errorf("OnChange saw %v, want the 5 changes up to 256", changes)
	}
	if a.TryAcquire(); a.InFlight() != 1 {
		t.Errorf("in flight = %d after one acquire", a.InFlight())
	}
}

func TestAdaptiveRisingLatencyShrinksThenGrowsAdditively(t *testing.T) {
	c := newManualClock()
	a := limit.NewAdaptive(limit.AdaptiveOptions{Clock: c, Ceiling: 100})
	for a.Limit() < 64 {
		round(t, a, c, a.Limit(), time.Millisecond, limit.Success)
	}
	// Latency 20× the quiet one: the endpoint is queueing.
	round(t, a, c, 64, 20*time.Millisecond, limit.Success)
	if got := a.Limit(); got != 32 {
		t.Fatalf("after a slow window limit = %d, want 32 (halved at most)", got)
	}
	// Quiet again: growth is now additive (+√limit), not doubling.
	round(t, a, c, 32, time.Millisecond, limit.Success)
	if got := a.Limit(); got != 37 {
		t.Fatalf("after a quiet window limit = %d, want 37 (32+√32)", got)
	}
	// Latency within tolerance (2× baseline + 2ms) still grows.
	round(t, a, c, 37, 3*time.Millisecond, limit.Success)
	if got := a.Limit(); got <= 37 {
		t.Fatalf("latency within tolerance: limit = %d, want growth", got)
	}
}

func TestAdaptiveOverloadCutsOncePerBurst(t *testing.T) {
	c := newManualClock()
	a := limit.NewAdaptive(limit.AdaptiveOptions{Clock: c})
	round(t, a, c, 8, time.Millisecond, limit.Success) // 16
	// 16 requests sent together all come back 429: one cut, to 70%.
	round(t, a, c, 16, 10*time.Millisecond, limit.Overload)
	if got := a.Limit(); got != 11 {
		t.Fatalf("after a burst of 429s limit = %d, want 11", got)
	}
	// A request sent after that cut and refused again cuts again.
	round(t, a, c, 1, 5*time.Millisecond, limit.Overload)
	if got := a.Limit(); got != 7 {
		t.Fatalf("after a later 429 limit = %d, want 7", got)
	}
	// Cuts stop at the minimum.
	for i := 0; i < 20; i++ {
		round(t, a, c, 1, time.Millisecond, limit.Overload)
	}
	if got := a.Limit(); got != 1 {
		t.Fatalf("after many 429s limit = %d, want 1", got)
	}
	// And slow start is over: quiet windows grow it additively.
	round(t, a, c, 1, time.Millisecond, limit.Success)
	if got := a.Limit(); got != 2 {
		t.Fatalf("after recovering limit = %d, want 2", got)
	}
}

func TestAdaptiveUnusedLimitDoesNotGrow(t *testing.T) {
	c := newManualClock()
	a := limit.NewAdaptive(limit.AdaptiveOptions{Clock: c})
	for i := 0; i < 40; i++ {
		round(t, a, c, 1, time.Millisecond, limit.Success)
	}
	if got := a.Limit(); got != limit.DefaultInitial {
		t.Fatalf("one request at a time moved the limit to %d", got)
	}
}

func TestAdaptiveIgnoreFreesTheSlotOnly(t *testing.T) {
	c := newManualClock()
	a := limit.NewAdaptive(limit.AdaptiveOptions{Clock: c, Initial: 2})
	for i := 0; i < 10; i++ {
		round(t, a, c, 2, time.Hour, limit.Ignore)
	}
	if a.Limit() != 2 || a.InFlight() != 0 {
		t.Fatalf("limit %d in flight %d, want 2 and 0", a.Limit(), a.InFlight())
	}
}

func TestAdaptiveAcquireWaitsForASlot(t *testing.T) {
	a := limit.NewAdaptive(limit.AdaptiveOptions{Initial: 2, Clock: newManualClock()})
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := a.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if a.TryAcquire() {
		t.Fatal("TryAcquire succeeded beyond the limit")
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := a.Acquire(canceled); err != context.Canceled {
		t.Fatalf("Acquire with a canceled context = %v", err)
	}
	got := make(chan error)
	go func() { got <- a.Acquire(ctx) }()
	a.Release(time.Millisecond, limit.Success)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if a.InFlight() != 2 {
		t.Fatalf("in flight = %d, want 2 (the waiter got the freed slot)", a.InFlight())
	}
}

func TestAdaptiveLatencyAloneStopsAtTheInitialLimit(t *testing.T) {
	c := newManualClock()
	a := limit.NewAdaptive(limit.AdaptiveOptions{Clock: c})
	for a.Limit() < 32 {
		round(t, a, c, a.Limit(), time.Millisecond, limit.Success)
	}
	for range 5 { // latency 20× the quiet one, window after window
		round(t, a, c, a.Limit(), 20*time.Millisecond, limit.Success)
	}
	if got := a.Limit(); got != limit.DefaultInitial {
		t.Fatalf("after slow windows limit = %d, want %d (latency stops at the initial limit)", got, limit.DefaultInitial)
	}
	round(t, a, c, 1, 20*time.Millisecond, limit.Overload)
	if got := a.Limit(); got != 5 {
		t.Fatalf("after an overload limit = %d, want 5 (refusals go below it)", got)
	}
}
