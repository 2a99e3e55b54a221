package store

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Batch is what the dispatcher hands to the store at once: deliveries that
// leave memory (pending after a failed first attempt, overflow, failed),
// their attempts, and failed rule evaluations.
type Batch struct {
	Deliveries []Delivery
	Attempts   []Attempt
	Failures   []FailedEvaluation
}

// Empty reports whether the batch holds nothing to write.
func (b Batch) Empty() bool {
	return len(b.Deliveries) == 0 && len(b.Attempts) == 0 && len(b.Failures) == 0
}

// WriteBatch writes a batch in one transaction: all of it is stored or
// none of it. Writing a batch again is harmless (deliveries and failed
// evaluations already stored are kept, attempts are logged once), so a
// caller that does not know whether a commit went through retries it.
// It returns the deliveries written with Claim that it inserted, with
// their seq: the caller holds their lease. A claimed delivery already
// stored (a repeat) is not returned; if the caller wrote it, its lease
// ends and it is claimed again.
func (s *Store) WriteBatch(ctx context.Context, b Batch) ([]Delivery, error) {
	if b.Empty() {
		return nil, nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("writing a batch of %d deliveries: beginning: %w", len(b.Deliveries), err)
	}
	defer func() {
		// Bounded: an unreachable server must not hold the caller here.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()
	var claimed []Delivery
	if slices.ContainsFunc(b.Deliveries, func(d Delivery) bool { return d.Claim }) {
		claimed, err = s.persistClaiming(ctx, tx, b.Deliveries)
	} else {
		err = s.persist(ctx, tx, b.Deliveries)
	}
	if err != nil {
		return nil, err
	}
	if err := s.logAttempts(ctx, tx, nil, b.Attempts); err != nil {
		return nil, err
	}
	if err := s.recordFailures(ctx, tx, b.Failures); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("writing a batch of %d deliveries: committing: %w", len(b.Deliveries), err)
	}
	return claimed, nil
}
