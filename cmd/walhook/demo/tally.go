package demo

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/walhook/walhook/internal/dispatch"
	"github.com/walhook/walhook/internal/store"
)

// tally counts what the demo saw: events from the dispatcher (it is the
// relay's dispatch.Observer) and accepted deliveries from the receivers.
type tally struct {
	mu       sync.Mutex
	events   int // events the rules produced
	accepted int // requests the receivers verified and answered 2xx
	rejected int // requests answered otherwise (the demo's injected 500s, bad signatures)
	retries  int // attempts after the first
	failed   int // deliveries given up
	changed  chan struct{}
}

var _ dispatch.Observer = (*tally)(nil)

func newTally() *tally { return &tally{changed: make(chan struct{})} }

// update applies f under the lock and wakes waiters.
func (t *tally) update(f func(t *tally)) {
	t.mu.Lock()
	f(t)
	close(t.changed)
	t.changed = make(chan struct{})
	t.mu.Unlock()
}

// waitAccepted blocks until n deliveries were accepted, ctx ends or
// within passes; it reports whether n were reached.
func (t *tally) waitAccepted(ctx context.Context, n int, within time.Duration) bool {
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		t.mu.Lock()
		have, changed := t.accepted, t.changed
		t.mu.Unlock()
		if have >= n {
			return true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		case <-timer.C:
			return false
		}
	}
}

// summary is the closing line: events, deliveries, retries, failures.
func (t *tally) summary() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return fmt.Sprintf("%d events, %d deliveries verified and accepted, %d retries, %d failed",
		t.events, t.accepted, t.retries, t.failed)
}

// ChangesRead implements dispatch.Observer.
func (t *tally) ChangesRead(int) {}

// EventEmitted implements dispatch.Observer.
func (t *tally) EventEmitted(string) { t.update(func(t *tally) { t.events++ }) }

// EvaluationsFailed implements dispatch.Observer.
func (t *tally) EvaluationsFailed(int) {}

// Attempted implements dispatch.Observer.
func (t *tally) Attempted(a store.Attempt, _ string) {
	if a.Number > 1 {
		t.update(func(t *tally) { t.retries++ })
	}
}

// Overflowed implements dispatch.Observer.
func (t *tally) Overflowed(string) {}

// ConcurrencyLimit implements dispatch.Observer.
func (t *tally) ConcurrencyLimit(string, int) {}

// Outcome implements dispatch.Observer.
func (t *tally) Outcome(_, outcome string) {
	if outcome == "failed" {
		t.update(func(t *tally) { t.failed++ })
	}
}

// Disabled implements dispatch.Observer.
func (t *tally) Disabled(string) {}
