package console_test

import (
	"testing"
	"time"

	"github.com/walhook/walhook/internal/console"
	"github.com/walhook/walhook/internal/store"
)

// TestTailDropsInsteadOfBlocking: a subscriber that does not read misses
// attempts (and is told how many) while the dispatcher goes on; a reading
// subscriber gets every one; Close ends every subscription.
func TestTailDropsInsteadOfBlocking(t *testing.T) {
	tail := console.NewTail()
	slow := tail.Subscribe(2)
	fast := tail.Subscribe(100)
	for i := 1; i <= 10; i++ {
		tail.Attempted(store.Attempt{EventID: "evt_1", EventType: "contact.created", EndpointID: "cfg:crm", Number: i, StatusCode: 204, AttemptedAt: time.Now()}, "acme")
	}
	if n := slow.Dropped(); n != 8 {
		t.Fatalf("slow subscriber dropped %d, want 8", n)
	}
	if n := slow.Dropped(); n != 0 {
		t.Fatalf("Dropped did not reset: %d", n)
	}
	if len(fast.C) != 10 {
		t.Fatalf("fast subscriber got %d, want 10", len(fast.C))
	}
	ev := <-fast.C
	if ev.DeliveryID != store.DeliveryID("evt_1", "cfg:crm") || !ev.OK || ev.Tenant != "acme" || ev.Attempt != 1 {
		t.Fatalf("tail event %+v", ev)
	}
	slow.Close()
	slow.Close() // twice is harmless
	tail.Close()
	for range fast.C {
	}
	if _, ok := <-tail.Subscribe(1).C; ok {
		t.Fatal("a subscription after Close is open")
	}
}

// TestTailRates: the chart's points cover ten minutes in 5s steps, oldest
// first, without the unfinished bucket.
func TestTailRates(t *testing.T) {
	tail := console.NewTail()
	tail.EventEmitted("contact.created")
	tail.Attempted(store.Attempt{StatusCode: 500, Error: "status 500"}, "")
	pts := tail.Rates()
	if len(pts) != 119 {
		t.Fatalf("%d points, want 119", len(pts))
	}
	for i := 1; i < len(pts); i++ {
		if pts[i].At.Sub(pts[i-1].At) != 5*time.Second {
			t.Fatalf("points %d and %d are %v apart", i-1, i, pts[i].At.Sub(pts[i-1].At))
		}
	}
	if time.Since(pts[len(pts)-1].At) > 10*time.Second {
		t.Fatalf("last point %v is not the last finished bucket", pts[len(pts)-1].At)
	}
}
