package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Completion is one attempt of a claimed delivery and what it leaves the
// delivery as.
type Completion struct {
	Delivery Delivery
	Attempt  Attempt
	Outcome  Outcome
	// Unlogged leaves a successful attempt out of the attempts log (a
	// first attempt that succeeded, with log_attempts = "failures"). A
	// delivered delivery then ignores later completions of it. A stored,
	// keyless delivery is removed, as one sent from memory leaves no row;
	// a keyed one stays as delivered, since the next of its key is woken
	// from it.
	Unlogged bool
}

// Complete records an attempt of d and its outcome (CompleteAll of one) and
// returns the endpoint's new health.
func (s *Store) Complete(ctx context.Context, d Delivery, a Attempt, outcome Outcome) (Health, error) {
	hs, err := s.CompleteAll(ctx, []Completion{{Delivery: d, Attempt: a, Outcome: outcome}})
	if err != nil {
		return Health{}, err
	}
	return hs[d.EndpointID], nil
}

// CompleteAll records attempts and their outcomes in one transaction, one
// statement per hundreds of completions: each attempt is logged, its
// delivery takes the outcome's status (and is inserted from Delivery if it
// was not stored), its attempt count grows by one, each endpoint's health
// counts its successes (outcome delivered) and failures in attempt order,
// and when a keyed delivery leaves pending, the next pending delivery of
// its key is made due. A delivery already delivered is never moved back by
// a late completion of a stale lease, and completing the same attempt (same
// number and time) twice changes the delivery once, so a caller unsure
// whether a CompleteAll committed may repeat it. It returns the new health
// of every endpoint named, by endpoint id.
//
// One write for many completions is what makes the retry store a path that
// keeps up with memory: a statement per delivery serialises on the
// endpoint's health row and pays a commit each (docs/architecture.md,
// "The retry store").
func (s *Store) CompleteAll(ctx context.Context, cs []Completion) (map[string]Health, error) {
	if len(cs) == 0 {
		return map[string]Health{}, nil
	}
	for i := range cs {
		if cs[i].Outcome.Status == "" {
			return nil, fmt.Errorf("completing delivery %s: outcome has no status", completionID(&cs[i]))
		}
	}
	out := make(map[string]Health)
	now := time.Now()
	health := newHealthDeltas(cs, now)
	fast, slow := unloggedSuccesses(cs)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.forgetDelivered(ctx, tx, fast); err != nil {
			return err
		}
		// A statement may change a delivery once: a delivery completed twice
		// in one call (a repeat) goes in a later statement. Health, summed
		// over the whole call, goes with the first (which runs even when
		// every completion was an unlogged success).
		for rest, first := slow, true; first || len(rest) > 0; first = false {
			part, later := distinctDeliveries(rest)
			hs, err := s.completeOnce(ctx, tx, part, health, now)
			if err != nil {
				return err
			}
			for _, h := range hs {
				out[h.EndpointID] = h
			}
			rest, health = later, healthDeltas{}
		}
		return nil
	})
	if err != nil {
		if len(cs) == 1 {
			return nil, fmt.Errorf("completing delivery %s: %w", completionID(&cs[0]), err)
		}
		return nil, fmt.Errorf("completing %d deliveries: %w", len(cs), err)
	}
	return out, nil
}

func completionID(c *Completion) string {
	if c.Delivery.ID != "" {
		return c.Delivery.ID
	}
	return DeliveryID(c.Delivery.EventID, c.Delivery.EndpointID)
}

// distinctDeliveries splits cs into completions of distinct deliveries, in
// the store's lock order (ascending seq; deliveries not stored yet, seq 0,
// first in their given order), and the repeats left for a later statement.
func distinctDeliveries(cs []Completion) (part, later []Completion) {
	seen := make(map[string]bool, len(cs))
	for _, c := range cs {
		id := completionID(&c)
		if seen[id] {
			later = append(later, c)
			continue
		}
		seen[id] = true
		part = append(part, c)
	}
	slices.SortStableFunc(part, func(a, b Completion) int { return cmpInt64(a.Delivery.Seq, b.Delivery.Seq) })
	return part, later
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// unloggedSuccesses splits cs into the completions forgetDelivered writes
// (a stored, keyless delivery's unlogged success, completed once in cs)
// and the rest.
func unloggedSuccesses(cs []Completion) (fast, rest []Completion) {
	n := make(map[string]int, len(cs))
	for i := range cs {
		n[completionID(&cs[i])]++
	}
	for _, c := range cs {
		if c.Unlogged && c.Outcome.Status == StatusDelivered && c.Delivery.Seq > 0 && c.Delivery.Key == "" && n[completionID(&c)] == 1 {
			fast = append(fast, c)
			continue
		}
		rest = append(rest, c)
	}
	return fast, rest
}

// forgetDelivered removes stored, keyless deliveries whose first attempt
// succeeded unlogged: like a first attempt that succeeded from memory,
// they leave no row. A delivery kept as delivered (logged) is left alone,
// and removing one twice changes nothing. An update to delivered rewrote
// the row and every index over it; removing it costs a fifth of that, and
// nothing to prune later (docs/architecture.md, "The retry store").
func (s *Store) forgetDelivered(ctx context.Context, tx pgx.Tx, cs []Completion) error {
	if len(cs) == 0 {
		return nil
	}
	slices.SortFunc(cs, func(a, b Completion) int { return cmpInt64(a.Delivery.Seq, b.Delivery.Seq) })
	ids := make([]string, len(cs))
	for i := range cs {
		ids[i] = completionID(&cs[i])
	}
	_, err := tx.Exec(ctx, s.sql(`DELETE FROM {s}.deliveries d USING unnest($1::text[]) AS u(id)
WHERE d.id = u.id AND d.status <> 'delivered'`), ids)
	if err != nil {
		return fmt.Errorf("removing %d delivered deliveries: %w", len(cs), err)
	}
	return nil
}

// completeOnce is one statement of CompleteAll; cs name distinct
// deliveries, in lock order. The CTEs read one another so that they run,
// and lock, in the store's lock order: deliveries by ascending seq, then
// the next of their keys, then endpoint health by endpoint id.
func (s *Store) completeOnce(ctx context.Context, tx pgx.Tx, cs []Completion, h healthDeltas, now time.Time) ([]Health, error) {
	n := len(cs)
	ds := make([]Delivery, n)
	var (
		number, firstAttempts = make([]int32, n), make([]int32, n)
		at                    = make([]time.Time, n)
		dur                   = make([]int64, n)
		resp, headers         = make([]string, n), make([]string, n)
		unlogged              = make([]bool, n)
	)
	for i, c := range cs {
		d := c.Delivery
		d.ID = completionID(&c)
		d.Status = c.Outcome.Status
		d.NextAttemptAt = c.Outcome.NextAttemptAt
		d.LastStatus, d.LastError = c.Attempt.StatusCode, c.Attempt.Error
		ds[i] = d
		number[i] = int32(c.Attempt.Number)
		firstAttempts[i] = int32(c.Attempt.Number)
		if firstAttempts[i] <= 0 {
			firstAttempts[i] = int32(c.Delivery.Attempts + 1)
		}
		at[i] = attemptedAt(&c, now)
		dur[i] = c.Attempt.Duration.Microseconds()
		resp[i] = c.Attempt.Response
		headers[i] = headersJSON(c.Attempt.RequestHeaders)
		unlogged[i] = c.Unlogged && c.Outcome.Status == StatusDelivered
	}
	da := newDeliveryArrays(ds, StatusPending, 0)
	da.attempts = firstAttempts
	q := s.sql(`WITH u AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bytea[],
		$8::timestamptz[], $9::bigint[], $10::text[], $11::int[], $12::timestamptz[], $13::int[], $14::text[], $15::int[],
		$16::int[], $17::timestamptz[], $18::bigint[], $19::text[], $20::text[], $26::bool[])
	WITH ORDINALITY AS u(id, event_id, event_type, endpoint_id, key, tenant, body,
		event_time, commit_lsn, status, attempts, next_attempt_at, last_status, last_error, position,
		number, attempted_at, duration_us, response, headers, unlogged, ord)
), d AS (
	INSERT INTO {s}.deliveries AS d (id, event_id, event_type, endpoint_id, key, tenant, body, event_time,
		commit_lsn, status, attempts, next_attempt_at, last_status, last_error, position)
	SELECT id, event_id, event_type, endpoint_id, key, tenant, body, event_time,
		commit_lsn, status, attempts, coalesce(next_attempt_at, now()), last_status, last_error, position
	FROM u ORDER BY ord
	ON CONFLICT (id) DO UPDATE SET status = excluded.status, attempts = d.attempts + 1,
		next_attempt_at = excluded.next_attempt_at, last_status = excluded.last_status,
		last_error = excluded.last_error, updated_at = now(), claimed_by = NULL
	WHERE (d.status <> 'delivered' OR excluded.status = 'delivered')
	  -- Completing the same attempt again (a retry after an unknown commit
	  -- outcome) changes nothing.
	  AND NOT EXISTS (SELECT 1 FROM u JOIN {s}.attempts x
		ON x.delivery_id = u.id AND x.number = nullif(u.number, 0) AND x.attempted_at = u.attempted_at
		WHERE u.id = excluded.id)
	  -- An unlogged success leaves no attempt row to recognise a repeat by.
	  AND NOT (d.status = 'delivered' AND EXISTS (SELECT 1 FROM u WHERE u.id = excluded.id AND u.unlogged))
	RETURNING d.id, d.endpoint_id, d.key, d.attempts, d.commit_lsn, d.position, d.seq, d.status
), wake AS (
	-- A keyed delivery leaves pending: the next of its key, parked by
	-- ClaimDue, may go now.
	UPDATE {s}.deliveries w SET next_attempt_at = now()
	WHERE w.next_attempt_at > now() AND w.id IN (
		SELECT (SELECT e.id FROM {s}.deliveries e
			WHERE e.status = 'pending' AND e.endpoint_id = d.endpoint_id AND e.key = d.key
			  AND (e.commit_lsn, e.position, e.seq) > (d.commit_lsn, d.position, d.seq)
			ORDER BY e.commit_lsn, e.position, e.seq LIMIT 1)
		FROM d WHERE d.key <> '' AND d.status <> 'pending')
	RETURNING 1
), a AS (
	INSERT INTO {s}.attempts (delivery_id, event_id, event_type, endpoint_id, number, attempted_at,
		duration, status_code, error, response, request_headers)
	SELECT u.id, u.event_id, u.event_type, u.endpoint_id, coalesce(nullif(u.number, 0), d.attempts, u.attempts),
		u.attempted_at, u.duration_us * interval '1 microsecond', u.last_status, u.last_error, u.response,
		nullif(u.headers, '')::jsonb
	FROM u LEFT JOIN d ON d.id = u.id
	WHERE NOT u.unlogged
	ORDER BY u.ord
	` + attemptOnce + `
	RETURNING 1
)
INSERT INTO {s}.endpoint_health AS h (endpoint_id, consecutive_failures, failing_since, last_success_at, last_failure_at)
SELECT g.endpoint_id, g.failures, g.failing_since, g.last_success_at, g.last_failure_at
FROM unnest($21::text[], $22::int[], $23::timestamptz[], $24::timestamptz[], $25::timestamptz[])
	AS g(endpoint_id, failures, failing_since, last_success_at, last_failure_at),
	(SELECT count(*) FROM wake) w, (SELECT count(*) FROM a) n
ORDER BY g.endpoint_id
ON CONFLICT (endpoint_id) DO UPDATE SET
	-- A success in this call resets the count to the failures after it;
	-- otherwise its failures add to the count.
	consecutive_failures = CASE WHEN excluded.last_success_at IS NOT NULL THEN excluded.consecutive_failures
		ELSE h.consecutive_failures + excluded.consecutive_failures END,
	failing_since = CASE WHEN excluded.last_success_at IS NOT NULL THEN excluded.failing_since
		ELSE coalesce(h.failing_since, excluded.failing_since) END,
	last_success_at = coalesce(excluded.last_success_at, h.last_success_at),
	last_failure_at = coalesce(excluded.last_failure_at, h.last_failure_at)
RETURNING ` + healthColumns)
	args := append(da.args(), number, at, dur, resp, headers,
		h.endpointID, h.failures, h.failingSince, h.lastSuccess, h.lastFailure, unlogged)
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Health, error) { return s.scanHealth(r) })
}

// attemptedAt is when c's attempt was made; now when not recorded.
func attemptedAt(c *Completion, now time.Time) time.Time {
	if c.Attempt.AttemptedAt.IsZero() {
		return now
	}
	return c.Attempt.AttemptedAt
}

// healthDeltas is what a call's completions say of each endpoint's health,
// column by column: its failures after its last success (all of them when
// none succeeded), the first of those, its last success and last failure.
// The same attempt given twice counts once.
type healthDeltas struct {
	endpointID                             []string
	failures                               []int32
	failingSince, lastSuccess, lastFailure []pgtype.Timestamptz
}

func newHealthDeltas(cs []Completion, now time.Time) healthDeltas {
	type delta struct {
		failures                          int32
		failingSince, success, lastFailed time.Time
	}
	type attemptKey struct {
		delivery string
		number   int
		at       time.Time
	}
	at := make([]time.Time, len(cs))
	seen := map[attemptKey]bool{}
	var order []int
	for i := range cs {
		at[i] = attemptedAt(&cs[i], now)
		k := attemptKey{completionID(&cs[i]), cs[i].Attempt.Number, at[i]}
		if cs[i].Attempt.Number > 0 && seen[k] {
			continue
		}
		seen[k] = true
		order = append(order, i)
	}
	slices.SortStableFunc(order, func(i, j int) int { return at[i].Compare(at[j]) })
	byEndpoint := map[string]*delta{}
	var ids []string
	for _, i := range order {
		id := cs[i].Delivery.EndpointID
		d := byEndpoint[id]
		if d == nil {
			d = &delta{}
			byEndpoint[id] = d
			ids = append(ids, id)
		}
		if cs[i].Outcome.Status == StatusDelivered {
			d.success, d.failures, d.failingSince = at[i], 0, time.Time{}
			continue
		}
		if d.failures == 0 {
			d.failingSince = at[i]
		}
		d.failures++
		d.lastFailed = at[i]
	}
	slices.Sort(ids)
	h := healthDeltas{}
	for _, id := range ids {
		d := byEndpoint[id]
		h.endpointID = append(h.endpointID, id)
		h.failures = append(h.failures, d.failures)
		h.failingSince = append(h.failingSince, timestamptz(d.failingSince))
		h.lastSuccess = append(h.lastSuccess, timestamptz(d.success))
		h.lastFailure = append(h.lastFailure, timestamptz(d.lastFailed))
	}
	return h
}
