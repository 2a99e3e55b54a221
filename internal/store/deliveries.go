package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// deliveryColumns is the column list scanDelivery reads, in order.
const deliveryColumns = `id, event_id, event_type, endpoint_id, key, tenant, body, event_time,
	commit_lsn, position, seq, status, attempts, next_attempt_at, last_status, last_error, created_at, updated_at`

// prefixed returns deliveryColumns qualified with a table alias.
func prefixedDeliveryColumns(alias string) string {
	return alias + ".id, " + alias + ".event_id, " + alias + ".event_type, " + alias + ".endpoint_id, " +
		alias + ".key, " + alias + ".tenant, " + alias + ".body, " + alias + ".event_time, " +
		alias + ".commit_lsn, " + alias + ".position, " + alias + ".seq, " + alias + ".status, " + alias + ".attempts, " +
		alias + ".next_attempt_at, " + alias + ".last_status, " + alias + ".last_error, " +
		alias + ".created_at, " + alias + ".updated_at"
}

// scanDelivery reads one row of deliveryColumns; lead, when given, are
// scanned first from columns that come before them.
func scanDelivery(row pgx.Row, lead ...any) (Delivery, error) {
	var d Delivery
	var lsn int64
	var status string
	err := row.Scan(append(lead, &d.ID, &d.EventID, &d.EventType, &d.EndpointID, &d.Key, &d.Tenant, &d.Body, &d.EventTime,
		&lsn, &d.Position, &d.Seq, &status, &d.Attempts, &d.NextAttemptAt, &d.LastStatus, &d.LastError, &d.CreatedAt, &d.UpdatedAt)...)
	d.CommitLSN = uint64(lsn)
	d.Status = Status(status)
	return d, err
}

func collectDeliveries(rows pgx.Rows) ([]Delivery, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Delivery, error) { return scanDelivery(r) })
}

// deliveryArrays holds a batch of deliveries column by column, for unnest.
type deliveryArrays struct {
	id, eventID, eventType, endpointID, key, tenant []string
	body                                            [][]byte
	eventTime                                       []time.Time
	lsn                                             []int64
	position                                        []int32
	status                                          []string
	attempts                                        []int32
	next                                            []pgtype.Timestamptz
	lastStatus                                      []int32
	lastError                                       []string
}

func newDeliveryArrays(ds []Delivery, defaultStatus Status, minAttempts int) *deliveryArrays {
	n := len(ds)
	a := &deliveryArrays{
		id: make([]string, n), eventID: make([]string, n), eventType: make([]string, n),
		endpointID: make([]string, n), key: make([]string, n), tenant: make([]string, n),
		body: make([][]byte, n), eventTime: make([]time.Time, n), lsn: make([]int64, n), position: make([]int32, n),
		status: make([]string, n), attempts: make([]int32, n), next: make([]pgtype.Timestamptz, n),
		lastStatus: make([]int32, n), lastError: make([]string, n),
	}
	for i, d := range ds {
		a.id[i] = d.ID
		if a.id[i] == "" {
			a.id[i] = DeliveryID(d.EventID, d.EndpointID)
		}
		a.eventID[i], a.eventType[i], a.endpointID[i] = d.EventID, d.EventType, d.EndpointID
		a.key[i], a.tenant[i] = d.Key, d.Tenant
		a.body[i] = d.Body
		if a.body[i] == nil {
			a.body[i] = []byte{}
		}
		a.eventTime[i] = d.EventTime
		a.lsn[i] = int64(d.CommitLSN)
		a.position[i] = int32(d.Position)
		a.status[i] = string(d.Status)
		if a.status[i] == "" {
			a.status[i] = string(defaultStatus)
		}
		a.attempts[i] = int32(max(d.Attempts, minAttempts))
		a.next[i] = timestamptz(d.NextAttemptAt)
		a.lastStatus[i] = int32(d.LastStatus)
		a.lastError[i] = d.LastError
	}
	return a
}

func (a *deliveryArrays) args() []any {
	return []any{a.id, a.eventID, a.eventType, a.endpointID, a.key, a.tenant, a.body, a.eventTime,
		a.lsn, a.status, a.attempts, a.next, a.lastStatus, a.lastError, a.position}
}

// insertDeliveries inserts the unnested arrays $1..$15 in slice order (so
// seq follows it), leaving rows that already exist untouched.
const insertDeliveries = `INSERT INTO {s}.deliveries (id, event_id, event_type, endpoint_id, key, tenant, body,
	event_time, commit_lsn, position, status, attempts, next_attempt_at, last_status, last_error)
SELECT id, event_id, event_type, endpoint_id, key, tenant, body,
	event_time, commit_lsn, position, status, attempts, coalesce(next_attempt_at, now()), last_status, last_error
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bytea[],
	$8::timestamptz[], $9::bigint[], $10::text[], $11::int[], $12::timestamptz[], $13::int[], $14::text[], $15::int[])
	WITH ORDINALITY AS u(id, event_id, event_type, endpoint_id, key, tenant, body,
	event_time, commit_lsn, status, attempts, next_attempt_at, last_status, last_error, position, ord)
ORDER BY ord
ON CONFLICT (id) DO NOTHING`

// Persist stores deliveries in one round trip. A delivery whose id is
// already stored is left as it is, so replaying a batch after a crash
// neither duplicates nor resets rows. An empty ID is filled with
// DeliveryID, an empty Status is pending and a zero NextAttemptAt is now.
// Within the batch, slice order is commit order for keyed deliveries.
func (s *Store) Persist(ctx context.Context, ds []Delivery) error {
	return s.persist(ctx, s.pool, ds)
}

// execer is what a statement runs on: the pool, or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func (s *Store) persist(ctx context.Context, db execer, ds []Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	a := newDeliveryArrays(ds, StatusPending, 0)
	if _, err := db.Exec(ctx, s.sql(insertDeliveries), a.args()...); err != nil {
		return fmt.Errorf("persisting %d deliveries: %w", len(ds), err)
	}
	return s.recordBatches(ctx, db, ds)
}

// persistClaiming is persist for a write with claimed deliveries (Claim):
// they are inserted leased to this instance, and those inserted (not
// already stored) come back with their seq.
func (s *Store) persistClaiming(ctx context.Context, db pgx.Tx, ds []Delivery) ([]Delivery, error) {
	a := newDeliveryArrays(ds, StatusPending, 0)
	claim := make([]bool, len(ds))
	for i, d := range ds {
		claim[i] = d.Claim
	}
	rows, err := db.Query(ctx, s.sql(`INSERT INTO {s}.deliveries (id, event_id, event_type, endpoint_id, key, tenant, body,
	event_time, commit_lsn, position, status, attempts, next_attempt_at, last_status, last_error, claimed_by)
SELECT id, event_id, event_type, endpoint_id, key, tenant, body,
	event_time, commit_lsn, position, status, attempts, coalesce(next_attempt_at, now()), last_status, last_error,
	CASE WHEN claim THEN nullif($17, '') END
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bytea[],
	$8::timestamptz[], $9::bigint[], $10::text[], $11::int[], $12::timestamptz[], $13::int[], $14::text[], $15::int[], $16::bool[])
	WITH ORDINALITY AS u(id, event_id, event_type, endpoint_id, key, tenant, body,
	event_time, commit_lsn, status, attempts, next_attempt_at, last_status, last_error, position, claim, ord)
ORDER BY ord
ON CONFLICT (id) DO NOTHING
RETURNING id, seq`), append(a.args(), claim, s.instanceID())...)
	if err != nil {
		return nil, fmt.Errorf("persisting %d deliveries: %w", len(ds), err)
	}
	inserted := map[string]int64{}
	var (
		id  string
		seq int64
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &seq}, func() error {
		inserted[id] = seq
		return nil
	}); err != nil {
		return nil, fmt.Errorf("persisting %d deliveries: %w", len(ds), err)
	}
	var out []Delivery
	for i, d := range ds {
		if seq, ok := inserted[a.id[i]]; ok && d.Claim {
			d.ID, d.Seq, d.Status = a.id[i], seq, StatusPending
			out = append(out, d)
		}
	}
	return out, s.recordBatches(ctx, db, ds)
}

// Outcome is what an attempt leaves a delivery as.
type Outcome struct {
	Status        Status    // delivered, pending (retry later) or failed
	NextAttemptAt time.Time // when pending; zero means now
}

// LogAttempts records first attempts that succeeded in memory (log_attempts
// = "all"): their deliveries (status delivered unless set; existing rows
// untouched) and the attempts, in one round trip.
func (s *Store) LogAttempts(ctx context.Context, ds []Delivery, as []Attempt) error {
	return s.logAttempts(ctx, s.pool, ds, as)
}

func (s *Store) logAttempts(ctx context.Context, db execer, ds []Delivery, as []Attempt) error {
	if len(ds) == 0 && len(as) == 0 {
		return nil
	}
	da := newDeliveryArrays(ds, StatusDelivered, 1)
	n := len(as)
	var (
		deliveryID, eventID, eventType, endpointID, errs, resp = make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		number, code = make([]int32, n), make([]int32, n)
		headers      = make([]string, n)
		at           = make([]time.Time, n)
		dur          = make([]int64, n)
	)
	now := time.Now()
	for i, a := range as {
		deliveryID[i] = a.DeliveryID
		if deliveryID[i] == "" {
			deliveryID[i] = DeliveryID(a.EventID, a.EndpointID)
		}
		eventID[i], eventType[i], endpointID[i] = a.EventID, a.EventType, a.EndpointID
		number[i] = int32(max(a.Number, 1))
		at[i] = a.AttemptedAt
		if at[i].IsZero() {
			at[i] = now
		}
		dur[i] = a.Duration.Microseconds()
		code[i] = int32(a.StatusCode)
		errs[i], resp[i] = a.Error, a.Response
		headers[i] = headersJSON(a.RequestHeaders)
	}
	q := s.sql(`WITH d AS (` + insertDeliveries + `)
INSERT INTO {s}.attempts (delivery_id, event_id, event_type, endpoint_id, number, attempted_at,
	duration, status_code, error, response, request_headers)
SELECT delivery_id, event_id, event_type, endpoint_id, number, attempted_at,
	duration_us * interval '1 microsecond', status_code, error, response, nullif(headers, '')::jsonb
FROM unnest($16::text[], $17::text[], $18::text[], $19::text[], $20::int[], $21::timestamptz[],
	$22::bigint[], $23::int[], $24::text[], $25::text[], $26::text[])
	AS u(delivery_id, event_id, event_type, endpoint_id, number, attempted_at, duration_us, status_code, error, response, headers)
` + attemptOnce)
	args := append(da.args(), deliveryID, eventID, eventType, endpointID, number, at, dur, code, errs, resp, headers)
	if _, err := db.Exec(ctx, q, args...); err != nil {
		return fmt.Errorf("logging %d attempts: %w", len(as), err)
	}
	return nil
}

// headersJSON is an attempt's request headers as a JSON object; empty
// (stored as NULL) when none were recorded.
func headersJSON(h map[string]string) string {
	if h == nil {
		return ""
	}
	b, err := json.Marshal(h)
	if err != nil { // a map of strings always marshals
		return ""
	}
	return string(b)
}

// attemptOnce makes logging an attempt idempotent (migration 003): a batch
// written again after an unknown commit outcome logs each attempt once.
const attemptOnce = `ON CONFLICT (delivery_id, number, attempted_at) DO NOTHING`

// HasPending reports whether the endpoint has a pending delivery with key.
func (s *Store) HasPending(ctx context.Context, endpointID, key string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, s.sql(`SELECT EXISTS (SELECT 1 FROM {s}.deliveries
		WHERE status = 'pending' AND endpoint_id = $1 AND key = $2)`), endpointID, key).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("checking pending deliveries of %s: %w", endpointID, err)
	}
	return ok, nil
}

// FailPending marks every pending delivery of an endpoint failed with
// reason as its last error, and returns how many there were.
func (s *Store) FailPending(ctx context.Context, endpointID, reason string) (int64, error) {
	tag, err := s.pool.Exec(ctx, s.sql(failPending), endpointID, reason)
	if err != nil {
		return 0, fmt.Errorf("failing pending deliveries of %s: %w", endpointID, err)
	}
	return tag.RowsAffected(), nil
}

// failPending fails an endpoint's pending deliveries, locking them by
// ascending seq (the store's lock order).
const failPending = `UPDATE {s}.deliveries SET status = 'failed', last_error = $2, updated_at = now()
WHERE id IN (SELECT id FROM {s}.deliveries WHERE status = 'pending' AND endpoint_id = $1 ORDER BY seq FOR UPDATE)`

// timestamptz is t as a nullable timestamptz: NULL when zero.
func timestamptz(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}
