package relay

import (
	"context"
	"time"
)

// Pruning the delivery log: what was delivered longer ago than
// state.retention goes, in batches, every pruneEvery.
const (
	pruneFirst = time.Minute
	pruneEvery = 10 * time.Minute
	pruneBatch = 5000
)

// prune deletes what the retention lets go, a batch at a time.
func (r *Relay) prune(ctx context.Context) {
	before := time.Now().Add(-r.cfg.State.Retention)
	var total int64
	for ctx.Err() == nil {
		n, err := r.store.Prune(ctx, before, pruneBatch)
		total += n
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn().Err(err).Msg("pruning the delivery log")
			}
			return
		}
		if n < pruneBatch {
			break
		}
	}
	if total > 0 {
		r.log.Info().Int64("rows", total).Stringer("retention", r.cfg.State.Retention).Msg("pruned the delivery log")
	}
}
