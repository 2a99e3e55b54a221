package dispatch

import (
	"testing"
	"time"
)

func TestNextDelay(t *testing.T) {
	schedule := []time.Duration{5 * time.Second, 5 * time.Minute}
	for i := 0; i < 100; i++ {
		d, ok := nextDelay(schedule, 1, 0)
		if !ok || d < 4500*time.Millisecond || d > 5500*time.Millisecond {
			t.Fatalf("after attempt 1: %v %v, want 5s±10%%", d, ok)
		}
	}
	if d, ok := nextDelay(schedule, 2, 0); !ok || d < 270*time.Second || d > 330*time.Second {
		t.Fatalf("after attempt 2: %v %v, want 5m±10%%", d, ok)
	}
	if _, ok := nextDelay(schedule, 3, 0); ok {
		t.Fatal("schedule of two retries allowed a third")
	}
	if d, _ := nextDelay(schedule, 1, time.Hour); d != time.Hour {
		t.Fatalf("Retry-After 1h gave %v", d)
	}
	if d, _ := nextDelay(schedule, 1, 100*time.Hour); d != maxRetryAfter {
		t.Fatalf("Retry-After 100h gave %v, want the cap %v", d, maxRetryAfter)
	}
	if d, _ := nextDelay(schedule, 2, time.Second); d < 270*time.Second {
		t.Fatalf("a short Retry-After shortened the schedule: %v", d)
	}
	if _, ok := nextDelay(nil, 1, 0); ok {
		t.Fatal("empty schedule allowed a retry")
	}
}
