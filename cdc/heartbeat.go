package cdc

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// heartbeatSQL writes a tiny non-transactional logical message into the
// WAL. pgoutput does not forward it (messages are not requested), but the
// walsender decodes past it and reports its new position in a keepalive,
// which lets an idle slot advance (see receiver.advanceIdle).
const heartbeatSQL = `SELECT pg_logical_emit_message(false, 'walhook.heartbeat', '')`

// watchInterval is how often the watch connection is checked, and
// probeInterval how often it is replaced by a new one: a smart shutdown
// leaves open sessions alone and only refuses new ones, so only a new
// connection can tell that the server waits for ours to end.
const (
	watchInterval = time.Second
	probeInterval = 5 * time.Second
)

// watch runs beside a streaming session, on a normal connection of its
// own, until ctx is done. It writes heartbeatSQL every HeartbeatInterval
// (unless disabled); it checks every watchInterval, without writing to the
// server, that the connection is still there, and replaces it every
// probeInterval. When the server refuses a new connection as shutting
// down, watch calls shuttingDown and returns (see shutdown.go).
func (r *Reader) watch(ctx context.Context, shuttingDown func(error)) {
	tick := watchInterval
	if h := r.cfg.HeartbeatInterval; h > 0 && h < tick {
		tick = h
	}
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	var conn *pgx.Conn
	var opened time.Time
	closeConn := func() {
		if conn != nil {
			closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = conn.Close(closeCtx)
			conn = nil
		}
	}
	defer closeConn()
	nextBeat := time.Now().Add(r.cfg.HeartbeatInterval)
	failing := false // the last connection attempt failed (and was logged)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if conn != nil && !alive(ctx, conn.PgConn()) {
			closeConn()
		}
		if conn == nil || time.Since(opened) >= probeInterval {
			fresh, err := r.connect(ctx)
			switch {
			case RefusedAsShuttingDown(err):
				shuttingDown(fmt.Errorf("%w: a new connection was refused: %w", ErrServerShutdown, err))
				return
			case err != nil:
				if !failing && ctx.Err() == nil {
					r.log.Warn().Err(err).Msg("opening the watch connection")
				}
				failing = true
			default:
				closeConn()
				conn, opened, failing = fresh, time.Now(), false
			}
		}
		if r.cfg.HeartbeatInterval < 0 || time.Now().Before(nextBeat) || conn == nil {
			continue
		}
		nextBeat = time.Now().Add(r.cfg.HeartbeatInterval)
		beatCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := conn.Exec(beatCtx, heartbeatSQL)
		cancel()
		if err != nil && ctx.Err() == nil {
			r.log.Warn().Err(err).Msg("writing heartbeat")
			closeConn()
		}
	}
}

// connect opens a normal connection to the source database.
func (r *Reader) connect(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, r.cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("connecting to the source database: %w", err)
	}
	return conn, nil
}

// alive reports whether an idle connection is still open, by reading what
// the server may have sent (a terminated session's FATAL error, or the end
// of the stream) for a moment, without writing to it.
func alive(ctx context.Context, conn *pgconn.PgConn) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	_, err := conn.ReceiveMessage(ctx)
	return err == nil || pgconn.Timeout(err)
}
