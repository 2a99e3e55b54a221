package dispatch

import (
	"context"

	"github.com/walhook/walhook/internal/store"
)

// completer records the outcomes of retries in groups: each retry worker
// hands its completion over and goes, and whatever queued while one write
// ran goes in the next, as one CompleteAll; what follows from the write
// (health, metrics, disabling an endpoint) runs after it, in the
// completer. Completions not yet written are bounded by the queue: a
// worker waits for room, holding its retry worker slot, so claims stop
// while the store falls behind. Until written, a delivery stays leased. A statement
// per delivery would serialise the workers on their endpoint's health row
// and a commit each, and cap the retry store at a few hundred deliveries a
// second (docs/architecture.md, "The retry store"). The retry loop owns
// it: it starts it, and stops it once its workers are done.
type completer struct {
	d    *Dispatcher
	in   chan *pendingCompletion
	done chan struct{}
}

// maxCompleteBatch bounds the completions of one write.
const maxCompleteBatch = 512

type pendingCompletion struct {
	c     store.Completion
	after func(h store.Health, err error)
}

func (d *Dispatcher) startCompleter() *completer {
	c := &completer{d: d, in: make(chan *pendingCompletion, maxCompleteBatch), done: make(chan struct{})}
	go c.run()
	return c
}

// stop waits for the writes of completions already handed over; call it
// once no worker hands over any more.
func (c *completer) stop() {
	close(c.in)
	<-c.done
}

// complete hands one completion to the next group write, waiting only for
// room in the queue; after runs once the write is done, with the
// endpoint's health after it or the write's error (the store was tried
// for completeWithin, or the shutdown deadline came). false when ctx
// ended first: the completion was not handed over.
func (c *completer) complete(ctx context.Context, comp store.Completion, after func(store.Health, error)) bool {
	select {
	case c.in <- &pendingCompletion{c: comp, after: after}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (c *completer) run() {
	defer close(c.done)
	batch := make([]*pendingCompletion, 0, maxCompleteBatch)
	for p := range c.in {
		batch = append(batch[:0], p)
	gather:
		for len(batch) < maxCompleteBatch {
			select {
			case p, ok := <-c.in:
				if !ok {
					break gather
				}
				batch = append(batch, p)
			default:
				break gather
			}
		}
		c.write(batch)
	}
}

// write records one group, trying for completeWithin, then runs what
// follows from each completion.
func (c *completer) write(batch []*pendingCompletion) {
	cs := make([]store.Completion, len(batch))
	for i, p := range batch {
		cs[i] = p.c
	}
	var hs map[string]store.Health
	err := retryStore(c.d.storeCtx, completeWithin, func(ctx context.Context) error {
		var err error
		hs, err = c.d.store.CompleteAll(ctx, cs)
		return err
	}, nil)
	woke := false
	for _, p := range batch {
		p.after(hs[p.c.Delivery.EndpointID], err)
		// A keyed delivery that left pending made the next of its key due
		// (CompleteAll's wake): claim it now rather than at the next poll.
		woke = woke || (err == nil && p.c.Delivery.Key != "" && p.c.Outcome.Status != store.StatusPending)
	}
	if woke {
		c.d.signal()
	}
}
