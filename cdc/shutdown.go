package cdc

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// # Letting go of a server that shuts down
//
// A walsender of Postgres (15, and up to 18 at least) does not exit at a
// fast or smart shutdown until its client has confirmed everything it was
// sent: once it has decoded to the end of the WAL it sends a keepalive
// asking for a reply, and another right after each reply, until the flush
// position reported equals its sent position (WalSndDone in
// src/backend/replication/walsender.c). Only the settled position may be
// confirmed (see doc.go), and settling may need the state store, whose
// connections a fast shutdown has already terminated when the state lives
// in the same database. Waiting would then hold up the shutdown forever.
//
// So the reader lets go of the replication connection (closes it, which
// ends the walsender) as soon as it sees that the server shuts down, in
// either of two ways:
//
//   - the keepalive ping-pong: keepalives asking for a reply, each arriving
//     within pingPongGap of the one before, for shutdownGrace, while the
//     position they report is past the one we may confirm (shutdownWatch).
//     In normal streaming the server asks for a reply only when it has
//     heard nothing for wal_sender_timeout/2, and every reply restarts
//     that clock; so rapid requests only come from a server that waits
//     for us to catch up before it exits;
//   - a new connection of the reader's watch (see heartbeat.go), opened
//     when the watch connection was cut and every probeInterval anyway, is
//     refused with SQLSTATE 57P03 (cannot_connect_now: the database system
//     is shutting down). A terminated session alone (57P01) may be an
//     operator's pg_terminate_backend; a refused new one is the server.
//     This also covers a receiver that is not reading (it waits for the
//     consumer, which waits for the store): a walsender blocked on a full
//     socket sends no keepalives at all. And it is the only sign of a
//     smart shutdown, which waits for every normal session to end (the
//     reader's own, and the relay's state pool: see relay.watchState) and
//     only refuses new ones; the walsender hears of it last.
//
// Nothing is lost by letting go: the slot stays at the last confirmed
// position, and once the server is back the changes after it are read
// again and delivered with the same event ids, as after a crash.

// ErrServerShutdown is the cause of a session that ended because the
// source database is shutting down.
var ErrServerShutdown = errors.New("the source database is shutting down")

const (
	// pingPongGap is the longest time between two keepalives asking for a
	// reply that still counts as the shutdown ping-pong.
	pingPongGap = time.Second
	// shutdownGrace is how long the ping-pong may last before the reader
	// lets go: time for a settle that is about to happen.
	shutdownGrace = 2 * time.Second
	// minPings is the fewest keepalives of a ping-pong.
	minPings = 3
)

// shutdownWatch recognises the shutdown ping-pong in the keepalives a
// walsender sends (see above). Its zero value is ready.
type shutdownWatch struct {
	since time.Time // first keepalive of the current ping-pong
	last  time.Time // latest keepalive of it
	pings int
}

// keepalive records a keepalive received at now, reporting the server's
// walEnd, while acked is the position we may confirm. It reports whether
// the server has been waiting for a confirmation past acked for
// shutdownGrace.
func (w *shutdownWatch) keepalive(now time.Time, replyRequested bool, walEnd, acked LSN) bool {
	if acked >= walEnd {
		*w = shutdownWatch{}
		return false
	}
	if !replyRequested {
		return false
	}
	if w.pings == 0 || now.Sub(w.last) > pingPongGap {
		w.since, w.pings = now, 0
	}
	w.last = now
	w.pings++
	return w.pings >= minPings && now.Sub(w.since) >= shutdownGrace
}

// RefusedAsShuttingDown reports whether err is a server refusing a new
// session because it is shutting down (or not up: SQLSTATE 57P03).
func RefusedAsShuttingDown(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "57P03"
}

// WatchShutdown opens (and closes) a new connection with cfg every
// interval until ctx ends, and calls letGo each time the server refuses it
// as shutting down; first is true for the first refusal of a shutdown. A
// smart shutdown refuses new sessions and waits for the open ones, which
// nothing on them announces: this is how the holders of ordinary sessions
// (the state pool, the outbox poller) learn that they must close them.
func WatchShutdown(ctx context.Context, interval time.Duration, cfg *pgx.ConnConfig, letGo func(err error, first bool)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	stopping := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err := pgx.ConnectConfig(pctx, cfg.Copy())
		if err == nil {
			_ = conn.Close(pctx)
		}
		cancel()
		if !RefusedAsShuttingDown(err) {
			stopping = false
			continue
		}
		letGo(err, !stopping)
		stopping = true
	}
}
