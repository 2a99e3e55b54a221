// Package lifecycle gives background loops one shape: a Group starts
// them, stops them (their context is cancelled) and waits for them. Every
// goroutine a component starts belongs to a Group its owner stops and
// waits for; see docs/architecture.md.
package lifecycle

import (
	"context"
	"sync"
	"time"
)

// Group owns a set of goroutines.
type Group struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a Group whose loops stop when parent ends or Stop is called.
func New(parent context.Context) *Group {
	ctx, cancel := context.WithCancel(parent)
	return &Group{ctx: ctx, cancel: cancel}
}

// Go starts fn in a goroutine owned by the group; fn must return soon
// after its ctx is cancelled.
func (g *Group) Go(fn func(ctx context.Context)) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		fn(g.ctx)
	}()
}

// Every starts a loop owned by the group that calls fn once first has
// passed and then again interval after each call returns, until the group
// stops.
func (g *Group) Every(first, interval time.Duration, fn func(ctx context.Context)) {
	g.Go(func(ctx context.Context) {
		t := time.NewTimer(first)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			fn(ctx)
			t.Reset(interval)
		}
	})
}

// Context is the context the group's loops run with.
func (g *Group) Context() context.Context { return g.ctx }

// Stop tells every loop to stop; it does not wait.
func (g *Group) Stop() { g.cancel() }

// Wait waits for every loop started with Go to return.
func (g *Group) Wait() { g.wg.Wait() }

// StopAndWait stops the loops and waits for them.
func (g *Group) StopAndWait() {
	g.cancel()
	g.wg.Wait()
}
