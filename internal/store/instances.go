package store

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Instance roles (docs/architecture.md, "Membership").
const (
	RoleLeader  = "leader"  // holds the replication slot
	RoleStandby = "standby" // waits for the slot; works retries
	RolePoller  = "poller"  // outbox mode: every instance polls
)

// DeadAfterBeats is how many heartbeat intervals (plus DeadMargin) an
// instance may stay silent before it is shown as dead.
const DeadAfterBeats = 3

// DeadMargin is added to DeadAfterBeats heartbeat intervals, so that a
// slow write of the state database does not kill a live instance.
const DeadMargin = 5 * time.Second

// Instance is one walhook process as registered in the state schema.
type Instance struct {
	ID      string // "ins_…", new at every start
	Host    string
	PID     int
	Version string
	Listen  string // the admin listener's address; empty without one
	Role    string // RoleLeader, RoleStandby or RolePoller
	// HeartbeatEvery is how often the instance renews its heartbeat.
	HeartbeatEvery time.Duration
	Load           InstanceLoad
	StartedAt      time.Time
	HeartbeatAt    time.Time
	// Alive and Silent are read with the database's clock: Silent is how
	// long ago the last heartbeat was; Alive is false once it exceeds
	// DeadAfterBeats heartbeats and DeadMargin.
	Alive  bool
	Silent time.Duration
}

// InstanceLoad is what an instance is delivering, as of its last heartbeat.
type InstanceLoad struct {
	InFlight          int     // attempts holding an endpoint's slot
	RetriesInFlight   int     // of those, retries claimed from the store
	AttemptsPerSecond float64 // over the last heartbeat interval
	FailuresPerSecond float64 // attempts without a 2xx, same interval
}

// NewInstanceID returns a random instance id: "ins_" and 26 base32 characters.
func NewInstanceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return idText("ins_", b[:])
}

// silentLimit is the SQL expression of how long an instance row may go
// without a heartbeat and still be alive.
var silentLimit = fmt.Sprintf(`(heartbeat_every * %d + interval '%d microseconds')`, DeadAfterBeats, DeadMargin.Microseconds())

// instanceAlive is the SQL condition of an instance row being alive.
var instanceAlive = `heartbeat_at >= now() - ` + silentLimit

var instanceColumns = `id, host, pid, version, listen, role, (extract(epoch FROM heartbeat_every) * 1e6)::bigint,
	in_flight, retries_in_flight, attempts_per_second, failures_per_second, started_at, heartbeat_at,
	` + instanceAlive + `, (extract(epoch FROM now() - heartbeat_at) * 1e6)::bigint`

func scanInstance(row pgx.Row) (Instance, error) {
	var in Instance
	var every, silent int64
	err := row.Scan(&in.ID, &in.Host, &in.PID, &in.Version, &in.Listen, &in.Role, &every,
		&in.Load.InFlight, &in.Load.RetriesInFlight, &in.Load.AttemptsPerSecond, &in.Load.FailuresPerSecond,
		&in.StartedAt, &in.HeartbeatAt, &in.Alive, &silent)
	in.HeartbeatEvery, in.Silent = time.Duration(every)*time.Microsecond, time.Duration(silent)*time.Microsecond
	return in, err
}

// Heartbeat registers in (at its first call) or renews its heartbeat,
// role, listen address and load. Its heartbeat time is the database's now().
func (s *Store) Heartbeat(ctx context.Context, in Instance) error {
	_, err := s.pool.Exec(ctx, s.sql(`INSERT INTO {s}.instances AS i (id, host, pid, version, listen, role, heartbeat_every,
		in_flight, retries_in_flight, attempts_per_second, failures_per_second)
	VALUES ($1, $2, $3, $4, $5, $6, $7::bigint * interval '1 microsecond', $8, $9, $10, $11)
	ON CONFLICT (id) DO UPDATE SET listen = $5, role = $6, heartbeat_every = $7::bigint * interval '1 microsecond',
		in_flight = $8, retries_in_flight = $9, attempts_per_second = $10, failures_per_second = $11, heartbeat_at = now()`),
		in.ID, in.Host, in.PID, in.Version, in.Listen, in.Role, in.HeartbeatEvery.Microseconds(),
		in.Load.InFlight, in.Load.RetriesInFlight, in.Load.AttemptsPerSecond, in.Load.FailuresPerSecond)
	if err != nil {
		return fmt.Errorf("recording the heartbeat of instance %s: %w", in.ID, err)
	}
	return nil
}

// LeaveInstance removes an instance's row: it stopped cleanly. Leases it
// still holds (attempts cut short by its shutdown) are due again at once.
func (s *Store) LeaveInstance(ctx context.Context, id string) error {
	_, err := s.pool.Exec(ctx, s.sql(`WITH released AS (
	UPDATE {s}.deliveries d SET next_attempt_at = now(), updated_at = now(), claimed_by = NULL
	WHERE d.id IN (SELECT id FROM {s}.deliveries WHERE claimed_by = $1 AND status = 'pending' ORDER BY seq FOR UPDATE)
)
DELETE FROM {s}.instances WHERE id = $1`), id)
	if err != nil {
		return fmt.Errorf("removing instance %s: %w", id, err)
	}
	return nil
}

// ReleaseDeadClaims makes the pending deliveries leased by dead instances
// due now, in one statement: instances silent past the dead threshold and
// for longer than after (the longest attempt one could still be making).
// It returns how many deliveries it released, by instance id; a lease it
// releases is cleared, so concurrent callers never release it twice.
func (s *Store) ReleaseDeadClaims(ctx context.Context, after time.Duration) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, s.sql(`WITH dead AS (
	SELECT id FROM {s}.instances
	WHERE NOT (`+instanceAlive+`) AND heartbeat_at < now() - $1::bigint * interval '1 microsecond'
), held AS (
	-- Locked in the store's lock order (ascending seq), as CompleteAll does.
	SELECT d.id, d.claimed_by FROM {s}.deliveries d
	WHERE d.claimed_by IN (SELECT id FROM dead) AND d.status = 'pending'
	ORDER BY d.seq FOR UPDATE OF d
)
UPDATE {s}.deliveries d SET next_attempt_at = now(), updated_at = now(), claimed_by = NULL
FROM held WHERE d.id = held.id AND d.claimed_by = held.claimed_by
RETURNING held.claimed_by`), after.Microseconds())
	if err != nil {
		return nil, fmt.Errorf("releasing the leases of dead instances: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("releasing the leases of dead instances: %w", err)
	}
	out := map[string]int{}
	for _, id := range ids {
		out[id]++
	}
	return out, nil
}

// Instances lists the registered instances, alive and dead: the leader
// first, then the others by start.
func (s *Store) Instances(ctx context.Context) ([]Instance, error) {
	rows, err := s.pool.Query(ctx, s.sql(`SELECT `+instanceColumns+` FROM {s}.instances
		ORDER BY `+instanceAlive+` DESC, role = 'leader' DESC, started_at, id`))
	if err != nil {
		return nil, fmt.Errorf("listing instances: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Instance, error) { return scanInstance(row) })
	if err != nil {
		return nil, fmt.Errorf("listing instances: %w", err)
	}
	return out, nil
}

// PruneInstances deletes the rows of instances dead for longer than
// deadFor, and returns the ids it deleted.
func (s *Store) PruneInstances(ctx context.Context, deadFor time.Duration) ([]string, error) {
	rows, err := s.pool.Query(ctx, s.sql(`DELETE FROM {s}.instances
		WHERE heartbeat_at < now() - `+silentLimit+` - $1::bigint * interval '1 microsecond'
		RETURNING id`), deadFor.Microseconds())
	if err != nil {
		return nil, fmt.Errorf("pruning dead instances: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("pruning dead instances: %w", err)
	}
	return ids, nil
}
