package cdc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// connectTimeout bounds connecting and the setup queries of a session.
const connectTimeout = 30 * time.Second

// replicationParams are set on the streaming connection: pgoutput formats
// values with the walsender's settings, and the decoders expect these.
var replicationParams = map[string]string{
	"replication":        "database",
	"DateStyle":          "ISO, MDY",
	"TimeZone":           "UTC",
	"IntervalStyle":      "postgres",
	"extra_float_digits": "3",
	"bytea_output":       "hex",
	"application_name":   "walhook",
}

// session runs one replication connection: prepare the slot, start
// streaming from max(acked, confirmed_flush_lsn), receive until an error or
// ctx is done. streamed reports that the slot was ours.
func (r *Reader) session(ctx context.Context, out chan<- Transaction) (streamed bool, err error) {
	setupCtx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	sql, err := pgx.Connect(setupCtx, r.cfg.URL)
	if err != nil {
		return false, fmt.Errorf("connecting to the source database: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = sql.Close(closeCtx)
	}()
	if err := CheckPrerequisites(setupCtx, sql); err != nil {
		return false, err
	}
	if err := checkFree(setupCtx, sql, r.cfg.Slot); err != nil {
		return false, err
	}
	conn, err := connectReplication(setupCtx, r.cfg.URL)
	if err != nil {
		return false, err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	confirmed, err := r.claimSlot(setupCtx, sql, conn)
	if err != nil {
		return false, err
	}
	r.mu.Lock()
	if confirmed > r.acked {
		r.acked = confirmed
	}
	start := r.acked
	r.mu.Unlock()
	r.updateStatus(func(st *Status) { st.Connected = true })

	pluginArgs := []string{"proto_version '1'", "publication_names " + r.publicationNames(setupCtx, sql)}
	if len(r.cfg.MessagePrefixes) > 0 {
		pluginArgs = append(pluginArgs, "messages 'true'")
	}
	err = pglogrepl.StartReplication(setupCtx, conn, r.cfg.Slot, start, pglogrepl.StartReplicationOptions{PluginArgs: pluginArgs})
	if err != nil {
		return false, fmt.Errorf("starting replication from slot %s at %s: %w", r.cfg.Slot, start, err)
	}
	// Until the slot was ours, its holder could still confirm more than we
	// read; the server starts from that, and so must our acknowledgements.
	if confirmed, err = slotConfirmed(setupCtx, sql, r.cfg.Slot); err != nil {
		return false, err
	}
	r.mu.Lock()
	if confirmed > r.acked {
		r.acked = confirmed
	}
	r.walsender = conn.PID()
	r.mu.Unlock()
	cancel()
	r.log.Info().Str("start_lsn", start.String()).Msg("streaming")
	r.updateStatus(func(st *Status) { st.Streaming = true; st.LastError = "" })
	r.testSignals.streaming.Emit(start)

	// The watch ends the session, with ErrServerShutdown as its cause, when
	// the server shuts down (see shutdown.go).
	sessCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); r.watch(sessCtx, stop) }()
	defer func() { stop(nil); <-watchDone }()

	s := &receiver{
		r:          r,
		conn:       conn,
		sql:        sql,
		out:        out,
		types:      newTypeDecoders(),
		relations:  map[uint32]*relation{},
		lastQueued: start,
		lastSent:   0,
	}
	err = s.run(sessCtx)
	if cause := context.Cause(sessCtx); err == nil && ctx.Err() == nil && errors.Is(cause, ErrServerShutdown) {
		err = cause
	}
	// Final status: whatever the consumer settled meanwhile, recorded
	// first when the Reader stops, so that it is all confirmed.
	if ctx.Err() != nil {
		r.recordAcked(ctx)
	}
	if serr := s.sendStatus(); serr != nil && err == nil && ctx.Err() == nil {
		err = serr
	}
	if errors.Is(err, ErrServerShutdown) {
		acked := r.ackedLSN()
		r.log.Warn().Err(err).Str("confirmed_lsn", acked.String()).
			Msgf("letting go of the replication connection so that the source database can shut down; changes after %s will be read again once it is back", acked)
	}
	return true, err
}

// connectReplication opens a replication=database connection.
func connectReplication(ctx context.Context, url string) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parsing the source database URL: %w", err)
	}
	for k, v := range replicationParams {
		if _, set := cfg.RuntimeParams[k]; !set || k != "application_name" {
			cfg.RuntimeParams[k] = v
		}
	}
	batchReads(cfg)
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("opening a replication connection: %w", err)
	}
	return conn, nil
}

// receiver owns a streaming replication connection: it receives and
// decodes messages, hands complete transactions to out, and sends standby
// status updates with the acknowledged position.
type receiver struct {
	r         *Reader
	conn      *pgconn.PgConn
	sql       *pgx.Conn // for primary key lookups
	out       chan<- Transaction
	types     *typeDecoders
	relations map[uint32]*relation

	cur        *Transaction // transaction (or its current piece) being received
	piece      piecing      // where cur's piece starts in its transaction
	pending    *Transaction // a complete transaction or piece, waiting for room in out
	lastQueued LSN          // EndLSN of the last transaction put in out
	lastSent   LSN
	lastStatus time.Time // when the last standby status was sent
	nextStatus time.Time // when to look at the settled position again
	deadline   time.Time
	shutdown   shutdownWatch
}

func (s *receiver) run(ctx context.Context) error {
	// A cancelled ctx interrupts a blocked receive through the deadline.
	stopWatch := context.AfterFunc(ctx, func() { _ = s.conn.Conn().SetReadDeadline(time.Now()) })
	defer stopWatch()
	defer func() { _ = s.conn.Conn().SetReadDeadline(time.Time{}) }()
	s.nextStatus = time.Now()
	for {
		if s.pending != nil {
			if ok, err := s.handOff(ctx); !ok {
				return err
			}
		}
		if !time.Now().Before(s.nextStatus) {
			if err := s.statusTick(); err != nil {
				return err
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if !s.deadline.Equal(s.nextStatus) {
			s.deadline = s.nextStatus
			_ = s.conn.Conn().SetReadDeadline(s.deadline)
			if ctx.Err() != nil {
				return nil
			}
		}
		msg, err := s.conn.ReceiveMessage(context.Background())
		if err != nil {
			if pgconn.Timeout(err) {
				s.deadline = time.Time{} // set it again: ctx may have moved it
				continue
			}
			return fmt.Errorf("receiving from the replication stream: %w", err)
		}
		switch msg := msg.(type) {
		case *pgproto3.CopyData:
			if err := s.copyData(msg.Data); err != nil {
				return err
			}
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("replication stream: %w", pgconn.ErrorResponseToPgError(msg))
		case *pgproto3.CopyDone:
			return errors.New("server ended the replication stream")
		}
	}
}

// handOff waits for room in out for the pending transaction, sending
// standby status meanwhile, so a slow consumer does not look like a dead
// client to the server. It returns false when ctx is done or the
// connection failed.
func (s *receiver) handOff(ctx context.Context) (bool, error) {
	select {
	case s.out <- *s.pending:
		s.queued()
		return true, nil
	default:
	}
	for {
		timer := time.NewTimer(time.Until(s.nextStatus))
		select {
		case s.out <- *s.pending:
			timer.Stop()
			s.queued()
			return true, nil
		case <-timer.C:
			if err := s.sendStatus(); err != nil {
				return false, err
			}
		case <-ctx.Done():
			timer.Stop()
			return false, nil
		}
	}
}

// statusTick sends a standby status if one is due: the acknowledged
// position moved since the last one (so the slot follows it within
// ConfirmInterval, with at most one status per ConfirmInterval on a busy
// stream), or StatusInterval passed (an idle stream's keepalive).
func (s *receiver) statusTick() error {
	if s.r.confirmable() != s.lastSent || !time.Now().Before(s.lastStatus.Add(s.r.cfg.StatusInterval)) {
		return s.sendStatus()
	}
	s.nextStatus = time.Now().Add(s.r.cfg.ConfirmInterval)
	return nil
}

// queued records that the pending transaction or piece is in out.
func (s *receiver) queued() {
	if !s.pending.More {
		s.lastQueued = s.pending.EndLSN
	}
	s.pending = nil
}

// sendStatus reports the acknowledged position as written, flushed and
// applied. It never reports a received but unacknowledged position.
func (s *receiver) sendStatus() error {
	acked := s.r.confirmable() // never beyond the recorded position
	s.lastStatus = time.Now()
	s.nextStatus = s.lastStatus.Add(s.r.cfg.ConfirmInterval)
	if acked == 0 {
		return nil
	}
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), s.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: acked,
		WALFlushPosition: acked,
		WALApplyPosition: acked,
	})
	if err != nil {
		return fmt.Errorf("sending standby status at %s: %w", acked, err)
	}
	if acked != s.lastSent {
		s.lastSent = acked
		s.r.updateStatus(func(st *Status) { st.Acked = acked })
	}
	return nil
}

func (s *receiver) copyData(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		pkm, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return fmt.Errorf("parsing keepalive: %w", err)
		}
		s.r.updateStatus(func(st *Status) { st.ServerWALEnd = pkm.ServerWALEnd })
		advanced := s.advanceIdle(pkm.ServerWALEnd)
		if pkm.ReplyRequested || advanced {
			if err := s.sendStatus(); err != nil {
				return err
			}
		}
		if acked := s.r.ackedLSN(); s.shutdown.keepalive(time.Now(), pkm.ReplyRequested, pkm.ServerWALEnd, acked) {
			return fmt.Errorf("%w: the server has waited %s for a confirmation of %s, and only %s is settled",
				ErrServerShutdown, shutdownGrace, pkm.ServerWALEnd, acked)
		}
	case pglogrepl.XLogDataByteID:
		if len(data) < 25 {
			return fmt.Errorf("XLogData of %d bytes", len(data))
		}
		walEnd := LSN(binary.BigEndian.Uint64(data[9:]))
		s.r.updateStatus(func(st *Status) {
			if walEnd > st.ServerWALEnd {
				st.ServerWALEnd = walEnd
			}
		})
		return s.message(data[25:])
	}
	return nil
}

// advanceIdle moves the acknowledged position to walEnd when nothing
// received is outstanding: no transaction half received, waiting, queued
// or unacknowledged. Every transaction committed before walEnd was sent
// before this keepalive, so confirming walEnd skips nothing.
func (s *receiver) advanceIdle(walEnd LSN) bool {
	if s.cur != nil || s.pending != nil {
		return false
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if s.r.acked < s.lastQueued || walEnd <= s.r.acked {
		return false
	}
	s.r.acked = walEnd
	return true
}
