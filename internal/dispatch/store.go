package dispatch

import (
	"context"
	"time"

	"github.com/walhook/walhook/internal/store"
)

// Store is what the dispatcher needs from the retry store
// (*store.Store implements it; tests use an in-memory one).
type Store interface {
	// WriteBatch writes deliveries, attempts and failed evaluations in one
	// transaction; writing a batch again is harmless. It returns the
	// deliveries written with Claim that it inserted (preclaim.go).
	WriteBatch(ctx context.Context, b store.Batch) ([]store.Delivery, error)
	// LogAttempts logs successful first attempts (log_attempts = "all").
	LogAttempts(ctx context.Context, ds []store.Delivery, as []store.Attempt) error
	ClaimDue(ctx context.Context, limit int, lease time.Duration, exclude []string) ([]store.Delivery, error)
	// ClaimBatchMates returns the batch ids of the claimed deliveries ids
	// and claims the other due deliveries of their batches (batch.go).
	ClaimBatchMates(ctx context.Context, ids []string, lease time.Duration) (map[string]string, []store.Delivery, error)
	// CompleteAll records attempts of claimed deliveries and their
	// outcomes in one write, and returns the endpoints' health after it.
	CompleteAll(ctx context.Context, cs []store.Completion) (map[string]store.Health, error)
	Postpone(ctx context.Context, id string, until time.Time) error
	PendingKeys(ctx context.Context, endpointID string, keys []string) ([]string, error)
	FirstOfKey(ctx context.Context, d store.Delivery) (bool, error)
	AllHealth(ctx context.Context) ([]store.Health, error)
	Health(ctx context.Context, endpointID string) (store.Health, error)
	RecordHealth(ctx context.Context, endpointID string, ok bool, failures int, at time.Time) (store.Health, error)
	Disable(ctx context.Context, endpointID, reason string) error
	FailPending(ctx context.Context, endpointID, reason string) (int64, error)
	// PublishLimits records a pause and limits this instance learned of an
	// endpoint for the other instances (peers.go).
	PublishLimits(ctx context.Context, endpointID string, u store.LimitsUpdate) error
}

var _ Store = (*store.Store)(nil)

// storeTimeout bounds one store call made by the dispatcher's own loops.
const storeTimeout = 30 * time.Second

// retryStore runs f, each try bounded by storeTimeout, until it succeeds,
// waiting 100ms doubling to 5s between tries (failed, when set, is told of
// each failure). It gives up with f's last error when ctx ends or, with
// within > 0, when the next try would start after within. Every wait ends
// with ctx: nothing here outlives a shutdown deadline.
func retryStore(ctx context.Context, within time.Duration, f func(context.Context) error, failed func(err error, wait time.Duration)) error {
	var giveUp time.Time
	if within > 0 {
		giveUp = time.Now().Add(within)
	}
	for wait := 100 * time.Millisecond; ; wait = min(wait*2, 5*time.Second) {
		tctx, cancel := context.WithTimeout(ctx, storeTimeout)
		err := f(tctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || (!giveUp.IsZero() && time.Now().Add(wait).After(giveUp)) {
			return err
		}
		if failed != nil {
			failed(err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}
