package relay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/cdc/outbox"
	"github.com/walhook/walhook/internal/backfill"
	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/dispatch"
	"github.com/walhook/walhook/internal/event"
	"github.com/walhook/walhook/internal/metrics"
	"github.com/walhook/walhook/internal/outboxevents"
	"github.com/walhook/walhook/internal/rules"
	"github.com/walhook/walhook/internal/settle"
)

// The pipeline runs in one direction (docs/architecture.md):
//
//	source (slot or outbox poller) → evaluate (rules, outbox decoding)
//	  → dispatch.Batch with its settle callback → Dispatcher.Dispatch
//
// A source never calls back into the dispatcher other than through
// Dispatch, and the dispatcher reaches the source only through a batch's
// Settled and Unrouted callbacks, which never block.

// Source reads changes, evaluates them and hands the batches to send
// (the dispatcher's Dispatch) in source order, until ctx ends.
type Source interface {
	Run(ctx context.Context, send func(context.Context, dispatch.Batch) error) error
	// Finish runs once the dispatcher has drained, within ctx: it makes
	// what was settled final (confirms the slot, deletes consumed rows).
	Finish(ctx context.Context)
	// Ready reports whether the source is reading.
	Ready() error
}

// evaluator turns one captured change into events (the evaluate stage).
type evaluator func(c *cdc.Change, out []event.Event) ([]event.Event, []event.Failure)

// slotSource reads the replication slot. Its tracker turns the settle
// callbacks of its batches into the slot's watermark. Every transaction
// passes the backfill stage first (relay/backfill.go), which adds the rows
// of backfill chunks at their high watermarks and learns of each advance
// of the watermark.
type slotSource struct {
	cfg      config.Source
	reader   *cdc.Reader
	stage    *backfill.Stage
	evaluate evaluator
	tracker  *settle.Tracker
	outbox   *outboxevents.Source   // the outbox table the slot carries; nil without one
	consumed *outboxevents.Consumed // delete_consumed; nil otherwise
	observer dispatch.Observer
	log      zerolog.Logger
	events   []event.Event // scratch: Dispatch copies what it keeps
	// open is the tracker's entry of a transaction whose pieces are
	// being handed over (cdc.Transaction.Part); nil between transactions.
	open *settle.Tx
}

func newSlotSource(cfg *config.Config, rs *rules.Rules, records cdc.SlotRecords, released func(context.Context), obs dispatch.Observer, m *metrics.Metrics, opts Options, log zerolog.Logger) (*slotSource, error) {
	s := &slotSource{cfg: cfg.Source, observer: obs, log: log, evaluate: rs.Evaluate, stage: backfill.NewStage()}
	s.reader = cdc.NewReader(cdc.ReaderConfig{
		URL:               cfg.Source.URL,
		Slot:              cfg.Source.Slot,
		Publication:       cfg.Source.Publication,
		Tables:            cfg.Source.Tables,
		Uses:              cfg.TableUses(),
		HeartbeatInterval: opts.HeartbeatInterval,
		SlotInUseRetry:    cmp.Or(opts.SlotInUseRetry, cfg.Source.StandbyRetry),
		// The backfill watermarks; transactions that carry one come
		// through even when they change no row.
		MessagePrefixes: []string{backfill.MessagePrefix},
		Records:         records, // the slot walhook owns, in the state store
		Released:        released,
		Logger:          log,
	})
	ack := s.reader.Ack
	if o := cfg.Source.Outbox; o != nil {
		ob, err := outboxevents.NewSource(o.Table, rs, outboxOptions(o, m, log))
		if err != nil {
			return nil, fmt.Errorf("outbox table: %w", err)
		}
		s.outbox = ob
		var record func(cdc.LSN, int64)
		if o.DeleteConsumed {
			s.consumed, err = outboxevents.NewConsumed(cfg.Source.URL, ob.Table(), s.reader.Ack, log.With().Str("component", "outbox").Logger())
			if err != nil {
				return nil, err
			}
			ack, record = s.consumed.Ack, s.consumed.Record
		}
		s.evaluate = ob.Evaluate(record)
	}
	// Read rows get their backfill's ids and targets; other changes pass.
	s.evaluate = s.stage.Evaluate(s.evaluate)
	// The tracker calls this with its lock held: the reader's (or the
	// consumed rows') Ack and Stage.Settled only store a value and wake
	// waiters, never block (docs/architecture.md, lock order).
	s.tracker = settle.NewTracker(func(lsn cdc.LSN) {
		ack(lsn)
		s.stage.Settled(lsn)
	})
	return s, nil
}

func (s *slotSource) Run(ctx context.Context, send func(context.Context, dispatch.Batch) error) error {
	done := make(chan struct{})
	if s.consumed != nil {
		cctx, cancel := context.WithCancel(ctx)
		defer func() { cancel(); <-done }()
		go func() { defer close(done); s.consumed.Run(cctx) }()
	}
	if s.outbox != nil {
		// The ids of outbox rows name the cluster and database: read them
		// before the first row, waiting for the database like the reader.
		for backoff := 250 * time.Millisecond; ; backoff = min(2*backoff, 30*time.Second) {
			err := s.outbox.Resolve(ctx, s.cfg.URL)
			if err == nil {
				break
			}
			s.log.Warn().Err(err).Stringer("retry_in", backoff).Msg("reading the outbox table's origin")
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
		}
	}
	s.log.Info().Str("slot", s.cfg.Slot).Strs("tables", s.cfg.Tables).Msg("walhook running")
	return s.reader.Run(ctx, cdc.SinkFunc(func(ctx context.Context, tx cdc.Transaction) error {
		tx, handedOver := s.stage.Intercept(tx)
		if err := send(ctx, s.batch(tx)); err != nil {
			return err
		}
		if !tx.More {
			// Every piece is with the dispatcher: the transaction may
			// now settle, at its end LSN.
			s.open.Close(tx.EndLSN)
			s.open = nil
		}
		// Dispatch has taken the batch: its end LSN now settles only with
		// the chunk rows it carries, so the chunk's runner may go on.
		handedOver()
		return nil
	}))
}

// batch is the evaluate stage for one transaction, or one piece of a large
// one (each piece is a batch of its own, so memory does not grow with the
// transaction); the tracker learns of the transaction before its first
// piece is dispatched, in commit order, and it settles once every piece's
// batch is settled and its last piece was handed over.
func (s *slotSource) batch(tx cdc.Transaction) dispatch.Batch {
	s.observer.ChangesRead(len(tx.Changes))
	events := s.events[:0]
	var failures []event.Failure
	for i := range tx.Changes {
		var fs []event.Failure
		events, fs = s.evaluate(&tx.Changes[i], events)
		failures = append(failures, fs...)
	}
	s.events = events[:0]
	if s.open == nil {
		s.open = s.tracker.Open()
	}
	stx := s.open
	stx.Add(1)
	// A piece of a large transaction is bulk: what its endpoints cannot
	// take at once goes to the store, so the source is not held up.
	b := dispatch.Batch{Events: events, Failures: failures, XID: tx.XID, Settled: stx.Done, Bulk: tx.More || tx.Part > 0}
	if s.outbox != nil {
		b.Unrouted = s.outbox.Unrouted
	}
	return b
}

func (s *slotSource) Finish(ctx context.Context) {
	settled := s.tracker.Settled()
	if s.consumed != nil {
		defer s.consumed.Close()
		if settled > 0 {
			// Consumed rows are deleted before the slot may pass them.
			if err := s.consumed.Flush(ctx); err != nil {
				s.log.Warn().Err(err).Msg("deleting consumed outbox rows at shutdown; not confirming the slot, changes since the last confirmation will be delivered again")
				return
			}
		}
	}
	if settled == 0 {
		return
	}
	err := s.reader.ConfirmSettled(ctx, settled)
	if errors.Is(err, cdc.ErrSlotInUse) {
		// Taken over during the drain: the new holder reads the changes
		// after the slot's confirmed position again, under the same ids.
		s.log.Info().Err(err).Stringer("lsn", settled).Msg("another instance streams from the slot now; it confirms the slot from here")
		return
	}
	if err != nil {
		s.log.Warn().Err(err).Stringer("lsn", settled).Msg("confirming the settled position at shutdown; changes after the last confirmation will be delivered again")
		return
	}
	s.log.Info().Stringer("lsn", settled).Msg("confirmed the settled position")
}

func (s *slotSource) Ready() error {
	if st := s.reader.Status(); !st.Streaming {
		if st.LastError != "" {
			return fmt.Errorf("not streaming from slot %s: %s", s.cfg.Slot, st.LastError)
		}
		return fmt.Errorf("not streaming from slot %s yet", s.cfg.Slot)
	}
	return nil
}

// pollSource polls an outbox table (mode "outbox"); each claimed batch of
// rows is one dispatch.Batch, settled through the poller's callback.
type pollSource struct {
	poller  *outbox.Poller
	outbox  *outboxevents.Source
	table   string
	log     zerolog.Logger
	scratch []event.Event

	mu        sync.Mutex // guards the backlog's cache; never held while reading it
	backlogAt time.Time
	lastRead  outbox.Backlog
}

// backlogFor is how long a read of the outbox backlog is reused by the
// metrics and the console.
const backlogFor = 2 * time.Second

// backlog is what waits in the outbox table, read at most every backlogFor.
func (s *pollSource) backlog(ctx context.Context) (outbox.Backlog, error) {
	s.mu.Lock()
	if time.Since(s.backlogAt) < backlogFor {
		b := s.lastRead
		s.mu.Unlock()
		return b, nil
	}
	s.mu.Unlock()
	b, err := s.poller.Backlog(ctx)
	if err != nil {
		return b, err
	}
	s.mu.Lock()
	s.lastRead, s.backlogAt = b, time.Now()
	s.mu.Unlock()
	return b, nil
}

// outboxOptions are the options of the outbox Source: the event names
// the outbox declares (a row of another type is a failed evaluation);
// skipped rows are counted in m (when there are metrics) and logged.
func outboxOptions(o *config.Outbox, m *metrics.Metrics, log zerolog.Logger) outboxevents.Options {
	opts := outboxevents.Options{Events: o.Events, Logger: log.With().Str("component", "outbox").Logger()}
	if m != nil {
		opts.Skipped = m.OutboxRowSkipped
	}
	return opts
}

func newPollSource(cfg *config.Config, rs *rules.Rules, m *metrics.Metrics, log zerolog.Logger) (*pollSource, error) {
	o := cfg.Source.Outbox
	ob, err := outboxevents.NewSource(o.Table, rs, outboxOptions(o, m, log))
	if err != nil {
		return nil, fmt.Errorf("outbox table: %w", err)
	}
	p, err := outbox.NewPoller(outbox.Config{
		URL:          cfg.Source.URL,
		Table:        o.Table,
		BatchSize:    o.BatchSize,
		PollInterval: o.PollInterval,
		Logger:       log.With().Str("component", "outbox").Logger(),
	})
	if err != nil {
		return nil, fmt.Errorf("outbox poller: %w", err)
	}
	return &pollSource{poller: p, outbox: ob, table: o.Table, log: log}, nil
}

func (s *pollSource) Run(ctx context.Context, send func(context.Context, dispatch.Batch) error) error {
	s.log.Info().Str("outbox", s.table).Msg("walhook running (polling the outbox)")
	return s.poller.Run(ctx, outbox.SinkFunc(func(ctx context.Context, rows []outbox.Row, settled func()) error {
		events, failures := s.outbox.Events(rows, s.scratch[:0])
		s.scratch = events[:0]
		return send(ctx, dispatch.Batch{Events: events, Failures: failures, Settled: settled, Unrouted: s.outbox.Unrouted})
	}))
}

// Finish commits the deletes of the batches the drain settled.
func (s *pollSource) Finish(ctx context.Context) {
	if err := s.poller.Drain(ctx); err != nil {
		s.log.Warn().Err(err).Msg("finishing outbox batches")
	}
}

func (s *pollSource) Ready() error {
	if st := s.poller.Status(); !st.Connected {
		if st.LastError != "" {
			return fmt.Errorf("not reading outbox table %s: %s", s.table, st.LastError)
		}
		return fmt.Errorf("not reading outbox table %s yet", s.table)
	}
	return nil
}
