package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// BackfillStatus is a backfill's state.
type BackfillStatus string

// Backfill states. A backfill runs from pending to completed, failed or
// cancelled; paused stops it until resumed (back to pending).
const (
	BackfillPending   BackfillStatus = "pending"
	BackfillRunning   BackfillStatus = "running"
	BackfillPaused    BackfillStatus = "paused"
	BackfillCompleted BackfillStatus = "completed"
	BackfillCancelled BackfillStatus = "cancelled"
	BackfillFailed    BackfillStatus = "failed"
)

// Finished reports whether the backfill will not run again.
func (s BackfillStatus) Finished() bool {
	return s == BackfillCompleted || s == BackfillCancelled || s == BackfillFailed
}

// Backfill is a request to send a table's existing rows as events, and its
// progress.
type Backfill struct {
	ID    string
	Table string // "schema.table"
	Where string // SQL condition; empty for every row
	// Event limits the backfill to one rule; empty for every rule that
	// lists read.
	Event string
	// EndpointID limits delivery to one endpoint; empty for every
	// subscriber.
	EndpointID string
	// IDSeed goes into every event id of the backfill (see event.NewReadID).
	IDSeed    string
	Rate      int // rows per second; 0 for no limit
	ChunkSize int
	Status    BackfillStatus
	// RowsTotal is the number of rows to read, counted when the backfill
	// started (an estimate when TotalExact is false); nil before.
	RowsTotal  *int64
	TotalExact bool
	// RowsDone counts the rows read in settled chunks; RowsSent those of
	// them that went out as read rows (the others were changed by the
	// stream meanwhile, which sent them).
	RowsDone   int64
	RowsSent   int64
	LastKey    []string // nil before the first settled chunk
	LastError  string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	StartedAt  *time.Time
	FinishedAt *time.Time
}

const backfillColumns = `id, table_name, where_sql, event, endpoint_id, id_seed, rate, chunk_size, status,
	rows_total, total_exact, rows_done, rows_sent, last_key, last_error, created_at, updated_at, started_at, finished_at`

func scanBackfill(row pgx.Row) (Backfill, error) {
	var b Backfill
	err := row.Scan(&b.ID, &b.Table, &b.Where, &b.Event, &b.EndpointID, &b.IDSeed, &b.Rate, &b.ChunkSize, &b.Status,
		&b.RowsTotal, &b.TotalExact, &b.RowsDone, &b.RowsSent, &b.LastKey, &b.LastError, &b.CreatedAt, &b.UpdatedAt,
		&b.StartedAt, &b.FinishedAt)
	return b, err
}

// NewBackfillID returns a random backfill id: "bf_" and 26 base32
// characters.
func NewBackfillID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return idText("bf_", b[:])
}

// CreateBackfill stores a new pending backfill, with a generated id when
// b.ID is empty, and its row count when b.RowsTotal is set.
func (s *Store) CreateBackfill(ctx context.Context, b Backfill) (Backfill, error) {
	if b.ID == "" {
		b.ID = NewBackfillID()
	}
	out, err := scanBackfill(s.pool.QueryRow(ctx, s.sql(`INSERT INTO {s}.backfills
		(id, table_name, where_sql, event, endpoint_id, id_seed, rate, chunk_size, rows_total, total_exact)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING `+backfillColumns),
		b.ID, b.Table, b.Where, b.Event, b.EndpointID, b.IDSeed, b.Rate, b.ChunkSize, b.RowsTotal, b.TotalExact))
	if err != nil {
		return Backfill{}, fmt.Errorf("creating backfill %s: %w", b.ID, err)
	}
	return out, nil
}

// GetBackfill returns one backfill, or ErrNotFound.
func (s *Store) GetBackfill(ctx context.Context, id string) (Backfill, error) {
	b, err := scanBackfill(s.pool.QueryRow(ctx, s.sql(`SELECT `+backfillColumns+` FROM {s}.backfills WHERE id = $1`), id))
	if err != nil {
		return Backfill{}, fmt.Errorf("reading backfill %s: %w", id, notFound(err))
	}
	return b, nil
}

// ListBackfills returns the backfills, newest first, at most limit.
func (s *Store) ListBackfills(ctx context.Context, limit int) ([]Backfill, error) {
	rows, err := s.pool.Query(ctx, s.sql(`SELECT `+backfillColumns+` FROM {s}.backfills
		ORDER BY created_at DESC, id DESC LIMIT $1`), limit)
	if err != nil {
		return nil, fmt.Errorf("listing backfills: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Backfill, error) { return scanBackfill(r) })
	if err != nil {
		return nil, fmt.Errorf("listing backfills: %w", err)
	}
	return out, nil
}

// UnfinishedBackfill returns a pending, running or paused backfill with
// the id seed given (one that sends the same rows under the same ids), or
// ErrNotFound.
func (s *Store) UnfinishedBackfill(ctx context.Context, idSeed string) (Backfill, error) {
	b, err := scanBackfill(s.pool.QueryRow(ctx, s.sql(`SELECT `+backfillColumns+` FROM {s}.backfills
		WHERE id_seed = $1 AND status IN ('pending', 'running', 'paused') ORDER BY created_at LIMIT 1`), idSeed))
	if err != nil {
		return Backfill{}, fmt.Errorf("looking for an unfinished backfill: %w", notFound(err))
	}
	return b, nil
}

// NextBackfill marks the oldest pending or running backfill running and
// returns it, leaving out the ids in skip (backfills waiting to retry);
// ErrNotFound when there is none.
//
// The status is tested again outside the subquery: when a pause or cancel
// holds the row's lock, the update waits for it and then rechecks only
// its own WHERE against the new row, never the subquery, so without that
// test a paused backfill would be set running again.
func (s *Store) NextBackfill(ctx context.Context, skip ...string) (Backfill, error) {
	b, err := scanBackfill(s.pool.QueryRow(ctx, s.sql(`UPDATE {s}.backfills
		SET status = 'running', started_at = coalesce(started_at, now()), updated_at = now()
		WHERE id = (SELECT id FROM {s}.backfills WHERE status IN ('pending', 'running') AND id <> ALL($1::text[])
			ORDER BY created_at, id LIMIT 1)
		  AND status IN ('pending', 'running')
		RETURNING `+backfillColumns), append([]string{}, skip...)))
	if err != nil {
		return Backfill{}, fmt.Errorf("claiming the next backfill: %w", notFound(err))
	}
	return b, nil
}

// SetBackfillTotal records the number of rows to read.
func (s *Store) SetBackfillTotal(ctx context.Context, id string, total int64, exact bool) error {
	_, err := s.pool.Exec(ctx, s.sql(`UPDATE {s}.backfills SET rows_total = $2, total_exact = $3, updated_at = now()
		WHERE id = $1`), id, total, exact)
	if err != nil {
		return fmt.Errorf("recording the row count of backfill %s: %w", id, err)
	}
	return nil
}

// RecordBackfillChunk records a settled chunk: the last key read and the
// rows read and sent so far. It returns the backfill's status, which
// another process (the API) may have changed.
func (s *Store) RecordBackfillChunk(ctx context.Context, id string, lastKey []string, done, sent int64) (BackfillStatus, error) {
	var st BackfillStatus
	err := s.pool.QueryRow(ctx, s.sql(`UPDATE {s}.backfills
		SET last_key = $2, rows_done = $3, rows_sent = $4, last_error = '', updated_at = now()
		WHERE id = $1 RETURNING status`), id, lastKey, done, sent).Scan(&st)
	if err != nil {
		return "", fmt.Errorf("recording progress of backfill %s: %w", id, notFound(err))
	}
	return st, nil
}

// BackfillStatusOf returns a backfill's status.
func (s *Store) BackfillStatusOf(ctx context.Context, id string) (BackfillStatus, error) {
	var st BackfillStatus
	err := s.pool.QueryRow(ctx, s.sql(`SELECT status FROM {s}.backfills WHERE id = $1`), id).Scan(&st)
	if err != nil {
		return "", fmt.Errorf("reading the status of backfill %s: %w", id, notFound(err))
	}
	return st, nil
}

// ErrBackfillState is returned when a backfill cannot move to the status
// asked for from the one it is in.
var ErrBackfillState = errors.New("backfill is not in a state that allows this")

// SetBackfillStatus moves a backfill to status if it is in one of from,
// recording lastError, and returns it. It returns ErrBackfillState (with
// the backfill as it is) when the backfill is in another status, and
// ErrNotFound when there is none.
func (s *Store) SetBackfillStatus(ctx context.Context, id string, status BackfillStatus, lastError string, from ...BackfillStatus) (Backfill, error) {
	fromText := make([]string, len(from))
	for i, f := range from {
		fromText[i] = string(f)
	}
	b, err := scanBackfill(s.pool.QueryRow(ctx, s.sql(`UPDATE {s}.backfills
		SET status = $2, last_error = $3, updated_at = now(),
			finished_at = CASE WHEN $2 IN ('completed', 'cancelled', 'failed') THEN now() END
		WHERE id = $1 AND status = ANY($4) RETURNING `+backfillColumns), id, status, lastError, fromText))
	if err == nil {
		return b, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Backfill{}, fmt.Errorf("setting backfill %s %s: %w", id, status, err)
	}
	cur, gerr := s.GetBackfill(ctx, id)
	if gerr != nil {
		return Backfill{}, gerr
	}
	return cur, fmt.Errorf("backfill %s is %s: %w", id, cur.Status, ErrBackfillState)
}
