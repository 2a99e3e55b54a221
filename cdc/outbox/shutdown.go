package outbox

import (
	"context"
	"time"

	"github.com/walhook/walhook/cdc"
)

// # Letting go of a database that shuts down
//
// A smart shutdown (`pg_ctl stop -m smart`, a plain SIGTERM to the
// postmaster) waits for every open session to end and only refuses new
// ones; nothing on an open session tells that it is under way. The poller
// holds sessions of its own: the LISTEN connection, idle pooled ones, and
// one per claimed batch, whose transaction stays open until its deliveries
// settle, which may need a state store that is going away too. So a probe
// opens a new connection every probeInterval; when the server refuses it
// as shutting down (SQLSTATE 57P03), the poller lets go: batches waiting
// to settle roll back (their rows are claimed again once the database is
// back, under the same event ids, as after a crash), the LISTEN connection
// closes, and the pool's connections close as they are released. Claims
// meanwhile fail and back off until the database is back. (The slot's
// reader does the same for its own sessions: cdc/shutdown.go.)

// probeInterval is how often the poller checks whether the database
// refuses new connections as shutting down.
const probeInterval = 5 * time.Second

// letGoSignal returns the channel closed at the next let-go.
func (p *Poller) letGoSignal() <-chan struct{} {
	p.letGoMu.Lock()
	defer p.letGoMu.Unlock()
	return p.letGo
}

// release lets go of every session (see above): it closes the current
// let-go channel, which batches and the listener wait on, and resets the
// pool.
func (p *Poller) release() {
	p.letGoMu.Lock()
	close(p.letGo)
	p.letGo = make(chan struct{})
	p.letGoMu.Unlock()
	p.pool.Reset()
}

// watchShutdown probes the database every probeEvery until ctx ends,
// and lets go of its sessions while the server refuses new ones as
// shutting down.
func (p *Poller) watchShutdown(ctx context.Context) {
	cdc.WatchShutdown(ctx, p.probeEvery, p.pool.Config().ConnConfig, func(err error, first bool) {
		if first {
			p.log.Warn().Err(err).Str("outbox", p.cfg.Table).
				Msg("the outbox database is shutting down: closing walhook's connections to it so that it can (rows not yet deleted are claimed again once it is back, with the same ids)")
		}
		p.release()
	})
}
