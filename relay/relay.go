// Package relay runs walhook: it wires change capture (package cdc) to the
// rules, the dispatcher, the retry store and the admin listener. The
// pipeline it builds, and the rules that keep it from stalling, are in
// docs/architecture.md.
package relay

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/console"
	"github.com/walhook/walhook/internal/dispatch"
	"github.com/walhook/walhook/internal/lifecycle"
	"github.com/walhook/walhook/internal/membership"
	"github.com/walhook/walhook/internal/metrics"
	"github.com/walhook/walhook/internal/netguard"
	"github.com/walhook/walhook/internal/rules"
	"github.com/walhook/walhook/internal/sender"
	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/store"
)

// Relay is one running walhook.
type Relay struct {
	cfg *config.Config
	log zerolog.Logger

	statePool  *pgxpool.Pool
	store      *store.Store
	rules      *rules.Rules
	dispatcher *dispatch.Dispatcher
	source     Source

	metrics *metrics.Metrics // nil without an admin block or Options.Metrics
	tail    *console.Tail    // the console's live tail; nil without an admin block
	ui      *console.Console // the web console; nil without an admin block

	backfills *backfills         // mode logical: see backfill.go
	replays   *replayer          // replays of failed evaluations: see evaluations.go
	member    *membership.Member // this instance in the instances list: see members.go
	watch     *watcher           // mode logical: see watch.go

	trusted *sender.Client // HCL endpoints: operator-trusted, unrestricted
	guarded *sender.Client // API endpoints: SSRF guard
	fixed   []*dispatch.Endpoint
	// keyring shares one signing key per distinct secret among the
	// endpoints' signers, so a secret shared by many endpoints signs an
	// event once (internal/signing/memo.go).
	keyring *signing.Keyring

	// reloading lets one Reload run at a time; a semaphore rather than a
	// mutex, since a reload queries the store and waiters must be able to
	// give up with their ctx.
	reloading chan struct{}
	// released tells the webhook watcher to give up its LISTEN connection:
	// the state database is shutting down (see watchState).
	released chan struct{}
}

// Options tune a Relay beyond its config (tests and the demo use them).
type Options struct {
	Observer dispatch.Observer
	// Metrics, when set, is the registry the relay reports to (and watches
	// its queue, endpoint health and reader with) instead of one of its own;
	// without it, an admin block gets a new one.
	Metrics *metrics.Metrics
	// RetryPoll overrides how often due retries are looked for (default 1s).
	RetryPoll time.Duration
	// HeartbeatInterval overrides the reader's heartbeat interval.
	HeartbeatInterval time.Duration
	// SlotInUseRetry overrides how often a standby tries the slot while
	// another instance holds it (default 1s; cdc.ReaderConfig).
	SlotInUseRetry time.Duration
	// WatchInterval overrides how often the slot and the watched tables
	// are read from Postgres's catalog (default 5s; see watch.go).
	WatchInterval time.Duration
	// MemberEvery overrides the membership heartbeat interval (default
	// 5s) and MemberPruneAfter how long a dead instance stays listed
	// (default 1h); see members.go.
	MemberEvery, MemberPruneAfter time.Duration
}

// New connects to the state database, migrates it and builds the relay.
// It retries the connection until ctx ends, so walhook may start before
// its database.
// statePoolSize is the most connections walhook holds to the state
// database: the claim and completion writers, the persister, health, the
// API and the console share them.
const statePoolSize = 16

func New(ctx context.Context, cfg *config.Config, log zerolog.Logger, opts Options) (*Relay, error) {
	r := &Relay{cfg: cfg, log: log, reloading: make(chan struct{}, 1), released: make(chan struct{}, 1)}
	pcfg, err := pgxpool.ParseConfig(cfg.StateURL())
	if err != nil {
		return nil, fmt.Errorf("parsing the state database URL: %w", err)
	}
	// Retries hold no connection while they are attempted: their claims
	// and outcomes are written in groups (docs/architecture.md, "The retry
	// store"), so the pool does not grow with retry_workers.
	pcfg.MaxConns = statePoolSize
	if r.statePool, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		return nil, fmt.Errorf("connecting to the state database: %w", err)
	}
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 10*time.Second) {
		r.store, err = store.Open(ctx, r.statePool, cfg.State.Schema)
		if err == nil {
			break
		}
		log.Warn().Err(err).Stringer("retry_in", wait).Msg("opening the state store")
		select {
		case <-ctx.Done():
			r.statePool.Close()
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
	if r.rules, err = rules.Compile(cfg); err != nil {
		r.statePool.Close()
		return nil, fmt.Errorf("compiling rules: %w", err)
	}
	if cfg.Source.Outbox != nil {
		if err := checkOutbox(ctx, cfg, log); err != nil {
			r.statePool.Close()
			return nil, err
		}
	}

	var roots *x509.CertPool
	if cfg.Delivery.CAFile != "" {
		if roots, err = sender.LoadRootCAs(cfg.Delivery.CAFile); err != nil {
			r.statePool.Close()
			return nil, fmt.Errorf("loading delivery.ca_file: %w", err)
		}
	}
	// WALHOOK_HTTP_CLIENT=net/http sends every attempt through net/http
	// alone, with the HTTP/1.1 path off (docs/operations.md).
	netHTTP := os.Getenv("WALHOOK_HTTP_CLIENT") == "net/http"
	r.trusted = sender.New(sender.Options{RootCAs: roots, NetHTTP: netHTTP, HTTP1Only: !cfg.Delivery.HTTP2})
	guard := &netguard.Guard{}
	if cfg.Admin != nil {
		guard.Allow, guard.AllowHTTP = cfg.Admin.AllowNetworks, cfg.Admin.AllowHTTP
	}
	r.guarded = sender.New(sender.Options{Guard: guard, RootCAs: roots, NetHTTP: netHTTP, HTTP1Only: !cfg.Delivery.HTTP2})
	r.keyring = signing.NewKeyring()
	for _, ep := range cfg.Endpoints {
		de, err := configEndpoint(ep, r.trusted, r.keyring)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.fixed = append(r.fixed, de)
	}

	r.member = r.newMember(opts)
	var observer dispatch.Observer = r.member
	if opts.Observer != nil {
		observer = dispatch.Observers{opts.Observer, r.member}
	}
	r.metrics = opts.Metrics
	if r.metrics == nil && cfg.Admin != nil {
		r.metrics = metrics.New(nil)
	}
	if r.metrics != nil {
		observer = dispatch.Observers{observer, r.metrics}
	}
	if cfg.Admin != nil {
		r.tail = console.NewTail()
		observer = dispatch.Observers{observer, r.tail}
	}
	if cfg.Source.Mode == config.ModeOutbox {
		ps, err := newPollSource(cfg, r.rules, r.metrics, log)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.source = ps
		if r.metrics != nil {
			r.metrics.WatchOutbox(func(ctx context.Context) (metrics.OutboxBacklog, error) {
				b, err := ps.backlog(ctx)
				return metrics.OutboxBacklog{Rows: b.Rows, OldestAge: b.OldestAge}, err
			})
		}
	} else {
		ss, err := newSlotSource(cfg, r.rules, SlotRecords(r.store), r.announceRelease, observer, r.metrics, opts, log)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.source = ss
		r.watch = newWatcher(slotWatchConfig{
			url: cfg.Source.URL, slot: cfg.Source.Slot, publication: cfg.Source.Publication, tables: cfg.Source.Tables,
			uses: cfg.TableUses(), interval: opts.WatchInterval, reader: ss.reader, metrics: r.metrics, records: r.store, log: log,
		})
		if r.metrics != nil {
			r.metrics.WatchReader(ss.reader.Status)
			r.metrics.WatchReplication(r.watch.replication)
		}
		r.wireBackfills(ss)
	}
	retryPoll := opts.RetryPoll
	if retryPoll <= 0 {
		retryPoll = time.Second
	}
	r.dispatcher, err = dispatch.New(dispatch.Options{
		Store:        r.store,
		MaxInFlight:  cfg.Delivery.MaxInFlight,
		LogAttempts:  cfg.Delivery.LogAttempts == config.LogAll,
		RetryWorkers: cfg.Delivery.RetryWorkers,
		ShareAll:     cfg.Delivery.Share == config.ShareAll,
		RetryPoll:    retryPoll,
		Observer:     observer,
		Logger:       log,
	})
	if err != nil {
		r.Close()
		return nil, err
	}
	r.replays = newReplayer(r.store, r.rules, r.dispatcher, log)
	switch s := r.source.(type) {
	case *pollSource:
		r.replays.outbox = s.outbox
	case *slotSource:
		r.replays.outbox = s.outbox
	}
	if r.metrics != nil {
		r.metrics.WatchQueue(r.store.Stats)
		r.metrics.WatchHealth(r.store.AllHealth)
		r.metrics.WatchInstances(r.store.Instances)
	}
	if r.metrics != nil && cfg.Admin != nil { // Options.Metrics alone serves no console
		r.ui = r.newConsole()
	}
	return r, nil
}

// Close releases the relay's connections.
func (r *Relay) Close() { r.closeBy(time.Time{}) }

// closeBy releases the relay's connections, waiting for the state pool to
// close until by at most (zero: no limit). Closing a connection to a server
// that stopped answering waits on that server; past by, the pool is left
// closing in the background so that the process can exit on time.
func (r *Relay) closeBy(by time.Time) {
	r.trusted.Close()
	r.guarded.Close()
	closed := make(chan struct{})
	go func() { defer close(closed); r.statePool.Close() }()
	if by.IsZero() {
		<-closed
		return
	}
	t := time.NewTimer(max(time.Until(by), 0))
	defer t.Stop()
	select {
	case <-closed:
	case <-t.C:
		r.log.Warn().Msg("the state database does not answer; exiting without waiting for its connections to close")
	}
}

// Reload rebuilds the routing table from the config endpoints and the
// webhooks registered through the API.
func (r *Relay) Reload(ctx context.Context) error {
	select {
	case r.reloading <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.reloading }()
	ws, err := r.store.AllWebhooks(ctx)
	if err != nil {
		return err
	}
	eps := append([]*dispatch.Endpoint(nil), r.fixed...)
	now := time.Now()
	secrets := map[string]bool{}
	for _, ep := range r.cfg.Endpoints {
		for _, s := range ep.Secrets {
			secrets[s] = true
		}
	}
	for _, w := range ws {
		for _, s := range w.Secrets {
			secrets[s.Value] = true
		}
	}
	r.keyring.Retain(secrets) // rotated-out secrets leave memory
	for _, w := range ws {
		ep, err := apiEndpoint(w, r.guarded, r.keyring, now)
		if err != nil {
			r.log.Error().Err(err).Str("webhook_id", w.ID).Msg("skipping a webhook that cannot be used")
			continue
		}
		eps = append(eps, ep)
	}
	return r.dispatcher.SetEndpoints(ctx, eps)
}

// Routes reports whether the endpoint with id is in the routing table: a
// webhook created through the API receives events once it is.
func (r *Relay) Routes(id string) bool { return r.dispatcher.Endpoint(id) != nil }

// Run captures, dispatches and retries until ctx ends, then drains within
// the configured shutdown timeout and makes final what was settled. The
// whole stop takes at most shutdown_timeout, even when the state database
// cannot be reached: what is not settled by then is read again after a
// restart.
func (r *Relay) Run(ctx context.Context) error {
	var closeBy time.Time // set once the shutdown's deadline is known
	defer func() { r.closeBy(closeBy) }()
	// The stop's time counts from the signal: what the source does on its
	// way out (recording, announcing the slot free) is part of it.
	var stoppedAt atomic.Int64
	unwatch := context.AfterFunc(ctx, func() { stoppedAt.Store(time.Now().UnixNano()) })
	defer unwatch()
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
		if strings.HasSuffix(r.cfg.Admin.Listen, ":0") {
			r.member.SetListen(l.Addr().String()) // the port the system chose
		}
	}
	if err := r.dispatcher.Start(ctx); err != nil {
		return fmt.Errorf("starting the dispatcher: %w", err)
	}
	// The heartbeat goes on through the drain below: the instance is
	// delivering until the dispatcher has shut down, and leaves after.
	members := lifecycle.New(context.WithoutCancel(ctx))
	members.Go(r.member.Run)

	loops := lifecycle.New(ctx)
	loops.Go(r.watchWebhooks)
	loops.Go(r.watchState)
	if r.cfg.State.Retention > 0 {
		loops.Every(pruneFirst, pruneEvery, r.prune)
	}
	if r.backfills != nil {
		loops.Go(r.backfills.Run)
	}
	loops.Go(r.replays.Run)
	if r.watch != nil {
		loops.Go(r.watch.run)
	}
	if adminListener != nil {
		loops.Go(func(ctx context.Context) { r.serveAdmin(ctx, adminListener) })
	}
	r.log.Info().Int("endpoints", len(r.fixed)).Msg("dispatching")
	runErr := r.source.Run(ctx, r.dispatcher.Dispatch)
	loops.StopAndWait()

	timeout := r.cfg.Delivery.ShutdownTimeout
	r.log.Info().Stringer("timeout", timeout).Msg("stopping: draining deliveries in memory")
	stopping := time.Now()
	if ns := stoppedAt.Load(); ns != 0 {
		stopping = time.Unix(0, ns)
	}
	closeBy = stopping.Add(timeout)
	sctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), closeBy)
	defer cancel()
	// The dispatcher gets the time up to a reserve for Finish.
	reserve := min(timeout/5, 5*time.Second)
	dctx, dcancel := context.WithDeadline(sctx, closeBy.Add(-reserve))
	shutErr := r.dispatcher.Shutdown(dctx)
	dcancel()
	r.source.Finish(sctx)
	members.StopAndWait()
	r.member.Leave(sctx)
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	return shutErr
}

// watchWebhooks reloads the routing table whenever a webhook changes,
// here or in another process, and every 30 s in case a notification was
// missed. It listens in a loop of its own group, which it stops and waits
// for before returning.
func (r *Relay) watchWebhooks(ctx context.Context) {
	changed := make(chan struct{}, 1)
	poke := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	listen := lifecycle.New(ctx)
	defer listen.StopAndWait()
	listen.Go(func(ctx context.Context) {
		for ctx.Err() == nil {
			err := r.listen(ctx, poke)
			if err != nil && ctx.Err() == nil {
				r.log.Warn().Err(err).Msg("listening for webhook changes; retrying")
			}
			t := time.NewTimer(2 * time.Second)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	})
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

// listen runs the store's LISTEN (webhook changes, and in slot mode a slot
// released by another instance) until ctx ends, it fails, or watchState
// releases the state database's connections.
func (r *Relay) listen(ctx context.Context, poke func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	n := store.Notifications{Webhooks: func(int64) { poke() }}
	if ss, ok := r.source.(*slotSource); ok {
		n.SlotReleased = func(slot string) {
			if slot == r.cfg.Source.Slot {
				ss.reader.Retry() // another instance let go of our slot
			}
		}
	}
	go func() { done <- r.store.Listen(ctx, poke, n) }()
	select {
	case err := <-done:
		return err
	case <-r.released:
		cancel()
		<-done
		return errors.New("the state database is shutting down: released the LISTEN connection")
	}
}

// announceTimeout bounds announceRelease.
const announceTimeout = time.Second

// announceRelease tells the other instances, through the state database,
// that this one closed its replication connection, so that a standby
// takes the slot at once rather than at its next try (docs/scaling.md,
// "Rolling restarts"). The reader calls it after each session that
// streamed, with a context that outlives the relay's.
func (r *Relay) announceRelease(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, announceTimeout)
	defer cancel()
	if err := r.store.NotifySlotReleased(ctx, r.cfg.Source.Slot); err != nil {
		r.log.Warn().Err(err).Msg("telling the standbys that the slot is free; they take it at their next try")
	}
}

// stateProbeInterval is how often watchState opens a new connection to the
// state database.
const stateProbeInterval = 5 * time.Second

// watchState lets go of the state database's connections while it refuses
// new sessions as shutting down (SQLSTATE 57P03). A smart shutdown waits
// for every open session to end and only refuses new ones, so walhook's
// idle pool connections and its LISTEN would hold it up for good; a fast
// shutdown has terminated them already. Work that needs the store fails
// meanwhile (new connections are refused) and is retried once the
// database is back. See docs/architecture.md, "Letting go of a database
// that shuts down".
func (r *Relay) watchState(ctx context.Context) {
	cdc.WatchShutdown(ctx, stateProbeInterval, r.statePool.Config().ConnConfig, func(err error, first bool) {
		if first {
			r.log.Warn().Err(err).Msg("the state database is shutting down: closing walhook's connections to it so that it can")
		}
		r.statePool.Reset()
		select {
		case r.released <- struct{}{}:
		default:
		}
	})
}
