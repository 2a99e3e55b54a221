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

	done := make(chan *limit.Permit)
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
	var burst []*limit.Permit
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

func TestGatesKeepALearnedLimitAcrossRebuilds(t *testing.T) {
	c := newManualClock()
	seen := map[string]int{}
	gs := limit.NewGates(c, func(id string, l int) { seen[id] = l })
	a := gs.For("cfg:a", 0, limit.Rate{})
	if a.Ceiling() != limit.DefaultCeiling || seen["cfg:a"] != limit.DefaultInitial {
		t.Fatalf("new gate: ceiling %d, reported %v", a.Ceiling(), seen)
	}
	p, _ := a.Acquire(context.Background())
	p.Done(sender.Result{StatusCode: 503, Duration: time.Millisecond})
	if seen["cfg:a"] != 5 {
		t.Fatalf("after a 503 the gauge says %d, want 5", seen["cfg:a"])
	}
	if gs.For("cfg:a", limit.DefaultCeiling, limit.Rate{}) != a {
		t.Fatal("an unchanged endpoint got a new gate")
	}
	if b := gs.For("cfg:a", 16, limit.Rate{}); b == a || b.Ceiling() != 16 {
		t.Fatal("a new ceiling kept the old gate")
	}
	gs.For("ep_b", 0, limit.Rate{N: 5, Per: time.Second})
	if gone := gs.Retain(map[string]bool{"ep_b": true}); len(gone) != 1 || gone[0] != "cfg:a" {
		t.Fatalf("Retain dropped %v", gone)
	}
	if snap := gs.Snapshot(); len(snap) != 1 || snap["ep_b"] != limit.DefaultInitial {
		t.Fatalf("Snapshot = %v", snap)
	}
}
