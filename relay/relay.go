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
	"github.com/walhook/walhook/relay/config"
	"github.com/walhook/walhook/relay/dispatch"
	"github.com/walhook/walhook/relay/metrics"
	"github.com/walhook/walhook/relay/netguard"
	"github.com/walhook/walhook/relay/rules"
	"github.com/walhook/walhook/relay/sender"
	"github.com/walhook/walhook/relay/store"
)

// Relay is one running walhook.
type Relay struct {
	cfg *config.Config
	log zerolog.Logger

	statePool  *pgxpool.Pool
	Store      *store.Store
	Rules      *rules.Rules
	Dispatcher *dispatch.Dispatcher
	Reader     *cdc.Reader

	metrics *metrics.Metrics // nil without an admin block

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
		}
	}
	r.Reader = cdc.NewReader(cdc.ReaderConfig{
		URL:               cfg.Source.URL,
		Slot:              cfg.Source.Slot,
		Publication:       cfg.Source.Publication,
		Tables:            cfg.Source.Tables,
		HeartbeatInterval: opts.HeartbeatInterval,
		Logger:            log.With().Str("component", "cdc").Logger(),
	})
	r.Dispatcher = dispatch.New(dispatch.Options{
		Store:        r.Store,
		Rules:        r.Rules,
		Ack:          r.Reader.Ack,
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
		r.metrics.WatchReader(r.Reader.Status)
	}
	return r, nil
}

// Close releases the relay's connections.
func (r *Relay) Close() {
	r.trusted.Close()
	r.guarded.Close()
	r.statePool.Close()
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
	if adminListener != nil {
		bg.Add(1)
		go func() { defer bg.Done(); r.serveAdmin(ctx, adminListener) }()
	}

	r.log.Info().Str("slot", r.cfg.Source.Slot).Strs("tables", r.cfg.Source.Tables).
		Int("endpoints", len(r.fixed)).Msg("walhook running")
	runErr := r.Reader.Run(ctx, r.Dispatcher)
	bg.Wait()

	drain := r.cfg.Delivery.ShutdownTimeout
	if drain <= 0 {
		drain = 30 * time.Second
	}
	r.log.Info().Dur("timeout", drain).Msg("stopping: draining deliveries in memory")
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	shutErr := r.Dispatcher.Shutdown(dctx)
	settled := r.Dispatcher.Settled()
	if settled > 0 {
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
