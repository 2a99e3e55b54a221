package dispatch

import (
	"context"
	"time"
)

const sweepInterval = time.Second

// sweepAll returns blocked keys of ordered endpoints to the in-memory
// path once the store has nothing pending for them; it runs every
// sweepInterval.
func (d *Dispatcher) sweepAll(ctx context.Context) {
	for _, r := range d.orderedRunners() {
		if err := d.sweep(ctx, r); err != nil && ctx.Err() == nil {
			d.log.Warn().Err(err).Str("endpoint_id", r.id).Msg("checking blocked ordering keys")
		}
	}
}

func (d *Dispatcher) orderedRunners() []*runner {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*runner
	for _, r := range d.runners {
		if r.keys != nil {
			out = append(out, r)
		}
	}
	return out
}

// sweep releases the keys of r with nothing pending in the store. The
// ledger is asked for candidates, the store is asked without any lock
// held, and the ledger releases only keys no write touched meanwhile.
func (d *Dispatcher) sweep(ctx context.Context, r *runner) error {
	const batch = 1000
	candidates := r.keys.sweepCandidates(batch)
	if len(candidates) == 0 {
		return nil
	}
	keys := make([]string, 0, len(candidates))
	for k := range candidates {
		keys = append(keys, k)
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	pending, err := d.store.PendingKeys(ctx, r.id, keys)
	if err != nil {
		return err
	}
	still := make(map[string]bool, len(pending))
	for _, k := range pending {
		still[k] = true
	}
	r.keys.release(candidates, still)
	return nil
}
