package limit_test

import (
	"context"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/limit"
)

func TestParseRate(t *testing.T) {
	good := map[string]limit.Rate{
		"500/s":     {N: 500, Per: time.Second},
		"3000/m":    {N: 3000, Per: time.Minute},
		"10/h":      {N: 10, Per: time.Hour},
		" 5 / sec ": {N: 5, Per: time.Second},
		"60/minute": {N: 60, Per: time.Minute},
		"":          {},
	}
	for in, want := range good {
		got, err := limit.ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if got := (limit.Rate{N: 3000, Per: time.Minute}); got.String() != "3000/m" || got.PerSecond() != 50 {
		t.Errorf("3000/m prints %q at %v/s", got.String(), got.PerSecond())
	}
	for _, in := range []string{"500", "0/s", "-1/s", "abc/s", "5/d", "5/", "1.5/s", "/s"} {
		if _, err := limit.ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) accepted", in)
		}
	}
}

func TestBucketPacesAfterItsBurst(t *testing.T) {
	c := newManualClock()
	b := limit.NewBucket(limit.Rate{N: 500, Per: time.Second}, c) // a burst of 50, then one per 2ms
	for i := 0; i < 50; i++ {
		if w := b.Reserve(); w != 0 {
			t.Fatalf("token %d waits %v, want 0 (within the burst)", i+1, w)
		}
	}
	for i := 1; i <= 3; i++ {
		if w := b.Reserve(); w != time.Duration(i)*2*time.Millisecond {
			t.Fatalf("token %d past the burst waits %v", i, w)
		}
	}
	// Idle time refills the burst, but no more.
	c.Advance(time.Hour)
	for i := 0; i < 50; i++ {
		if w := b.Reserve(); w != 0 {
			t.Fatalf("after idling, token %d waits %v", i+1, w)
		}
	}
	if w := b.Reserve(); w != 2*time.Millisecond {
		t.Fatalf("after idling, token 51 waits %v, want 2ms", w)
	}
}

func TestBucketWaitSleepsOnTheClock(t *testing.T) {
	c := newManualClock()
	b := limit.NewBucket(limit.Rate{N: 60, Per: time.Minute}, c) // one per second, burst 1
	ctx := context.Background()
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- b.Wait(ctx) }()
	<-c.armed
	c.Advance(999 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Wait returned (%v) before its token was due", err)
	default:
	}
	c.Advance(time.Millisecond)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Wait(canceled); err != context.Canceled {
		t.Fatalf("Wait with a canceled context = %v", err)
	}
}

// TestRateShare: a share of a rate keeps its unit when it divides, moves
// to a longer unit when that divides, and rounds down per hour otherwise.
func TestRateShare(t *testing.T) {
	for _, tt := range []struct {
		rate string
		n    int
		want string
	}{
		{"300/s", 3, "100/s"},
		{"200/s", 3, "4000/m"},
		{"200/m", 3, "4000/h"},
		{"10/h", 3, "3/h"},
		{"1/h", 3, "1/h"},
		{"500/s", 1, "500/s"},
		{"", 3, ""},
	} {
		r, err := limit.ParseRate(tt.rate)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Share(tt.n).String(); got != tt.want {
			t.Errorf("%q shared by %d = %q, want %q", tt.rate, tt.n, got, tt.want)
		}
	}
}
