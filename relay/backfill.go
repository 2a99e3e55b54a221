package relay

import (
	"strings"

	"github.com/walhook/walhook/internal/admin"
	"github.com/walhook/walhook/internal/backfill"
)

// backfills is the backfill stage of a relay reading a slot: the Runner
// that reads the tables and the Submitter behind POST /v1/backfills. The
// Stage itself lives in the slot source (relay/pipeline.go), which is
// where the seam is (internal/backfill/doc.go has the why):
//   - the reader asks for the watermark messages (ReaderConfig
//     MessagePrefixes = backfill.MessagePrefix);
//   - every transaction from the slot passes Stage.Intercept, in stream
//     order, before evaluation; its handedOver runs once Dispatch took
//     the batch;
//   - evaluation goes through Stage.Evaluate, which gives read rows their
//     ids and targets (event.Event.Endpoint, honoured by
//     dispatch.Endpoint.Wants);
//   - the settle.Tracker's ack, which confirms the slot, also calls
//     Stage.Settled;
//   - the Runner runs in the relay's background loops until the relay
//     stops (Relay.Run).
type backfills struct {
	*backfill.Runner
	*backfill.Submitter
}

var _ admin.Backfills = (*backfills)(nil)

// wireBackfills builds the runner and submitter of the slot source's
// backfill stage (mode logical only).
func (r *Relay) wireBackfills(ss *slotSource) {
	runner := backfill.NewRunner(backfill.RunnerOptions{
		URL:       r.cfg.Source.URL,
		Store:     r.store,
		Stage:     ss.stage,
		Streaming: func() bool { return ss.reader.Status().Streaming },
		Logger:    r.log,
	})
	r.backfills = &backfills{
		Runner: runner,
		Submitter: &backfill.Submitter{
			URL:         r.cfg.Source.URL,
			Store:       r.store,
			Events:      r.rules.Catalogue(),
			Subscribers: r.backfillSubscribers,
			OnSubmit:    runner.Wake,
		},
	}
	if r.metrics != nil {
		if err := r.metrics.Register(runner.Collector()); err != nil {
			r.log.Warn().Err(err).Msg("registering the backfill metrics")
		}
	}
}

// backfillSubscribers lists the active endpoints a backfill may target.
func (r *Relay) backfillSubscribers() []backfill.Subscriber {
	var out []backfill.Subscriber
	for _, ep := range r.dispatcher.Endpoints() {
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

// adminBackfills is what the admin API starts backfills with; nil in mode
// outbox.
func (r *Relay) adminBackfills() admin.Backfills {
	if r.backfills == nil {
		return nil
	}
	return r.backfills
}
