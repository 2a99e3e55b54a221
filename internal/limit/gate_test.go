package limit_test

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/limit"
	"github.com/walhook/walhook/internal/sender"
)

func TestGateRetryAfterPausesTheEndpoint(t *testing.T) {
	c := newManualClock()
	g := limit.NewGate(limit.GateOptions{Clock: c})
	ctx := context.Background()
	p, err := g.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.Done(sender.Result{StatusCode: 429, RetryAfter: 2 * time.Second, Duration: time.Millisecond})
	if want := c.Now().Add(2 * time.Second); !g.PausedUntil().Equal(want) {
		t.Fatalf("PausedUntil = %v, want %v", g.PausedUntil(), want)
	}
	// A shorter pause does not shorten it; an endless one is bounded.
	g.Pause(time.Second)
	if want := c.Now().Add(2 * time.Second); !g.PausedUntil().Equal(want) {
		t.Fatalf("a shorter pause moved PausedUntil to %v", g.PausedUntil())
	}

	done := make(chan limit.Permit)
	go func() {
		p, err := g.Acquire(ctx)
		if err != nil {
			t.Error(err)
		}
		done <- p
	}()
	<-c.armed
	c.Advance(1999 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("an attempt was admitted during the pause")
	default:
	}
	c.Advance(time.Millisecond)
	(<-done).Cancel()
	if g.InFlight() != 0 {
		t.Fatalf("in flight = %d after Cancel", g.InFlight())
	}

	g.Pause(24 * time.Hour)
	if want := c.Now().Add(limit.MaxPause); !g.PausedUntil().Equal(want) {
		t.Fatalf("a day's Retry-After pauses until %v, want %v", g.PausedUntil(), want)
	}
}

func TestGateRateLimitsEveryAttempt(t *testing.T) {
	c := newManualClock()
	g := limit.NewGate(limit.GateOptions{Clock: c, Rate: limit.Rate{N: 60, Per: time.Minute}})
	if g.Rate().String() != "60/m" {
		t.Fatalf("Rate = %v", g.Rate())
	}
	ctx := context.Background()
	p, err := g.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.Done(sender.Result{StatusCode: 500, Duration: time.Millisecond})
	done := make(chan error)
	go func() {
		p, err := g.Acquire(ctx)
		if err == nil {
			p.Done(sender.Result{StatusCode: 200})
		}
		done <- err
	}()
	<-c.armed
	select {
	case err := <-done:
		t.Fatalf("second attempt in the same second admitted (%v)", err)
	default:
	}
	c.Advance(time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestGateAcquireGivesBackTheSlotWhenCanceled(t *testing.T) {
	c := newManualClock()
	g := limit.NewGate(limit.GateOptions{Clock: c})
	g.Pause(time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := g.Acquire(ctx)
		done <- err
	}()
	<-c.armed
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire = %v, want canceled", err)
	}
	if g.InFlight() != 0 {
		t.Fatalf("in flight = %d, want 0", g.InFlight())
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		res  sender.Result
		want limit.Outcome
	}{
		{sender.Result{StatusCode: 200}, limit.Success},
		{sender.Result{StatusCode: 500}, limit.Success},
		{sender.Result{StatusCode: 404}, limit.Success},
		{sender.Result{StatusCode: 429}, limit.Overload},
		{sender.Result{StatusCode: 503}, limit.Overload},
		{sender.Result{Err: &sender.TimeoutError{After: time.Second}}, limit.Overload},
		{sender.Result{Err: fmt.Errorf("dial: %w", syscall.ECONNREFUSED)}, limit.Overload},
		{sender.Result{Err: fmt.Errorf("read: %w", syscall.ECONNRESET)}, limit.Overload},
		{sender.Result{Err: &sender.RedirectError{StatusCode: 302}}, limit.Success},
	}
	for _, c := range cases {
		if got := limit.Classify(c.res); got != c.want {
			t.Errorf("Classify(%+v) = %v, want %v", c.res, got, c.want)
		}
	}
}

func TestGateLearnsTheRateAnEndpointAccepts(t *testing.T) {
	c := newManualClock()
	g := limit.NewGate(limit.GateOptions{Clock: c})
	ctx := context.Background()
	for i := 0; i < 200; i++ {
		p, err := g.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p.Done(sender.Result{StatusCode: 204, Duration: 50 * time.Microsecond})
	}
	if r := g.LearnedRate(); r != 0 {
		t.Fatalf("learned %v/s before any refusal", r)
	}
	// The 201st in the same second is refused: pace at 90% of 200/s.
	c.Advance(10 * time.Millisecond)
	var burst []limit.Permit
	for i := 0; i < 5; i++ {
		p, _ := g.Acquire(ctx)
		burst = append(burst, p)
	}
	for _, p := range burst { // a burst of refusals teaches once
		p.Done(sender.Result{StatusCode: 429, Duration: 50 * time.Microsecond})
	}
	if r := g.LearnedRate(); r != 180 {
		t.Fatalf("learned %v/s, want 180", r)
	}
	// 18 tokens of burst, then one per 1/180 s.
	for i := 0; i < 18; i++ {
		p, _ := g.Acquire(ctx)
		p.Cancel()
	}
	done := make(chan struct{})
	go func() {
		p, _ := g.Acquire(ctx)
		p.Cancel()
		close(done)
	}()
	<-c.armed
	c.Advance(time.Second / 180)
	<-done
	// The pace grows 5% a second and is dropped after about a minute.
	c.Advance(10 * time.Second)
	if r := g.LearnedRate(); r < 290 || r > 295 {
		t.Fatalf("after 10s learned rate %v/s, want 180×1.05^10 ≈ 293", r)
	}
	c.Advance(60 * time.Second)
	if r := g.LearnedRate(); r != 0 {
		t.Fatalf("after 70s learned rate %v/s, want none", r)
	}
}

func TestGateChangesAtRunTimeKeepWhatItLearned(t *testing.T) {
	c := newManualClock()
	var seen []int
	g := limit.NewGate(limit.GateOptions{Clock: c, OnLimit: func(l int) { seen = append(seen, l) }})
	if g.Ceiling() != limit.DefaultCeiling || g.Limit() != limit.DefaultInitial {
		t.Fatalf("new gate: ceiling %d, limit %d", g.Ceiling(), g.Limit())
	}
	p, _ := g.Acquire(context.Background())
	p.Done(sender.Result{StatusCode: 503, Duration: time.Millisecond})
	if g.Limit() != 5 || len(seen) != 1 || seen[0] != 5 {
		t.Fatalf("after a 503: limit %d, reported %v; want 5", g.Limit(), seen)
	}
	g.SetCeiling(limit.DefaultCeiling)
	if g.Limit() != 5 {
		t.Fatalf("an unchanged ceiling moved the learned limit to %d", g.Limit())
	}
	g.SetCeiling(3)
	if g.Limit() != 3 || g.Ceiling() != 3 || seen[len(seen)-1] != 3 {
		t.Fatalf("a lower ceiling: limit %d, ceiling %d, reported %v", g.Limit(), g.Ceiling(), seen)
	}
	g.SetLimit(12)
	if g.Limit() != 12 || g.Ceiling() != 12 {
		t.Fatalf("SetLimit(12): limit %d, ceiling %d", g.Limit(), g.Ceiling())
	}
	r := limit.Rate{N: 5, Per: time.Second}
	g.SetRate(r)
	if g.Rate() != r {
		t.Fatalf("SetRate: rate %v", g.Rate())
	}
	g.SetRate(limit.Rate{})
	if !g.Rate().IsZero() {
		t.Fatalf("SetRate(zero) left %v", g.Rate())
	}
}

func TestGateSetLimitLetsAWaiterIn(t *testing.T) {
	g := limit.NewGate(limit.GateOptions{Ceiling: 1})
	p, err := g.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		q, err := g.Acquire(t.Context())
		if err == nil {
			q.Cancel()
		}
		got <- err
	}()
	g.SetLimit(2)
	if err := <-got; err != nil {
		t.Fatalf("waiter not let in after the limit grew: %v", err)
	}
	p.Cancel()
	g.SetLimit(0)
	if g.Ceiling() != limit.DefaultCeiling {
		t.Fatalf("SetLimit(0): ceiling %d, want the default", g.Ceiling())
	}
}

// TestZeroPermitHoldsNothing: an attempt made without a gate holds the
// zero Permit, whose Done and Cancel leave every gate as it was.
func TestZeroPermitHoldsNothing(t *testing.T) {
	g := limit.NewGate(limit.GateOptions{})
	p, err := g.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var zero limit.Permit
	zero.Done(sender.Result{StatusCode: 204})
	zero.Cancel()
	if n := g.InFlight(); n != 1 {
		t.Fatalf("InFlight = %d after a zero Permit's Done and Cancel, want 1", n)
	}
	p.Done(sender.Result{StatusCode: 204, Duration: time.Millisecond})
	if n := g.InFlight(); n != 0 {
		t.Fatalf("InFlight = %d after Done, want 0", n)
	}
}
