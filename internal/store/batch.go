package store

import (
	"context"
	"fmt"
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
func (s *Store) WriteBatch(ctx context.Context, b Batch) error {
	if b.Empty() {
		return nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("writing a batch of %d deliveries: beginning: %w", len(b.Deliveries), err)
	}
	defer func() {
		// Bounded: an unreachable server must not hold the caller here.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()
	if err := s.persist(ctx, tx, b.Deliveries); err != nil {
		return err
	}
	if err := s.logAttempts(ctx, tx, nil, b.Attempts); err != nil {
		return err
	}
	if err := s.recordFailures(ctx, tx, b.Failures); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("writing a batch of %d deliveries: committing: %w", len(b.Deliveries), err)
	}
	return nil
}
