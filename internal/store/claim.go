package store

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// claimRounds bounds how many scans one ClaimDue makes when the rows it
// meets are held back by their keys.
const claimRounds = 64

// ClaimDue takes up to limit pending deliveries that are due, oldest due
// first, and leases them: their next attempt moves to now+lease, so a
// worker that dies leaves them due again when the lease ends. Concurrent
// claimers never get the same row (FOR UPDATE SKIP LOCKED). Of a non-empty
// key, only the pending delivery first in commit order (commit LSN,
// position in the transaction, then seq) is claimable, whatever order the
// deliveries were stored in. Deliveries of the endpoints in exclude (the
// caller has no room for them now) and of endpoints paused by any instance
// (PublishLimits) are left alone.
// The lease names this process's instance (SetInstance) as its holder.
// Rows come back ordered by seq. It may return fewer than limit while
// more are due (it stops after a bounded amount of work); call it again.
func (s *Store) ClaimDue(ctx context.Context, limit int, lease time.Duration, exclude []string) ([]Delivery, error) {
	if exclude == nil {
		exclude = []string{}
	}
	var out []Delivery
	wide := false
	for round := 0; round < claimRounds && len(out) < limit; round++ {
		claimed, parked, err := s.claimRound(ctx, limit-len(out), lease, exclude, wide)
		if err != nil {
			return nil, fmt.Errorf("claiming due deliveries: %w", err)
		}
		out = append(out, claimed...)
		if parked == 0 {
			break
		}
		// Rows held back by their keys are about: scan wide from now on.
		wide = true
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

// claimRound scans due rows once. A scanned row that waits behind an
// earlier pending row of its key is not claimed but parked: its next
// attempt moves to the later of its head's next attempt and now+lease,
// but at most parkMax ahead, so that later scans do not meet it again and
// again while the head backs off. Parking is only an optimisation: the
// head check alone keeps the order. Complete wakes the next row of a key
// when its head leaves pending; a wake can be lost to a claimer whose
// snapshot predates it, which parkMax bounds. A narrow round scans (and
// locks) limit rows: every scanned row is locked until the statement
// ends, a write each, so a round over rows no key holds back scans no more
// than it claims; a wide round scans four times more, to park in bulk.
func (s *Store) claimRound(ctx context.Context, limit int, lease time.Duration, exclude []string, wide bool) ([]Delivery, int, error) {
	q := s.sql(`WITH scan AS (
	SELECT d.id, d.next_attempt_at, h.next_attempt_at AS head_next
	FROM {s}.deliveries d
	LEFT JOIN LATERAL (
		SELECT e.next_attempt_at FROM {s}.deliveries e
		WHERE d.key <> '' AND e.status = 'pending' AND e.endpoint_id = d.endpoint_id AND e.key = d.key
		  AND (e.commit_lsn, e.position, e.seq) < (d.commit_lsn, d.position, d.seq)
		ORDER BY e.commit_lsn, e.position, e.seq LIMIT 1
	) h ON true
	WHERE d.status = 'pending' AND d.next_attempt_at <= now()
	  AND d.endpoint_id <> ALL($5::text[] || ` + pausedEndpoints + `)
	ORDER BY d.next_attempt_at
	LIMIT $3
	FOR UPDATE OF d SKIP LOCKED
), pick AS (
	(SELECT id, NULL::timestamptz AS head_next, false AS parked FROM scan
	 WHERE head_next IS NULL ORDER BY next_attempt_at LIMIT $1)
	UNION ALL
	SELECT id, head_next, true FROM scan WHERE head_next IS NOT NULL
)
UPDATE {s}.deliveries d
SET next_attempt_at = CASE WHEN pick.parked
		THEN least(greatest(pick.head_next, now() + $2::bigint * interval '1 microsecond'),
			now() + $4::bigint * interval '1 microsecond')
		ELSE now() + $2::bigint * interval '1 microsecond' END,
	updated_at = CASE WHEN pick.parked THEN d.updated_at ELSE now() END,
	claimed_by = CASE WHEN pick.parked THEN NULL ELSE nullif($6, '') END
FROM pick WHERE d.id = pick.id
RETURNING pick.parked, d.id, d.event_id, d.event_type, d.endpoint_id, d.key, d.tenant,
	CASE WHEN pick.parked THEN ''::bytea ELSE d.body END, d.event_time, d.commit_lsn, d.position, d.seq, d.status,
	d.attempts, d.next_attempt_at, d.last_status, d.last_error, d.created_at, d.updated_at`)
	// Scan more than limit so that rows held back by their keys are parked
	// in bulk rather than a few per call.
	scan := limit
	if wide {
		scan = 4*limit + 100
	}
	rows, err := s.pool.Query(ctx, q, limit, lease.Microseconds(), scan, s.parkMax.Microseconds(), exclude, s.instanceID())
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []Delivery
	parked := 0
	for rows.Next() {
		var p bool
		d, err := scanDelivery(rows, &p)
		if err != nil {
			return nil, 0, err
		}
		if p {
			parked++
			continue
		}
		out = append(out, d)
	}
	return out, parked, rows.Err()
}
