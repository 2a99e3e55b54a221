package dispatch

import (
	"testing"

	"github.com/walhook/walhook/internal/limit"
	"github.com/walhook/walhook/internal/sender"
)

// TestSendersShareLimits: with ShareAll an endpoint's concurrency ceiling
// and rate limit are divided among the instances sending, for runners made
// before and after, and through a rebuild of the routing table; back to
// one sender they are whole again. Without ShareAll they stay whole.
func TestSendersShareLimits(t *testing.T) {
	client := sender.New(sender.Options{})
	defer client.Close()
	rate, err := limit.ParseRate("300/s")
	if err != nil {
		t.Fatal(err)
	}
	newEndpoints := func() (*Endpoint, *Endpoint) {
		a := modelEndpoint("a", "http://127.0.0.1:1", false, 64, client)
		a.RateLimit = rate
		b := modelEndpoint("b", "http://127.0.0.1:1", true, 8, client)
		return a, b
	}
	check := func(t *testing.T, d *Dispatcher, ep *Endpoint, ceiling int, rate string) {
		t.Helper()
		g := d.runnerFor(ep).gate
		if g.Ceiling() != ceiling || g.Rate().String() != rate {
			t.Errorf("%s: ceiling %d, rate %q; want %d, %q", ep.Name, g.Ceiling(), g.Rate(), ceiling, rate)
		}
	}

	a, b := newEndpoints()
	d := startDispatcherWith(t, Options{Store: newMemStore(1), MaxInFlight: 100, RetryWorkers: 8, ShareAll: true}, a, b)
	check(t, d, a, 64, "300/s")
	d.SetSenders(3)
	check(t, d, a, 21, "100/s")
	check(t, d, b, 2, "")
	a2, b2 := newEndpoints()
	if err := d.SetEndpoints(t.Context(), []*Endpoint{a2, b2}); err != nil {
		t.Fatal(err)
	}
	check(t, d, a2, 21, "100/s")
	c := modelEndpoint("c", "http://127.0.0.1:1", false, 10, client)
	if err := d.SetEndpoints(t.Context(), []*Endpoint{a2, b2, c}); err != nil {
		t.Fatal(err)
	}
	check(t, d, c, 3, "") // a runner made after SetSenders
	d.SetSenders(1)
	check(t, d, a2, 64, "300/s")
	check(t, d, c, 10, "")
	shutdown(t, d)

	a, _ = newEndpoints()
	d = startDispatcherWith(t, Options{Store: newMemStore(1), MaxInFlight: 100, RetryWorkers: 8}, a)
	d.SetSenders(3)
	check(t, d, a, 64, "300/s")
	shutdown(t, d)
}
