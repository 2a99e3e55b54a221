// Package demo is `walhook demo`: a throwaway Postgres with the sample CRM
// schema, walhook running config.example.hcl's rules in this process, a
// local verifying receiver per endpoint, and a scripted story played
// through plain SQL, printed as the endpoints see it.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/termstyle"
	"github.com/walhook/walhook/relay"
)

// Options configure a demo run.
type Options struct {
	// ConfigPath is the config whose rules and endpoints the demo runs
	// (config.example.hcl).
	ConfigPath string
	// DatabaseURL, if set, is a server with wal_level=logical on which
	// the demo creates (and at the end drops) a database of its own,
	// instead of starting a throwaway cluster.
	DatabaseURL string
	// Keep leaves everything running after the story, until ctx ends.
	Keep bool
	// Admin serves the admin API with a printed token, on AdminListen or
	// else the config's admin.listen.
	Admin       bool
	AdminListen string
	Out         io.Writer // the story
	Color       bool
	Log         zerolog.Logger // walhook's own logs
}

// RetrySchedule is the demo's retry schedule, short so that a recovery
// shows within seconds (the default starts at 5s, then 5m).
var RetrySchedule = []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second}

// secretEnv are the environment variables config.example.hcl reads, set
// by the demo to fresh values.
var secretEnv = map[string]func() string{
	"WALHOOK_ADMIN_TOKEN": randomHex,
	"CRM_WEBHOOK_SECRET":  signing.GenerateSecret, // standard-webhooks: whsec_...
	"LEGACY_SECRET":       randomHex,
}

// randomHex is 32 random hex digits: a token or hmac-sha256 secret.
func randomHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Run plays the demo until the story ends (or, with Keep, until ctx
// ends), then stops walhook, the receivers and the database. A ctx ended
// by the user is not an error.
func Run(ctx context.Context, opts Options) error {
	started := time.Now()
	p := &printer{out: opts.Out, color: opts.Color, shown: map[string]bool{}}
	p.printf("walhook demo: the sample CRM schema in Postgres, walhook running %s's rules,\n"+
		"a local receiver per endpoint that verifies every signature, and a short story in SQL.\n"+
		"Ctrl-C stops it all.\n\n", opts.ConfigPath)

	db, err := openDatabase(ctx, opts.DatabaseURL, opts.Out)
	if err != nil {
		if ctx.Err() != nil {
			p.printf("interrupted: what the demo had started is stopped and removed\n")
		}
		return canceled(ctx, err)
	}
	defer func() {
		if err := db.close(); err != nil {
			p.printf("stopping postgres: %v\n", err)
		} else if db.owned {
			p.printf("postgres stopped; %s removed\n", db.cluster.Dir())
		} else {
			p.printf("database %s dropped\n", db.Name)
		}
	}()

	cfg, err := loadConfig(opts, db)
	if err != nil {
		return err
	}
	rs, err := newReceivers(cfg)
	if err != nil {
		return err
	}
	t := newTally()
	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	watched := rs.watch(watchCtx, p, t)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rs.close(sctx)
		stopWatch()
		<-watched
	}()
	describe(p, cfg, rs)

	r, err := relay.New(ctx, cfg, opts.Log, relay.Options{Observer: t, RetryPoll: 100 * time.Millisecond})
	if err != nil {
		return canceled(ctx, fmt.Errorf("starting walhook: %w", err))
	}
	runCtx, stopRelay := context.WithCancel(ctx)
	defer stopRelay()
	ran := make(chan error, 1)
	go func() { ran <- r.Run(runCtx) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		stopRelay()
		err := <-ran
		p.printf("\nwalhook stopped (drained; settled position confirmed to the slot)\n")
		return err
	}
	defer stop()

	if returned, err := waitStreaming(ctx, r, ran); err != nil {
		stopped = returned
		return canceled(ctx, err)
	}
	p.printf("  walhook    streaming from slot %q, %s after start\n", cfg.Source.Slot, time.Since(started).Round(100*time.Millisecond))
	if cfg.Admin != nil {
		p.printf("  admin API  http://%s  (export WALHOOK_ADMIN_TOKEN=%s)\n", cfg.Admin.Listen, os.Getenv("WALHOOK_ADMIN_TOKEN"))
		p.printf("             curl -sS -H \"Authorization: Bearer $WALHOOK_ADMIN_TOKEN\" http://%s/v1/webhooks/cfg:%s/deliveries\n", cfg.Admin.Listen, rs.failing)
	}

	storyStart := time.Now()
	if err := play(ctx, db.URL, cfg, p, t); err != nil {
		return canceled(ctx, err)
	}
	p.printf("\n%s in %s: %s\n", p.style(termstyle.Bold, "Story done"), time.Since(storyStart).Round(100*time.Millisecond), t.summary())

	if opts.Keep {
		p.printf("\nStill running (--keep): change rows by hand and watch the webhooks arrive.\n"+
			"  %s\n"+
			"  e.g.  UPDATE deals SET stage = 'lost' WHERE id = 1;\n"+
			"        INSERT INTO contacts (organization_id, first_name, email) VALUES (1, 'Alan', 'alan@example.com');\n"+
			"To run a walhook of your own on this database (its slot, publication and state\n"+
			"schema are named walhook_demo, so the default names are free):\n"+
			"  export DATABASE_URL='%s'\n"+
			"Ctrl-C stops walhook and the database.\n", db.psqlCommand(), redact(db.URL))
		<-ctx.Done()
	}
	if err := stop(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("walhook: %w", err)
	}
	if opts.Keep {
		p.printf("Totals: %s\n", t.summary())
	}
	return nil
}

// loadConfig loads the example config with fresh secrets in the
// environment and adapts it to the demo: its database, its short retry
// schedule, no admin listener unless asked for. Endpoint URLs are set by
// newReceivers.
func loadConfig(opts Options, db *database) (*config.Config, error) {
	os.Setenv("DATABASE_URL", db.URL)
	for name, generate := range secretEnv {
		os.Setenv(name, generate())
	}
	os.Unsetenv("WALHOOK_STATE_URL")
	cfg, diags := config.Load(opts.ConfigPath)
	if diags.HasErrors() {
		src, _ := os.ReadFile(opts.ConfigPath)
		_ = config.WriteDiagnostics(opts.Out, map[string][]byte{opts.ConfigPath: src}, diags)
		return nil, fmt.Errorf("%s is not valid", opts.ConfigPath)
	}
	// Names of the demo's own, so that a walhook with the default names
	// (yours, from the README) can run on the same database next to it.
	name := "walhook_demo"
	if !db.owned {
		name = db.Name // slots are cluster-wide: one per demo on a shared server
	}
	cfg.Source.URL, cfg.State.URL = db.URL, ""
	cfg.Source.Slot, cfg.Source.Publication, cfg.State.Schema = name, name, name
	switch {
	case !opts.Admin:
		cfg.Admin = nil
	case cfg.Admin == nil:
		cfg.Admin = &config.Admin{Listen: "127.0.0.1:8080", Tokens: []string{os.Getenv("WALHOOK_ADMIN_TOKEN")}, SecretOverlap: 24 * time.Hour}
	}
	if opts.Admin && opts.AdminListen != "" {
		cfg.Admin.Listen = opts.AdminListen
	}
	cfg.Delivery.ShutdownTimeout = 10 * time.Second
	for _, ep := range cfg.Endpoints {
		ep.Retry = RetrySchedule
		ep.Timeout = 5 * time.Second
	}
	return cfg, nil
}

// describe prints the config and where each endpoint now points.
func describe(p *printer, cfg *config.Config, rs *receivers) {
	p.printf("  config     %s: %d events, %d endpoints; retries shortened to %s for the demo\n",
		cfg.Filename, len(cfg.Events), len(cfg.Endpoints), durations(RetrySchedule))
	for _, ep := range cfg.Endpoints {
		signing := ep.Signing
		if signing == "" {
			signing = "standard-webhooks"
		}
		extra := ""
		if ep.Ordering == "key" {
			extra += ", ordered by key"
		}
		if ep.Body != nil {
			extra += ", custom body"
		}
		p.printf("  endpoint   %-8s %s  (%s, events %s%s)\n", ep.Name, ep.URL, signing, strings.Join(ep.Events, " "), extra)
	}
}

func durations(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = d.String()
	}
	return strings.Join(s, ", ")
}

// waitStreaming waits until the relay holds the slot and streams: only
// changes committed after that are captured. returned reports that Run
// has returned (with err).
func waitStreaming(ctx context.Context, r *relay.Relay, ran <-chan error) (returned bool, err error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(60 * time.Second)
	for !r.Reader.Status().Streaming {
		select {
		case err := <-ran:
			if err == nil {
				err = errors.New("walhook stopped before streaming")
			}
			return true, err
		case <-ctx.Done():
			return false, ctx.Err()
		case <-deadline:
			return false, fmt.Errorf("walhook is not streaming after 60s: %s", r.Reader.Status().LastError)
		case <-tick.C:
		}
	}
	return false, nil
}

// canceled turns an error caused by ctx ending (Ctrl-C) into nil.
func canceled(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
