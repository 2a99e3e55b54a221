package store

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// recordBatches sets the batch id of the deliveries ds that have one, in
// the write that stores them; a row that already has one keeps it, so
// writing a batch again is harmless.
func (s *Store) recordBatches(ctx context.Context, db execer, ds []Delivery) error {
	var ids, batches []string
	for _, d := range ds {
		if d.BatchID != "" {
			id := d.ID
			if id == "" {
				id = DeliveryID(d.EventID, d.EndpointID)
			}
			ids, batches = append(ids, id), append(batches, d.BatchID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	_, err := db.Exec(ctx, s.sql(`UPDATE {s}.deliveries d SET batch_id = u.batch_id
FROM unnest($1::text[], $2::text[]) AS u(id, batch_id)
WHERE d.id = u.id AND d.batch_id IS NULL`), ids, batches)
	if err != nil {
		return fmt.Errorf("recording the batches of %d deliveries: %w", len(ids), err)
	}
	return nil
}

// ClaimBatchMates completes claims of batch deliveries: of the claimed
// deliveries ids (leased by ClaimDue), it returns the batch id of those
// that have one, and claims with the same lease the other pending
// deliveries of their batches that are due (FOR UPDATE SKIP LOCKED: a
// delivery another claimer holds, or one it leased, stays with it), so
// that a failed batch is retried whole under its id. The mates come back
// with BatchID set, ordered by seq.
func (s *Store) ClaimBatchMates(ctx context.Context, ids []string, lease time.Duration) (map[string]string, []Delivery, error) {
	if len(ids) == 0 {
		return nil, nil, nil
	}
	rows, err := s.pool.Query(ctx, s.sql(`SELECT id, batch_id FROM {s}.deliveries WHERE id = ANY($1::text[]) AND batch_id IS NOT NULL`), ids)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the batches of %d claimed deliveries: %w", len(ids), err)
	}
	batchOf := map[string]string{}
	for rows.Next() {
		var id, batch string
		if err := rows.Scan(&id, &batch); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("reading the batches of %d claimed deliveries: %w", len(ids), err)
		}
		batchOf[id] = batch
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("reading the batches of %d claimed deliveries: %w", len(ids), err)
	}
	if len(batchOf) == 0 {
		return nil, nil, nil
	}
	batches := make([]string, 0, len(batchOf))
	seen := map[string]bool{}
	for _, b := range batchOf {
		if !seen[b] {
			seen[b] = true
			batches = append(batches, b)
		}
	}
	rows, err = s.pool.Query(ctx, s.sql(`WITH mates AS (
	SELECT id FROM {s}.deliveries
	WHERE batch_id = ANY($1::text[]) AND status = 'pending' AND next_attempt_at <= now() AND id <> ALL($2::text[])
	FOR UPDATE SKIP LOCKED
)
UPDATE {s}.deliveries d SET next_attempt_at = now() + $3::bigint * interval '1 microsecond', updated_at = now(),
	claimed_by = nullif($4, '')
FROM mates WHERE d.id = mates.id
RETURNING d.batch_id, d.id, d.event_id, d.event_type, d.endpoint_id, d.key, d.tenant, d.body, d.event_time,
	d.commit_lsn, d.position, d.seq, d.status, d.attempts, d.next_attempt_at, d.last_status, d.last_error,
	d.created_at, d.updated_at`), batches, ids, lease.Microseconds(), s.instanceID())
	if err != nil {
		return nil, nil, fmt.Errorf("claiming the rest of %d batches: %w", len(batches), err)
	}
	defer rows.Close()
	var mates []Delivery
	for rows.Next() {
		var batch string
		d, err := scanDelivery(rows, &batch)
		if err != nil {
			return nil, nil, fmt.Errorf("claiming the rest of %d batches: %w", len(batches), err)
		}
		d.BatchID = batch
		mates = append(mates, d)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("claiming the rest of %d batches: %w", len(batches), err)
	}
	sort.Slice(mates, func(i, j int) bool { return mates[i].Seq < mates[j].Seq })
	return batchOf, mates, nil
}
