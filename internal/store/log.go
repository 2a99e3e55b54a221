package store

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// ErrBadCursor is returned when a pagination cursor was not made by the store.
var ErrBadCursor = errors.New("invalid cursor")

// Listing limits.
const (
	DefaultListLimit = 50
	MaxListLimit     = 1000
)

// DeliveryFilter selects deliveries for ListDeliveries. Empty fields do
// not filter.
type DeliveryFilter struct {
	EndpointID string
	// EndpointIDs, when not nil, limits the deliveries to these endpoints
	// (none when empty).
	EndpointIDs []string
	Status      string
	EventType   string
	Tenant      string
	Since       time.Time // created at or after
	Until       time.Time // created before
	Limit       int       // DefaultListLimit when 0, at most MaxListLimit
	Cursor      string    // from a previous page
}

// ListDeliveries returns deliveries newest first and, when there are more,
// the cursor of the next page (empty on the last page).
func (s *Store) ListDeliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, string, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.EndpointID != "" {
		where = append(where, "endpoint_id = "+arg(f.EndpointID))
	}
	if f.EndpointIDs != nil {
		where = append(where, "endpoint_id = ANY("+arg(f.EndpointIDs)+")")
	}
	if f.Status != "" {
		where = append(where, "status = "+arg(f.Status))
	}
	if f.EventType != "" {
		where = append(where, "event_type = "+arg(f.EventType))
	}
	if f.Tenant != "" {
		where = append(where, "tenant = "+arg(f.Tenant))
	}
	if !f.Since.IsZero() {
		where = append(where, "created_at >= "+arg(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, "created_at < "+arg(f.Until))
	}
	if f.Cursor != "" {
		at, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "(created_at, id) < ("+arg(at)+", "+arg(id)+")")
	}
	limit := listLimit(f.Limit)
	q := `SELECT ` + deliveryColumns + ` FROM {s}.deliveries`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created_at DESC, id DESC LIMIT " + arg(limit+1)
	rows, err := s.pool.Query(ctx, s.sql(q), args...)
	if err != nil {
		return nil, "", fmt.Errorf("listing deliveries: %w", err)
	}
	ds, err := collectDeliveries(rows)
	if err != nil {
		return nil, "", fmt.Errorf("listing deliveries: %w", err)
	}
	next := ""
	if len(ds) > limit {
		ds = ds[:limit]
		last := ds[limit-1]
		next = encodeCursor(last.CreatedAt, last.ID)
	}
	return ds, next, nil
}

// GetDelivery returns one delivery, or ErrNotFound.
func (s *Store) GetDelivery(ctx context.Context, id string) (Delivery, error) {
	d, err := scanDelivery(s.pool.QueryRow(ctx, s.sql(`SELECT `+deliveryColumns+` FROM {s}.deliveries WHERE id = $1`), id))
	if err != nil {
		return Delivery{}, fmt.Errorf("reading delivery %s: %w", id, notFound(err))
	}
	return d, nil
}

// ListAttempts returns the attempts of the given deliveries, newest first
// for each delivery.
func (s *Store) ListAttempts(ctx context.Context, deliveryIDs []string) (map[string][]Attempt, error) {
	out := make(map[string][]Attempt, len(deliveryIDs))
	if len(deliveryIDs) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, s.sql(`SELECT id, delivery_id, event_id, event_type, endpoint_id, number,
		attempted_at, duration, status_code, error, response, request_headers
		FROM {s}.attempts WHERE delivery_id = ANY($1)
		ORDER BY delivery_id, attempted_at DESC, id DESC`), deliveryIDs)
	if err != nil {
		return nil, fmt.Errorf("listing attempts: %w", err)
	}
	var a Attempt
	var dur pgtype.Interval
	_, err = pgx.ForEachRow(rows, []any{&a.ID, &a.DeliveryID, &a.EventID, &a.EventType, &a.EndpointID, &a.Number,
		&a.AttemptedAt, &dur, &a.StatusCode, &a.Error, &a.Response, &a.RequestHeaders}, func() error {
		a.Duration = time.Duration(dur.Microseconds+(int64(dur.Days)+int64(dur.Months)*30)*86400e6) * time.Microsecond
		out[a.DeliveryID] = append(out[a.DeliveryID], a)
		a.RequestHeaders = nil // the next row decodes into a map of its own
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing attempts: %w", err)
	}
	return out, nil
}

// Retry makes a delivery, whatever its status, pending and due now. Its
// attempt count is kept, so the new attempt continues the numbering (in
// the attempts log and the Webhook-Attempt header) and the rest of its
// retry schedule: a delivery whose schedule is spent gets this one
// attempt. A delivery held back by its key waits for the key's earlier
// ones. It returns ErrNotFound when there is no such delivery.
func (s *Store) Retry(ctx context.Context, deliveryID string) (Delivery, error) {
	d, err := scanDelivery(s.pool.QueryRow(ctx, s.sql(`UPDATE {s}.deliveries
		SET status = 'pending', next_attempt_at = now(), updated_at = now()
		WHERE id = $1 RETURNING `+deliveryColumns), deliveryID))
	if err != nil {
		return Delivery{}, fmt.Errorf("retrying delivery %s: %w", deliveryID, notFound(err))
	}
	return d, nil
}

// Recover makes the endpoint's failed deliveries created at or after since
// pending and due now, with fresh schedules, and returns how many.
func (s *Store) Recover(ctx context.Context, endpointID string, since time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, s.sql(`UPDATE {s}.deliveries
		SET status = 'pending', attempts = 0, next_attempt_at = now(), updated_at = now()
		WHERE id IN (SELECT id FROM {s}.deliveries WHERE status = 'failed' AND endpoint_id = $1 AND created_at >= $2
			ORDER BY seq FOR UPDATE)`), endpointID, since)
	if err != nil {
		return 0, fmt.Errorf("recovering deliveries of %s: %w", endpointID, err)
	}
	return tag.RowsAffected(), nil
}

// QueueStats sums up the retry queue.
type QueueStats struct {
	Pending    int64
	Due        int64 // pending and due now (including leased rows whose lease ended)
	Failed     int64
	OldestDue  *time.Time // earliest next attempt among due rows; nil when none
	ByEndpoint map[string]EndpointQueue
}

// EndpointQueue is one endpoint's share of the retry queue.
type EndpointQueue struct {
	Pending int64
	Due     int64
	Failed  int64
}

// Stats counts pending, due and failed deliveries, in all and by endpoint.
func (s *Store) Stats(ctx context.Context) (QueueStats, error) {
	rows, err := s.pool.Query(ctx, s.sql(`
	SELECT endpoint_id, count(*), count(*) FILTER (WHERE next_attempt_at <= now()),
		0::bigint, min(next_attempt_at) FILTER (WHERE next_attempt_at <= now())
	FROM {s}.deliveries WHERE status = 'pending' GROUP BY endpoint_id
	UNION ALL
	SELECT endpoint_id, 0, 0, count(*), NULL
	FROM {s}.deliveries WHERE status = 'failed' GROUP BY endpoint_id`))
	if err != nil {
		return QueueStats{}, fmt.Errorf("reading queue stats: %w", err)
	}
	st := QueueStats{ByEndpoint: map[string]EndpointQueue{}}
	var (
		ep                   string
		pending, due, failed int64
		oldest               *time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&ep, &pending, &due, &failed, &oldest}, func() error {
		q := st.ByEndpoint[ep]
		q.Pending += pending
		q.Due += due
		q.Failed += failed
		st.ByEndpoint[ep] = q
		st.Pending += pending
		st.Due += due
		st.Failed += failed
		if oldest != nil && (st.OldestDue == nil || oldest.Before(*st.OldestDue)) {
			t := *oldest
			st.OldestDue = &t
		}
		return nil
	})
	if err != nil {
		return QueueStats{}, fmt.Errorf("reading queue stats: %w", err)
	}
	return st, nil
}

func listLimit(n int) int {
	if n <= 0 {
		return DefaultListLimit
	}
	return min(n, MaxListLimit)
}

// encodeCursor makes an opaque keyset cursor from a row's created_at and id.
func encodeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at.UnixMicro(), 10) + ":" + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", ErrBadCursor
	}
	us, id, ok := strings.Cut(string(b), ":")
	if !ok {
		return time.Time{}, "", ErrBadCursor
	}
	n, err := strconv.ParseInt(us, 10, 64)
	if err != nil {
		return time.Time{}, "", ErrBadCursor
	}
	return time.UnixMicro(n), id, nil
}
