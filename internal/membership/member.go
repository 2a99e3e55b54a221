// Package membership registers a running walhook in the state schema and
// renews its heartbeat, so that every instance sharing a config, and the
// tools reading the state (walhook status, the admin API, /metrics, the
// console), see which instances run, which one holds the slot, what each
// is delivering, and which stopped without leaving. docs/architecture.md,
// "Membership", states the rules.
package membership

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/dispatch"
	"github.com/walhook/walhook/internal/store"
)

// DefaultEvery is how often an instance renews its heartbeat.
const DefaultEvery = 5 * time.Second

// DefaultPruneAfter is how long a dead instance stays listed before its
// row is deleted.
const DefaultPruneAfter = time.Hour

// beatTimeout bounds one heartbeat's writes and reads; beatGrace is how
// long one in flight at shutdown may go on.
const (
	beatTimeout = 10 * time.Second
	beatGrace   = time.Second
)

// Store is the part of the state store membership uses.
type Store interface {
	Heartbeat(ctx context.Context, in store.Instance) error
	LeaveInstance(ctx context.Context, id string) error
	Instances(ctx context.Context) ([]store.Instance, error)
	PruneInstances(ctx context.Context, deadFor time.Duration) ([]string, error)
	ReleaseDeadClaims(ctx context.Context, after time.Duration) (map[string]int, error)
}

// Config describes the instance and how it reports itself.
type Config struct {
	Store Store
	// Self is the instance: ID, Host, PID, Version and Listen are used.
	Self store.Instance
	// Every is the heartbeat interval; default DefaultEvery.
	Every time.Duration
	// PruneAfter is how long a dead instance's row is kept; default
	// DefaultPruneAfter.
	PruneAfter time.Duration
	// Role reports the instance's role now (store.RoleLeader, …).
	Role func() string
	// Load reports the attempts and retries in flight now; the attempt
	// rates are counted by the Member itself (it is a dispatch.Observer).
	Load func() store.InstanceLoad
	// TakeOverAfter reports the longest an attempt may take now (the
	// longest endpoint timeout): a dead peer's leases are released once it
	// has been silent that long, past the dead threshold. Nil: never; its
	// leases end with their time.
	TakeOverAfter func() time.Duration
	// TookOver, when set, counts the leases released (a metric).
	TookOver func(n int)
	// Alive, when set, is told at each heartbeat how many instances are
	// alive, this one included (they share endpoint limits).
	Alive  func(n int)
	Logger zerolog.Logger
}

// Member is this instance's registration. It counts attempts as a
// dispatch.Observer; Run renews the heartbeat and Leave removes the row.
type Member struct {
	cfg      Config
	attempts atomic.Int64
	failures atomic.Int64

	// Owned by Run's goroutine.
	lastBeat                   time.Time
	lastAttempts, lastFailures int64
	lastRole                   string // the role the last beat wrote (or tried to)
	failing                    bool
	dead                       map[string]bool // peers seen dead, so each is logged once
}

var _ dispatch.Observer = (*Member)(nil)

// New returns the instance's Member; it registers at Run's first beat.
func New(cfg Config) *Member {
	if cfg.Every <= 0 {
		cfg.Every = DefaultEvery
	}
	if cfg.PruneAfter <= 0 {
		cfg.PruneAfter = DefaultPruneAfter
	}
	cfg.Self.HeartbeatEvery = cfg.Every
	return &Member{cfg: cfg, dead: map[string]bool{}}
}

// SetListen sets the admin listen address the instance reports; call it
// before Run.
func (m *Member) SetListen(addr string) { m.cfg.Self.Listen = addr }

// ID is the instance's id.
func (m *Member) ID() string { return m.cfg.Self.ID }

// Run registers the instance and renews its heartbeat every interval until
// ctx ends. It does not remove the row: the owner calls Leave once the
// instance has stopped delivering.
//
// A change of role (this instance took the slot, or gave it up) is
// written at once rather than at the next beat: the instances list shows
// the new leader within roleCheck of its taking over.
func (m *Member) Run(ctx context.Context) {
	m.lastBeat = time.Now()
	t := time.NewTicker(m.cfg.Every)
	defer t.Stop()
	check := time.NewTicker(roleCheck)
	defer check.Stop()
	for {
		m.beat(ctx)
	wait:
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				break wait
			case <-check.C:
				if m.cfg.Role() != m.lastRole {
					t.Reset(m.cfg.Every)
					break wait
				}
			}
		}
	}
}

// roleCheck is how often Run looks for a change of role (a read of the
// reader's status, no I/O).
const roleCheck = 250 * time.Millisecond

// Leave removes the instance's row (a clean stop). With the state
// database out of reach the row stays, and shows the instance dead after
// the threshold like a crash would.
func (m *Member) Leave(ctx context.Context) {
	if err := m.cfg.Store.LeaveInstance(ctx, m.cfg.Self.ID); err != nil {
		m.cfg.Logger.Warn().Err(err).Msg("leaving the instances list; this instance will be shown dead, then pruned")
	}
}

// beat writes one heartbeat, prunes long-dead peers and logs peers newly
// found dead.
func (m *Member) beat(ctx context.Context) {
	// A beat in flight when ctx ends gets a moment to finish: cancelled at
	// once, its upsert could still commit on the server after Leave has
	// removed the row, and list a stopped instance as alive.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), beatTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(beatGrace, cancel) })
	defer stop()
	ctx = bctx
	in := m.cfg.Self
	in.Role = m.cfg.Role()
	m.lastRole = in.Role
	in.Load = m.cfg.Load()
	now := time.Now()
	attempts, failures := m.attempts.Load(), m.failures.Load()
	if secs := now.Sub(m.lastBeat).Seconds(); secs > 0 {
		in.Load.AttemptsPerSecond = float64(attempts-m.lastAttempts) / secs
		in.Load.FailuresPerSecond = float64(failures-m.lastFailures) / secs
	}
	m.lastBeat, m.lastAttempts, m.lastFailures = now, attempts, failures
	if err := m.cfg.Store.Heartbeat(ctx, in); err != nil {
		if ctx.Err() == nil && !m.failing {
			m.cfg.Logger.Warn().Err(err).Msg("heartbeat not recorded; peers will show this instance dead if it stays so")
		}
		m.failing = true
		return
	}
	if m.failing {
		m.cfg.Logger.Info().Msg("heartbeat recorded again")
	}
	m.failing = false
	pruned, err := m.cfg.Store.PruneInstances(ctx, m.cfg.PruneAfter)
	if err != nil {
		m.cfg.Logger.Warn().Err(err).Msg("pruning dead instances")
	}
	for _, id := range pruned {
		m.cfg.Logger.Info().Str("instance", id).Stringer("dead_for", m.cfg.PruneAfter).Msg("removed a dead instance from the instances list")
		delete(m.dead, id)
	}
	m.noteDead(ctx)
	m.takeOver(ctx)
}

// takeOver releases the leases of dead peers, so that their claimed
// deliveries are sent by the alive instances now rather than when the
// leases end (docs/architecture.md, "Membership"). Every alive instance
// tries; a lease is released once, by whichever gets it first.
func (m *Member) takeOver(ctx context.Context) {
	if m.cfg.TakeOverAfter == nil {
		return
	}
	released, err := m.cfg.Store.ReleaseDeadClaims(ctx, m.cfg.TakeOverAfter())
	if err != nil {
		m.cfg.Logger.Warn().Err(err).Msg("releasing the leases of dead instances; they are due again when their leases end")
		return
	}
	for id, n := range released {
		m.cfg.Logger.Warn().Str("instance", id).Int("deliveries", n).
			Msg("took over the deliveries a dead instance had claimed: they are due now")
		if m.cfg.TookOver != nil {
			m.cfg.TookOver(n)
		}
	}
}

// noteDead logs each peer found dead once (its claimed retries are taken
// over by takeOver, docs/architecture.md, "Membership") and reports how
// many instances are alive.
func (m *Member) noteDead(ctx context.Context) {
	all, err := m.cfg.Store.Instances(ctx)
	if err != nil {
		m.cfg.Logger.Warn().Err(err).Msg("listing instances")
		return
	}
	alive := 0
	for _, in := range all {
		switch {
		case in.Alive:
			alive++
			delete(m.dead, in.ID)
		case !m.dead[in.ID]:
			m.dead[in.ID] = true
			m.cfg.Logger.Warn().Str("instance", in.ID).Str("host", in.Host).Int("pid", in.PID).Str("role", in.Role).
				Stringer("silent_for", in.Silent.Round(time.Second)).
				Msg("an instance stopped heartbeating: it is shown dead; deliveries it had claimed are taken over once its longest attempt is over")
		}
	}
	if m.cfg.Alive != nil {
		m.cfg.Alive(max(alive, 1))
	}
}

// Attempted counts an attempt for the rates the heartbeat reports.
func (m *Member) Attempted(a store.Attempt, _ string) {
	m.attempts.Add(1)
	if !a.OK() {
		m.failures.Add(1)
	}
}

// The other observations are not membership's business.

func (m *Member) ChangesRead(int)              {}
func (m *Member) EventEmitted(string)          {}
func (m *Member) EvaluationsFailed(int)        {}
func (m *Member) Overflowed(string)            {}
func (m *Member) Outcome(string, string)       {}
func (m *Member) Disabled(string)              {}
func (m *Member) ConcurrencyLimit(string, int) {}
