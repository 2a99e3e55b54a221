package console

import (
	"sync"
	"time"

	"github.com/walhook/walhook/internal/dispatch"
	"github.com/walhook/walhook/internal/store"
)

// TailEvent is one finished delivery attempt as the live tail shows it.
type TailEvent struct {
	DeliveryID  string    `json:"delivery_id"`
	EventID     string    `json:"event_id"`
	EventType   string    `json:"event_type"`
	EndpointID  string    `json:"endpoint_id"`
	Tenant      string    `json:"tenant,omitempty"`
	Attempt     int       `json:"attempt"`
	AttemptedAt time.Time `json:"attempted_at"`
	DurationMS  float64   `json:"duration_ms"`
	StatusCode  int       `json:"status_code"`
	OK          bool      `json:"ok"`
	Error       string    `json:"error,omitempty"`
}

// Tail is a dispatch.Observer that hands every attempt to the live tail's
// subscribers and counts events and attempts for the overview's chart. It
// never blocks the dispatcher: a subscriber whose buffer is full misses
// events (and is told how many).
type Tail struct {
	mu     sync.Mutex // guards subs and rates; held only for non-blocking work
	subs   map[*Subscription]struct{}
	rates  rates
	closed bool
}

var _ dispatch.Observer = (*Tail)(nil)

// NewTail returns a tail with no subscribers.
func NewTail() *Tail {
	return &Tail{subs: map[*Subscription]struct{}{}, rates: newRates(time.Now)}
}

// Subscription receives attempts on C until Close.
type Subscription struct {
	C       <-chan TailEvent
	c       chan TailEvent
	t       *Tail
	dropped int64 // guarded by t.mu
}

// Subscribe starts a subscription with a buffer of n events. After Close
// of the tail, C is closed at once.
func (t *Tail) Subscribe(n int) *Subscription {
	c := make(chan TailEvent, n)
	s := &Subscription{C: c, c: c, t: t}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		close(c)
		return s
	}
	t.subs[s] = struct{}{}
	return s
}

// Dropped returns and resets how many events s missed because its buffer
// was full.
func (s *Subscription) Dropped() int64 {
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	n := s.dropped
	s.dropped = 0
	return n
}

// Close ends the subscription; C is closed.
func (s *Subscription) Close() {
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	if _, ok := s.t.subs[s]; ok {
		delete(s.t.subs, s)
		close(s.c)
	}
}

// Close ends every subscription (their C are closed) and refuses new ones,
// so that live tail streams end when the admin listener shuts down.
func (t *Tail) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for s := range t.subs {
		delete(t.subs, s)
		close(s.c)
	}
}

// Attempted hands the attempt to every subscriber without waiting.
func (t *Tail) Attempted(a store.Attempt, tenant string) {
	t.mu.Lock()
	if a.OK() {
		t.rates.add(0, 1, 0)
	} else {
		t.rates.add(0, 0, 1)
	}
	listening := len(t.subs) > 0
	t.mu.Unlock()
	if !listening {
		return
	}
	ev := TailEvent{
		DeliveryID: a.DeliveryID, EventID: a.EventID, EventType: a.EventType, EndpointID: a.EndpointID,
		Tenant: tenant, Attempt: a.Number, AttemptedAt: a.AttemptedAt,
		DurationMS: float64(a.Duration.Microseconds()) / 1000, StatusCode: a.StatusCode, OK: a.OK(), Error: a.Error,
	}
	if ev.DeliveryID == "" {
		ev.DeliveryID = store.DeliveryID(a.EventID, a.EndpointID)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for s := range t.subs {
		select {
		case s.c <- ev:
		default:
			s.dropped++
		}
	}
}

// EventEmitted counts an event for the chart.
func (t *Tail) EventEmitted(string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rates.add(1, 0, 0)
}

// Rates returns the chart's points, oldest first.
func (t *Tail) Rates() []RatePoint {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rates.points()
}

// The other observer methods are not shown by the console.

func (t *Tail) ChangesRead(int)              {}
func (t *Tail) EvaluationsFailed(int)        {}
func (t *Tail) Overflowed(string)            {}
func (t *Tail) ConcurrencyLimit(string, int) {}
func (t *Tail) Outcome(string, string)       {}
func (t *Tail) Disabled(string)              {}

// Chart resolution: rateBuckets buckets of rateStep.
const (
	rateStep    = 5 * time.Second
	rateBuckets = 120 // 10 minutes
)

// RatePoint is one bucket of the chart: counts per second over Step.
type RatePoint struct {
	At          time.Time `json:"at"` // start of the bucket
	Events      float64   `json:"events_per_second"`
	Deliveries  float64   `json:"deliveries_per_second"` // accepted attempts
	FailedTries float64   `json:"failed_attempts_per_second"`
}

// rates counts events and attempts in a ring of time buckets.
type rates struct {
	now     func() time.Time
	buckets [rateBuckets]rateBucket
}

type rateBucket struct {
	slot                        int64 // unix time / rateStep of the counts
	events, delivered, failures int64
}

func newRates(now func() time.Time) rates { return rates{now: now} }

func (r *rates) add(events, delivered, failures int64) {
	slot := r.now().UnixNano() / int64(rateStep)
	b := &r.buckets[slot%rateBuckets]
	if b.slot != slot {
		*b = rateBucket{slot: slot}
	}
	b.events += events
	b.delivered += delivered
	b.failures += failures
}

// points are the last rateBuckets buckets, oldest first; the current,
// unfinished bucket is left out.
func (r *rates) points() []RatePoint {
	cur := r.now().UnixNano() / int64(rateStep)
	out := make([]RatePoint, 0, rateBuckets)
	step := rateStep.Seconds()
	for slot := cur - rateBuckets + 1; slot < cur; slot++ {
		p := RatePoint{At: time.Unix(0, slot*int64(rateStep)).UTC()}
		if b := r.buckets[(slot%rateBuckets+rateBuckets)%rateBuckets]; b.slot == slot {
			p.Events, p.Deliveries, p.FailedTries = float64(b.events)/step, float64(b.delivered)/step, float64(b.failures)/step
		}
		out = append(out, p)
	}
	return out
}
