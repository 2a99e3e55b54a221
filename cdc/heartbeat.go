package cdc

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// heartbeatSQL writes a tiny non-transactional logical message into the
// WAL. pgoutput does not forward it (messages are not requested), but the
// walsender decodes past it and reports its new position in a keepalive,
// which lets an idle slot advance (see receiver.advanceIdle).
const heartbeatSQL = `SELECT pg_logical_emit_message(false, 'walhook.heartbeat', '')`

// heartbeat runs heartbeatSQL every HeartbeatInterval on a normal
// connection until ctx is done.
func (r *Reader) heartbeat(ctx context.Context) {
	if r.cfg.HeartbeatInterval < 0 {
		return
	}
	ticker := time.NewTicker(r.cfg.HeartbeatInterval)
	defer ticker.Stop()
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = conn.Close(closeCtx)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		beatCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var err error
		if conn == nil {
			conn, err = pgx.Connect(beatCtx, r.cfg.URL)
		}
		if err == nil {
			_, err = conn.Exec(beatCtx, heartbeatSQL)
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			r.log.Warn().Err(err).Msg("writing heartbeat")
			if conn != nil {
				_ = conn.Close(context.WithoutCancel(ctx))
				conn = nil
			}
		}
	}
}
