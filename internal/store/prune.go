package store

import (
	"context"
	"fmt"
	"time"
)

// Prune deletes, up to limit rows of each kind, what the delivery log no
// longer needs: deliveries delivered before before with their attempts,
// attempts without a delivery row (test events) made before before, and
// failed evaluations recorded before before. Pending and failed deliveries
// are never pruned. It returns how many rows it deleted; call it again
// while that reaches limit.
func (s *Store) Prune(ctx context.Context, before time.Time, limit int) (int64, error) {
	var total int64
	steps := []struct{ what, q string }{
		{"delivered deliveries", `WITH gone AS (
	DELETE FROM {s}.deliveries WHERE id IN (
		SELECT id FROM {s}.deliveries WHERE status = 'delivered' AND updated_at < $1 LIMIT $2)
	RETURNING id
), a AS (
	DELETE FROM {s}.attempts a USING gone WHERE a.delivery_id = gone.id RETURNING 1
)
SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM a)`},
		{"attempts of test events", `WITH a AS (
	DELETE FROM {s}.attempts WHERE id IN (
		SELECT a.id FROM {s}.attempts a WHERE a.attempted_at < $1
		  AND NOT EXISTS (SELECT 1 FROM {s}.deliveries d WHERE d.id = a.delivery_id) LIMIT $2)
	RETURNING 1
)
SELECT count(*) FROM a`},
		{"failed evaluations", `WITH f AS (
	DELETE FROM {s}.failed_evaluations WHERE id IN (
		SELECT id FROM {s}.failed_evaluations WHERE created_at < $1
		  AND status NOT IN ('replay_requested', 'replaying') LIMIT $2)
	RETURNING 1
)
SELECT count(*) FROM f`},
	}
	for _, st := range steps {
		var n int64
		if err := s.pool.QueryRow(ctx, s.sql(st.q), before, limit).Scan(&n); err != nil {
			return total, fmt.Errorf("pruning %s: %w", st.what, err)
		}
		total += n
	}
	return total, nil
}
