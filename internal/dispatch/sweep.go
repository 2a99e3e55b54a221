package dispatch

import (
	"context"
	"time"
)

const sweepInterval = time.Second

// sweepLoop returns blocked keys of ordered endpoints to the in-memory
// path once the store has nothing pending for them.
func (d *Dispatcher) sweepLoop(ctx context.Context) {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.mu.Lock()
		var ordered []*runner
		for _, r := range d.runners {
			if r.ordered {
				ordered = append(ordered, r)
			}
		}
		d.mu.Unlock()
		for _, r := range ordered {
			if err := d.sweep(ctx, r); err != nil && ctx.Err() == nil {
				d.log.Warn().Err(err).Str("endpoint_id", r.id).Msg("checking blocked ordering keys")
			}
		}
	}
}

// sweep unblocks the keys of r with no pending delivery in the store. A key
// is a candidate only if no store write of it is in progress; it is
// unblocked only if no write of it started while the store was asked.
func (d *Dispatcher) sweep(ctx context.Context, r *runner) error {
	const batch = 1000
	r.mu.Lock()
	keys := make([]string, 0, min(len(r.blocked), batch))
	gens := make(map[string]uint64, cap(keys))
	for k, g := range r.blocked {
		if r.persisting[k] > 0 {
			continue
		}
		keys = append(keys, k)
		gens[k] = g
		if len(keys) == batch {
			break
		}
	}
	r.mu.Unlock()
	if len(keys) == 0 {
		return nil
	}
	pending, err := d.store.PendingKeys(ctx, r.id, keys)
	if err != nil {
		return err
	}
	still := make(map[string]bool, len(pending))
	for _, k := range pending {
		still[k] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		if !still[k] && r.blocked[k] == gens[k] && r.persisting[k] == 0 {
			delete(r.blocked, k)
		}
	}
	return nil
}

// loadBlocked marks as blocked the keys of an ordered endpoint that have
// deliveries pending in the store (left by an earlier run), so that new
// deliveries of those keys queue behind them.
func (d *Dispatcher) loadBlocked(ctx context.Context, ep *Endpoint) error {
	if !ep.Ordered {
		return nil
	}
	keys, err := d.store.PendingKeys(ctx, ep.ID, nil)
	if err != nil {
		return err
	}
	r := d.runnerFor(ep)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		r.block(k)
	}
	return nil
}
