package dispatch

import (
	"context"
	"sync"
)

// gate caps the attempts in flight to one endpoint, first attempts and
// retries alike. Its limit can change at any time (SetInFlightLimit): a
// lower limit lets the attempts already in flight finish.
type gate struct {
	mu      sync.Mutex
	limit   int
	used    int
	waiting int           // acquirers waiting on freed
	freed   chan struct{} // closed (and replaced) when room may have appeared and someone waits
}

func newGate(limit int) *gate { return &gate{limit: max(limit, 1), freed: make(chan struct{})} }

// acquire waits for room or for ctx to end.
func (g *gate) acquire(ctx context.Context) error {
	for {
		g.mu.Lock()
		if g.used < g.limit {
			g.used++
			g.mu.Unlock()
			return nil
		}
		freed := g.freed
		g.waiting++
		g.mu.Unlock()
		var err error
		select {
		case <-freed:
		case <-ctx.Done():
			err = ctx.Err()
		}
		g.mu.Lock()
		g.waiting--
		g.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

func (g *gate) release() {
	g.mu.Lock()
	g.used--
	g.wakeLocked()
	g.mu.Unlock()
}

func (g *gate) wakeLocked() {
	if g.waiting > 0 {
		close(g.freed)
		g.freed = make(chan struct{})
	}
}

func (g *gate) setLimit(n int) {
	g.mu.Lock()
	g.limit = max(n, 1)
	g.wakeLocked()
	g.mu.Unlock()
}

// full reports whether every unit is taken.
func (g *gate) full() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.used >= g.limit
}

func (g *gate) capacity() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limit
}
