package relay

import (
	"context"
	"strings"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/admin"
	"github.com/walhook/walhook/internal/backfill"
	"github.com/walhook/walhook/internal/event"
)

// backfills is the backfill stage of a relay reading a slot: the Stage
// between the reader and the dispatcher, the Runner that reads the tables,
// and the Submitter behind POST /v1/backfills.
//
// The seam, five hooks (internal/backfill/doc.go has the why):
//   - the reader asks for the watermark messages (ReaderConfig
//     MessagePrefixes = backfill.MessagePrefix);
//   - every transaction from the slot passes Stage.Intercept, in stream
//     order, before evaluation (here: the Stage is the reader's cdc.Sink);
//   - evaluation goes through Stage.Evaluate, which gives read rows their
//     ids and targets (event.Event.Endpoint, honoured by Endpoint.Wants);
//   - whatever confirms the slot also calls Stage.Settled with the settled
//     position;
//   - the Runner runs beside the reader until the relay stops.
type backfills struct {
	stage *backfill.Stage
	*backfill.Runner
	*backfill.Submitter
}

var _ admin.Backfills = (*backfills)(nil)

// wireBackfills puts the backfill stage in front of the dispatcher (mode
// logical only) and returns the ack and evaluate the dispatcher must use.
func (r *Relay) wireBackfills(ack func(cdc.LSN), evaluate func(*cdc.Change, []event.Event) ([]event.Event, []event.Failure)) (func(cdc.LSN), func(*cdc.Change, []event.Event) ([]event.Event, []event.Failure)) {
	if r.Reader == nil {
		return ack, evaluate
	}
	stage := backfill.NewStage(cdc.SinkFunc(func(ctx context.Context, tx cdc.Transaction) error {
		return r.Dispatcher.Apply(ctx, tx)
	}))
	runner := backfill.NewRunner(backfill.RunnerOptions{
		URL:       r.cfg.Source.URL,
		Store:     r.Store,
		Stage:     stage,
		Streaming: func() bool { return r.Reader.Status().Streaming },
		Logger:    r.log,
	})
	r.backfills = &backfills{
		stage:  stage,
		Runner: runner,
		Submitter: &backfill.Submitter{
			URL:         r.cfg.Source.URL,
			Store:       r.Store,
			Events:      r.Rules.Catalogue(),
			Subscribers: r.backfillSubscribers,
			OnSubmit:    runner.Wake,
		},
	}
	if r.metrics != nil {
		if err := r.metrics.Register(runner.Collector()); err != nil {
			r.log.Warn().Err(err).Msg("registering the backfill metrics")
		}
	}
	if evaluate == nil {
		evaluate = r.Rules.Evaluate
	}
	return func(lsn cdc.LSN) { ack(lsn); stage.Settled(lsn) }, stage.Evaluate(evaluate)
}

// backfillSubscribers lists the active endpoints a backfill may target.
func (r *Relay) backfillSubscribers() []backfill.Subscriber {
	var out []backfill.Subscriber
	for _, ep := range r.Dispatcher.Endpoints() {
		if !ep.Active {
			continue
		}
		s := backfill.Subscriber{ID: ep.ID, Events: ep.Events}
		if strings.HasPrefix(ep.ID, "cfg:") {
			s.Name = ep.Name
		}
		out = append(out, s)
	}
	return out
}

// sink is what the slot's reader hands transactions to.
func (r *Relay) sink() cdc.Sink {
	if r.backfills != nil {
		return r.backfills.stage
	}
	return r.Dispatcher
}

// runBackfills runs submitted backfills until ctx ends (mode logical).
func (r *Relay) runBackfills(ctx context.Context) {
	if r.backfills != nil {
		r.backfills.Run(ctx)
	}
}

// adminBackfills is what the admin API starts backfills with; nil in mode
// outbox.
func (r *Relay) adminBackfills() admin.Backfills {
	if r.backfills == nil {
		return nil
	}
	return r.backfills
}
