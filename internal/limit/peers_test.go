package limit_test

import (
	"context"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/limit"
	"github.com/walhook/walhook/internal/sender"
)

// TestGateSignalsWhatPeersFollow: a gate signals a Retry-After pause that
// moved its end, an overload cut of its limit and a rate learned from a
// 429, each with its limit and rate after the attempt; a success, and a
// refusal that changed nothing, signal nothing.
func TestGateSignalsWhatPeersFollow(t *testing.T) {
	c := newManualClock()
	var got []limit.Signal
	g := limit.NewGate(limit.GateOptions{Clock: c, Ceiling: 100, OnSignal: func(s limit.Signal) { got = append(got, s) }})
	ctx := context.Background()
	attempt := func(res sender.Result) {
		t.Helper()
		p, err := g.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p.Done(res)
	}
	for range 10 {
		attempt(sender.Result{StatusCode: 204, Duration: time.Millisecond})
	}
	if len(got) != 0 {
		t.Fatalf("successes signalled %+v", got)
	}

	// Two attempts answered 503 with Retry-After: the first pauses and
	// cuts (8 × 0.7 = 5); the second, started before the cut and with a
	// shorter Retry-After, changes nothing and signals nothing.
	p1, _ := g.Acquire(ctx)
	p2, _ := g.Acquire(ctx)
	c.Advance(time.Millisecond)
	p1.Done(sender.Result{StatusCode: 503, RetryAfter: 30 * time.Second, Duration: time.Millisecond})
	p2.Done(sender.Result{StatusCode: 503, RetryAfter: 10 * time.Second, Duration: time.Millisecond})
	if len(got) != 1 {
		t.Fatalf("signals after two 503s with Retry-After: %+v", got)
	}
	if s := got[0]; s.Pause != 30*time.Second || !s.Cut || s.Learned || s.Limit != 5 || s.Rate != 0 {
		t.Fatalf("signal %+v, want a 30s pause and a cut to 5", s)
	}

	// A 429 teaches a rate (90% of the 10 accepted in the last second)
	// and cuts.
	got = got[:0]
	g = limit.NewGate(limit.GateOptions{Clock: c, OnSignal: func(s limit.Signal) { got = append(got, s) }})
	for range 10 {
		attempt(sender.Result{StatusCode: 204, Duration: time.Millisecond})
	}
	c.Advance(10 * time.Millisecond)
	attempt(sender.Result{StatusCode: 429, Duration: time.Millisecond})
	if len(got) != 1 {
		t.Fatalf("signals after a 429: %+v", got)
	}
	if s := got[0]; s.Pause != 0 || !s.Cut || !s.Learned || s.Limit != 5 || s.Rate != 9 {
		t.Fatalf("signal %+v, want a cut to 5 and a learned rate of 9/s, no pause", s)
	}
}

// TestGateFollowsPeers: a gate waits out a peer's pause, comes down to its
// share of a peer's limit (never up), adopts a peer's rate when it is
// lower than its own, grown as its own would, and ignores a limit and rate
// published too long ago. Following signals nothing back.
func TestGateFollowsPeers(t *testing.T) {
	c := newManualClock()
	signals := 0
	g := limit.NewGate(limit.GateOptions{Clock: c, Ceiling: 64, OnSignal: func(limit.Signal) { signals++ }})
	g.SetLimit(40)

	g.Follow(limit.Peer{PausedUntil: c.Now().Add(5 * time.Second)})
	if want := c.Now().Add(5 * time.Second); !g.PausedUntil().Equal(want) {
		t.Fatalf("PausedUntil %v after a peer's pause, want %v", g.PausedUntil(), want)
	}
	g.Follow(limit.Peer{PausedUntil: c.Now().Add(time.Hour)})
	if want := c.Now().Add(limit.MaxPause); !g.PausedUntil().Equal(want) {
		t.Fatalf("a peer's hour-long pause holds until %v, want MaxPause (%v)", g.PausedUntil(), want)
	}

	g.Follow(limit.Peer{Limit: 12, Since: c.Now().Add(-time.Second)})
	if g.Limit() != 12 {
		t.Fatalf("limit %d after a peer's 12, want 12", g.Limit())
	}
	g.Follow(limit.Peer{Limit: 30, Since: c.Now()})
	if g.Limit() != 12 {
		t.Fatalf("a peer's higher limit raised it to %d", g.Limit())
	}
	g.Follow(limit.Peer{Limit: 2, Since: c.Now().Add(-limit.PeerLimitFor)})
	if g.Limit() != 12 {
		t.Fatalf("a limit published %s ago was followed: %d", limit.PeerLimitFor, g.Limit())
	}

	// A rate learned 10 s ago at 100/s has grown to 100×1.05^10 ≈ 163/s.
	g.Follow(limit.Peer{Rate: 100, Since: c.Now().Add(-10 * time.Second)})
	if r := g.LearnedRate(); r < 162 || r > 164 {
		t.Fatalf("learned rate %.1f/s after a peer's, want ≈ 163", r)
	}
	g.Follow(limit.Peer{Rate: 500, Since: c.Now()})
	if r := g.LearnedRate(); r > 164 {
		t.Fatalf("a peer's higher rate raised the pace to %.1f/s", r)
	}
	g.Follow(limit.Peer{Rate: 50, Since: c.Now()})
	if r := g.LearnedRate(); r != 50 {
		t.Fatalf("learned rate %.1f/s after a peer's lower 50/s", r)
	}
	if signals != 0 {
		t.Fatalf("following peers signalled %d times", signals)
	}
}
