package store

import (
	"context"
	"fmt"
	"time"
)

// RecordHealth counts, for an endpoint, a success (ok) or failures failed
// attempts at time at, without a delivery row: the dispatcher's first
// attempts are made in memory and their outcome reaches the store in
// batches. It returns the new health.
func (s *Store) RecordHealth(ctx context.Context, endpointID string, ok bool, failures int, at time.Time) (Health, error) {
	if !ok && failures < 1 {
		failures = 1
	}
	row := s.pool.QueryRow(ctx, s.sql(`INSERT INTO {s}.endpoint_health AS h
	(endpoint_id, consecutive_failures, failing_since, last_success_at, last_failure_at)
VALUES ($1, CASE WHEN $2::bool THEN 0 ELSE $3::int END,
	CASE WHEN $2::bool THEN NULL ELSE $4::timestamptz END,
	CASE WHEN $2::bool THEN $4::timestamptz END,
	CASE WHEN $2::bool THEN NULL ELSE $4::timestamptz END)
ON CONFLICT (endpoint_id) DO UPDATE SET
	consecutive_failures = CASE WHEN $2::bool THEN 0 ELSE h.consecutive_failures + $3::int END,
	failing_since = CASE WHEN $2::bool THEN NULL ELSE coalesce(h.failing_since, $4::timestamptz) END,
	last_success_at = CASE WHEN $2::bool THEN $4::timestamptz ELSE h.last_success_at END,
	last_failure_at = CASE WHEN $2::bool THEN h.last_failure_at ELSE $4::timestamptz END
RETURNING `+healthColumns), endpointID, ok, failures, at)
	h, err := s.scanHealth(row)
	if err != nil {
		return Health{}, fmt.Errorf("recording health of %s: %w", endpointID, err)
	}
	return h, nil
}

// PendingKeys returns which of keys have a pending delivery to the
// endpoint; with keys nil, every key that has one.
func (s *Store) PendingKeys(ctx context.Context, endpointID string, keys []string) ([]string, error) {
	q := `SELECT DISTINCT key FROM {s}.deliveries WHERE status = 'pending' AND endpoint_id = $1 AND key <> ''`
	args := []any{endpointID}
	if keys != nil {
		q += ` AND key = ANY($2::text[])`
		args = append(args, keys)
	}
	rows, err := s.pool.Query(ctx, s.sql(q), args...)
	if err != nil {
		return nil, fmt.Errorf("reading pending keys of %s: %w", endpointID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("reading pending keys of %s: %w", endpointID, err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading pending keys of %s: %w", endpointID, err)
	}
	return out, nil
}

// Postpone moves a pending delivery's next attempt to until without
// counting an attempt (used to release a claim that cannot be served yet).
func (s *Store) Postpone(ctx context.Context, id string, until time.Time) error {
	_, err := s.pool.Exec(ctx, s.sql(`UPDATE {s}.deliveries SET next_attempt_at = $2, updated_at = now(), claimed_by = NULL
		WHERE id = $1 AND status = 'pending'`), id, until)
	if err != nil {
		return fmt.Errorf("postponing delivery %s: %w", id, err)
	}
	return nil
}

// FirstOfKey reports whether no pending delivery of d's endpoint and key
// comes before d in commit order (commit LSN, position, seq): d is the one
// ClaimDue would give for its key now.
func (s *Store) FirstOfKey(ctx context.Context, d Delivery) (bool, error) {
	var earlier bool
	err := s.pool.QueryRow(ctx, s.sql(`SELECT EXISTS (SELECT 1 FROM {s}.deliveries e
		WHERE e.status = 'pending' AND e.endpoint_id = $1 AND e.key = $2
		  AND (e.commit_lsn, e.position, e.seq) < ($3, $4, $5))`),
		d.EndpointID, d.Key, int64(d.CommitLSN), d.Position, d.Seq).Scan(&earlier)
	if err != nil {
		return false, fmt.Errorf("checking the order of delivery %s: %w", d.ID, err)
	}
	return !earlier, nil
}
