package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

const healthColumns = `endpoint_id, consecutive_failures, failing_since, last_success_at, last_failure_at,
	disabled, disabled_at, disabled_reason, ` + limitsColumns

func (s *Store) scanHealth(row pgx.Row) (Health, error) {
	var h Health
	var pauseLeft, limitedAgo int64
	l := &h.Limits
	err := row.Scan(&h.EndpointID, &h.ConsecutiveFailures, &h.FailingSince, &h.LastSuccessAt, &h.LastFailureAt,
		&h.Disabled, &h.DisabledAt, &h.DisabledReason,
		&pauseLeft, &l.PausedBy, &l.Concurrency, &l.Rate, &l.LimitedBy, &l.Published, &limitedAgo)
	now := time.Now()
	if pauseLeft > 0 {
		l.PausedUntil = now.Add(time.Duration(pauseLeft) * time.Microsecond)
	}
	if l.Published != nil {
		l.LimitedAt = now.Add(-time.Duration(limitedAgo) * time.Microsecond)
	}
	l.Own = l.LimitedBy == s.instanceID()
	return h, err
}

// Health returns an endpoint's health; an endpoint never attempted has the
// zero Health (with its EndpointID set).
func (s *Store) Health(ctx context.Context, endpointID string) (Health, error) {
	row := s.pool.QueryRow(ctx, s.sql(`SELECT `+healthColumns+` FROM {s}.endpoint_health WHERE endpoint_id = $1`), endpointID)
	h, err := s.scanHealth(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return Health{EndpointID: endpointID}, nil
	}
	if err != nil {
		return Health{}, fmt.Errorf("reading health of %s: %w", endpointID, err)
	}
	return h, nil
}

// AllHealth returns the health of every endpoint that has one, by id.
func (s *Store) AllHealth(ctx context.Context) ([]Health, error) {
	rows, err := s.pool.Query(ctx, s.sql(`SELECT `+healthColumns+` FROM {s}.endpoint_health ORDER BY endpoint_id`))
	if err != nil {
		return nil, fmt.Errorf("reading endpoint health: %w", err)
	}
	hs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Health, error) { return s.scanHealth(r) })
	if err != nil {
		return nil, fmt.Errorf("reading endpoint health: %w", err)
	}
	return hs, nil
}

// Disable marks an endpoint disabled with reason. Disabling a disabled
// endpoint keeps its first DisabledAt and takes the new reason.
func (s *Store) Disable(ctx context.Context, endpointID, reason string) error {
	_, err := s.pool.Exec(ctx, s.sql(`INSERT INTO {s}.endpoint_health AS h (endpoint_id, disabled, disabled_at, disabled_reason)
		VALUES ($1, true, now(), $2)
		ON CONFLICT (endpoint_id) DO UPDATE SET disabled = true,
			disabled_at = coalesce(h.disabled_at, now()), disabled_reason = $2`), endpointID, reason)
	if err != nil {
		return fmt.Errorf("disabling endpoint %s: %w", endpointID, err)
	}
	return nil
}

// Enable re-enables an endpoint and clears its failure streak.
func (s *Store) Enable(ctx context.Context, endpointID string) error {
	_, err := s.pool.Exec(ctx, s.sql(`UPDATE {s}.endpoint_health SET disabled = false, disabled_at = NULL,
		disabled_reason = '', consecutive_failures = 0, failing_since = NULL WHERE endpoint_id = $1`), endpointID)
	if err != nil {
		return fmt.Errorf("enabling endpoint %s: %w", endpointID, err)
	}
	return nil
}
