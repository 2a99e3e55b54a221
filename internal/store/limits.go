package store

import (
	"context"
	"fmt"
	"time"
)

// ClusterLimits is what the instances sending to an endpoint published of
// its limits on its health row (docs/scaling.md, "Limits across the
// cluster"). Its times are on this host's clock: what was left of a pause,
// and how long ago the limits were published, are read with the
// database's clock and added to the time of the read, so the hosts' clocks
// need not agree.
type ClusterLimits struct {
	// PausedUntil is when a Retry-After pause ends; zero or past: none.
	PausedUntil time.Time
	PausedBy    string // the instance that saw the Retry-After
	// Concurrency and Rate are the adaptive concurrency limit and the rate
	// learned from 429s (requests/s) that LimitedBy published at LimitedAt,
	// scaled to the whole cluster; 0: none.
	Concurrency int
	Rate        float64
	LimitedBy   string
	LimitedAt   time.Time
	// Published is the database's time of the publication, which names
	// it; nil: never published.
	Published *time.Time
	// Own reports limits published by this process's instance (SetInstance).
	Own bool
}

// limitsColumns reads ClusterLimits from an endpoint_health row.
const limitsColumns = `greatest((extract(epoch FROM paused_until - now()) * 1e6)::bigint, 0), paused_by,
	cluster_limit, cluster_rate, limited_by, limited_at,
	coalesce((extract(epoch FROM now() - limited_at) * 1e6)::bigint, 0)`

// LimitsUpdate is what one instance publishes of an endpoint's limits.
type LimitsUpdate struct {
	// Pause, when positive, pauses the endpoint for that long from now
	// (the database's now); a longer pause in force stands.
	Pause time.Duration
	// Concurrency and Rate, when either is positive, replace the published
	// limits (cluster-wide values; 0 for either: none).
	Concurrency int
	Rate        float64
}

// PublishLimits records what this instance learned of an endpoint's
// limits, under its instance id (SetInstance): a pause, and its limits
// scaled to the cluster. ClaimDue leaves a paused endpoint's deliveries
// alone, and every Health read carries what was published.
func (s *Store) PublishLimits(ctx context.Context, endpointID string, u LimitsUpdate) error {
	limits := u.Concurrency > 0 || u.Rate > 0
	_, err := s.pool.Exec(ctx, s.sql(`INSERT INTO {s}.endpoint_health AS h
	(endpoint_id, paused_until, paused_by, cluster_limit, cluster_rate, limited_by, limited_at)
VALUES ($1, CASE WHEN $2::bigint > 0 THEN now() + $2::bigint * interval '1 microsecond' END,
	CASE WHEN $2::bigint > 0 THEN $6 ELSE '' END,
	CASE WHEN $5::bool THEN $3::int ELSE 0 END, CASE WHEN $5::bool THEN $4::float8 ELSE 0 END,
	CASE WHEN $5::bool THEN $6 ELSE '' END, CASE WHEN $5::bool THEN now() END)
ON CONFLICT (endpoint_id) DO UPDATE SET
	paused_until = CASE WHEN excluded.paused_until > coalesce(h.paused_until, '-infinity') THEN excluded.paused_until ELSE h.paused_until END,
	paused_by = CASE WHEN excluded.paused_until > coalesce(h.paused_until, '-infinity') THEN excluded.paused_by ELSE h.paused_by END,
	cluster_limit = CASE WHEN $5::bool THEN excluded.cluster_limit ELSE h.cluster_limit END,
	cluster_rate = CASE WHEN $5::bool THEN excluded.cluster_rate ELSE h.cluster_rate END,
	limited_by = CASE WHEN $5::bool THEN excluded.limited_by ELSE h.limited_by END,
	limited_at = CASE WHEN $5::bool THEN excluded.limited_at ELSE h.limited_at END`),
		endpointID, u.Pause.Microseconds(), u.Concurrency, u.Rate, limits, s.instanceID())
	if err != nil {
		return fmt.Errorf("publishing the limits of endpoint %s: %w", endpointID, err)
	}
	return nil
}

// pausedEndpoints is the SQL array of the endpoints paused now.
const pausedEndpoints = `ARRAY(SELECT endpoint_id FROM {s}.endpoint_health WHERE paused_until > now())`
