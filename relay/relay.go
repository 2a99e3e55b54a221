// Package relay runs walhook: it wires change capture (package cdc) to the
// rules, the dispatcher, the retry store and the admin listener.
package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/cdc/outbox"
	"github.com/walhook/walhook/internal/backfill"
	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/dispatch"
	"github.com/walhook/walhook/internal/event"
	"github.com/walhook/walhook/internal/metrics"
	"github.com/walhook/walhook/internal/netguard"
	"github.com/walhook/walhook/internal/outboxevents"
	"github.com/walhook/walhook/internal/rules"
	"github.com/walhook/walhook/internal/sender"
	"github.com/walhook/walhook/internal/store"
)

// Relay is one running walhook.
type Relay struct {
	cfg *config.Config
	log zerolog.Logger

	statePool  *pgxpool.Pool
	Store      *store.Store
	Rules      *rules.Rules
	Dispatcher *dispatch.Dispatcher
	// Reader reads the slot (mode "logical"); nil in mode "outbox".
	Reader *cdc.Reader
	// Poller polls the outbox table (mode "outbox"); nil otherwise.
	Poller *outbox.Poller

	outbox   *outboxevents.Source   // nil without an outbox block
	consumed *outboxevents.Consumed // logical mode with delete_consumed

	metrics *metrics.Metrics // nil without an admin block

	backfills *backfills // mode logical: see backfill.go

	trusted *sender.Client // HCL endpoints: operator-trusted, unrestricted
	guarded *sender.Client // API endpoints: SSRF guard
	fixed   []*dispatch.Endpoint

	reloadMu sync.Mutex
}

// Options tune a Relay beyond its config (tests and the demo use them).
type Options struct {
	Observer dispatch.Observer
	// RetryPoll overrides how often due retries are looked for.
	RetryPoll time.Duration
	// HeartbeatInterval overrides the reader's heartbeat interval.
	HeartbeatInterval time.Duration
}

// New connects to the state database, migrates it and builds the relay.
// It retries the connection until ctx ends, so walhook may start before
// its database.
func New(ctx context.Context, cfg *config.Config, log zerolog.Logger, opts Options) (*Relay, error) {
	r := &Relay{cfg: cfg, log: log}
	stateURL := cfg.State.URL
	if stateURL == "" {
		stateURL = cfg.Source.URL
	}
	pcfg, err := pgxpool.ParseConfig(stateURL)
	if err != nil {
		return nil, fmt.Errorf("parsing the state database URL: %w", err)
	}
	pcfg.MaxConns = int32(max(8, cfg.Delivery.RetryWorkers+4))
	if r.statePool, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		return nil, fmt.Errorf("connecting to the state database: %w", err)
	}
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 10*time.Second) {
		r.Store, err = store.Open(ctx, r.statePool, cfg.State.Schema)
		if err == nil {
			break
		}
		log.Warn().Err(err).Dur("retry_in", wait).Msg("opening the state store")
		select {
		case <-ctx.Done():
			r.statePool.Close()
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
	if r.Rules, err = rules.Compile(cfg); err != nil {
		r.statePool.Close()
		return nil, fmt.Errorf("compiling rules: %w", err)
	}

	r.trusted = sender.New(sender.Options{})
	guard := &netguard.Guard{}
	if cfg.Admin != nil {
		guard.Allow, guard.AllowHTTP = cfg.Admin.AllowNetworks, cfg.Admin.AllowHTTP
	}
	r.guarded = sender.New(sender.Options{Guard: guard})
	for _, ep := range cfg.Endpoints {
		de, err := configEndpoint(ep, r.trusted)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.fixed = append(r.fixed, de)
	}

	observer := opts.Observer
	if cfg.Admin != nil {
		r.metrics = metrics.New(nil)
		if observer == nil {
			observer = r.metrics
		} else {
			observer = dispatch.Observers{observer, r.metrics}
		}
	}
	ack, evaluate, err := r.source(opts)
	if err != nil {
		r.Close()
		return nil, err
	}
	ack, evaluate = r.wireBackfills(ack, evaluate)
	r.Dispatcher = dispatch.New(dispatch.Options{
		Store:        r.Store,
		Rules:        r.Rules,
		Evaluate:     evaluate,
		Ack:          ack,
		MaxInFlight:  cfg.Delivery.MaxInFlight,
		LogAttempts:  cfg.Delivery.LogAttempts == "all",
		RetryWorkers: cfg.Delivery.RetryWorkers,
		RetryPoll:    opts.RetryPoll,
		Observer:     observer,
		Logger:       log,
	})
	if r.metrics != nil {
		r.metrics.WatchQueue(r.Store.Stats)
		r.metrics.WatchHealth(r.Store.AllHealth)
		if r.Reader != nil {
			r.metrics.WatchReader(r.Reader.Status)
		}
	}
	return r, nil
}

// source builds what reads changes: the slot's Reader, or in mode "outbox"
// the outbox Poller. It returns where the dispatcher's watermark goes and,
// when the slot carries an outbox table, how changes become events.
func (r *Relay) source(opts Options) (ack func(cdc.LSN), evaluate func(*cdc.Change, []event.Event) ([]event.Event, []event.Failure), err error) {
	cfg := r.cfg
	if o := cfg.Source.Outbox; o != nil {
		if r.outbox, err = outboxevents.NewSource(o.Table, r.Rules); err != nil {
			return nil, nil, fmt.Errorf("outbox table: %w", err)
		}
	}
	if cfg.Source.Mode == "outbox" {
		o := cfg.Source.Outbox
		r.Poller, err = outbox.NewPoller(outbox.Config{
			URL:          cfg.Source.URL,
			Table:        o.Table,
			BatchSize:    o.BatchSize,
			PollInterval: o.PollInterval,
			Logger:       r.log.With().Str("component", "outbox").Logger(),
		})
		if err != nil {
			return nil, nil, fmt.Errorf("outbox poller: %w", err)
		}
		return nil, nil, nil
	}
	r.Reader = cdc.NewReader(cdc.ReaderConfig{
		URL:               cfg.Source.URL,
		Slot:              cfg.Source.Slot,
		Publication:       cfg.Source.Publication,
		Tables:            cfg.Source.Tables,
		HeartbeatInterval: opts.HeartbeatInterval,
		MessagePrefixes:   []string{backfill.MessagePrefix},
		Logger:            r.log,
	})
	if r.outbox == nil {
		return r.Reader.Ack, nil, nil
	}
	if !cfg.Source.Outbox.DeleteConsumed {
		return r.Reader.Ack, r.outbox.Evaluate(nil), nil
	}
	r.consumed, err = outboxevents.NewConsumed(cfg.Source.URL, r.outbox.Table(), r.Reader.Ack, r.log.With().Str("component", "outbox").Logger())
	if err != nil {
		return nil, nil, err
	}
	return r.consumed.Ack, r.outbox.Evaluate(r.consumed.Record), nil
}

// Close releases the relay's connections.
func (r *Relay) Close() {
	r.trusted.Close()
	r.guarded.Close()
	r.statePool.Close()
	if r.consumed != nil {
		r.consumed.Close()
	}
}

// Reload rebuilds the routing table from the config endpoints and the
// webhooks registered through the API.
func (r *Relay) Reload(ctx context.Context) error {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	ws, err := r.Store.AllWebhooks(ctx)
	if err != nil {
		return err
	}
	eps := append([]*dispatch.Endpoint(nil), r.fixed...)
	now := time.Now()
	for _, w := range ws {
		ep, err := apiEndpoint(w, r.guarded, now)
		if err != nil {
			r.log.Error().Err(err).Str("webhook_id", w.ID).Msg("skipping a webhook that cannot be used")
			continue
		}
		eps = append(eps, ep)
	}
	return r.Dispatcher.SetEndpoints(ctx, eps)
}

// Run captures, dispatches and retries until ctx ends, then drains within
// the configured shutdown timeout and confirms what was settled.
func (r *Relay) Run(ctx context.Context) error {
	defer r.Close()
	if err := r.Reload(ctx); err != nil {
		return fmt.Errorf("loading endpoints: %w", err)
	}
	var adminListener net.Listener
	if r.cfg.Admin != nil {
		l, err := net.Listen("tcp", r.cfg.Admin.Listen)
		if err != nil {
			return fmt.Errorf("admin listener: %w", err)
		}
		adminListener = l
	}
	if err := r.Dispatcher.Start(ctx); err != nil {
		return fmt.Errorf("starting the dispatcher: %w", err)
	}

	var bg sync.WaitGroup
	bg.Add(1)
	go func() { defer bg.Done(); r.watchWebhooks(ctx) }()
	if r.cfg.State.Retention > 0 {
		bg.Add(1)
		go func() { defer bg.Done(); r.pruneLoop(ctx) }()
	}
	bg.Add(1)
	go func() { defer bg.Done(); r.runBackfills(ctx) }()
	if adminListener != nil {
		bg.Add(1)
		go func() { defer bg.Done(); r.serveAdmin(ctx, adminListener) }()
	}

	var runErr error
	consumedDone := make(chan struct{})
	consumedCtx, stopConsumed := context.WithCancel(context.WithoutCancel(ctx))
	defer stopConsumed()
	if r.Poller != nil {
		close(consumedDone)
		r.log.Info().Str("outbox", r.cfg.Source.Outbox.Table).Int("endpoints", len(r.fixed)).Msg("walhook running (polling the outbox)")
		runErr = r.Poller.Run(ctx, outbox.SinkFunc(func(ctx context.Context, rows []outbox.Row, settled func()) error {
			events, failures := r.outbox.Events(rows, nil)
			return r.Dispatcher.ApplyEvents(ctx, events, failures, settled)
		}))
	} else {
		if r.consumed != nil {
			go func() { defer close(consumedDone); r.consumed.Run(consumedCtx) }()
		} else {
			close(consumedDone)
		}
		r.log.Info().Str("slot", r.cfg.Source.Slot).Strs("tables", r.cfg.Source.Tables).
			Int("endpoints", len(r.fixed)).Msg("walhook running")
		runErr = r.Reader.Run(ctx, r.sink())
	}
	bg.Wait()

	drain := r.cfg.Delivery.ShutdownTimeout
	if drain <= 0 {
		drain = 30 * time.Second
	}
	r.log.Info().Dur("timeout", drain).Msg("stopping: draining deliveries in memory")
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	shutErr := r.Dispatcher.Shutdown(dctx)
	stopConsumed()
	<-consumedDone
	if r.Poller != nil {
		// The drain settled every batch; their deletes commit now.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		if err := r.Poller.Drain(pctx); err != nil {
			r.log.Warn().Err(err).Msg("finishing outbox batches")
		}
	}
	settled := r.Dispatcher.Settled()
	if r.consumed != nil && settled > 0 {
		// Consumed rows are deleted before the slot may pass them.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		if err := r.consumed.Flush(fctx); err != nil {
			r.log.Warn().Err(err).Msg("deleting consumed outbox rows at shutdown; not confirming the slot, changes since the last confirmation will be delivered again")
			settled = 0
		}
	}
	if settled > 0 && r.Reader != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		if err := cdc.Confirm(cctx, r.cfg.Source.URL, r.cfg.Source.Slot, settled); err != nil {
			r.log.Warn().Err(err).Stringer("lsn", settled).Msg("confirming the settled position at shutdown; changes after the last confirmation will be delivered again")
		} else {
			r.log.Info().Stringer("lsn", settled).Msg("confirmed the settled position")
		}
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	return shutErr
}

// watchWebhooks reloads the routing table whenever a webhook changes,
// here or in another process, and every 30 s in case a notification was
// missed.
func (r *Relay) watchWebhooks(ctx context.Context) {
	changed := make(chan struct{}, 1)
	poke := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	go func() {
		for ctx.Err() == nil {
			err := r.Store.WatchWebhooks(ctx, poke, func(int64) { poke() })
			if err != nil && ctx.Err() == nil {
				r.log.Warn().Err(err).Msg("listening for webhook changes; retrying")
			}
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
		}
	}()
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-t.C:
		}
		if err := r.Reload(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn().Err(err).Msg("reloading webhooks")
		}
	}
}
