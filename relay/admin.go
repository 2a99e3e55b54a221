package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/walhook/walhook/internal/admin"
	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/event"
	"github.com/walhook/walhook/internal/eventschema"
	"github.com/walhook/walhook/internal/lifecycle"
	"github.com/walhook/walhook/internal/netguard"
	"github.com/walhook/walhook/internal/store"
)

var _ admin.Tester = (*Relay)(nil)

// AdminHandler is the admin listener's handler: the /v1 API, /healthz,
// /readyz, /metrics and the web console at /ui/.
func (r *Relay) AdminHandler() http.Handler {
	a := r.cfg.Admin
	var m http.Handler
	if r.metrics != nil {
		m = r.metrics.Handler()
	}
	opts := admin.Options{
		Store:           r.store,
		Tokens:          a.Tokens,
		RequestHeaders:  r.requestHeaders,
		Events:          r.rules.Catalogue(),
		Schemas:         eventschema.NewCatalog(r.cfg),
		ConfigEndpoints: admin.ConfigEndpoints(r.cfg.Endpoints),
		Guard:           &netguard.Guard{Allow: a.AllowNetworks, AllowHTTP: a.AllowHTTP},
		SecretOverlap:   a.SecretOverlap,
		Tester:          r,
		Ready:           r.Ready,
		Backfills:       r.adminBackfills(),
		Replays:         r.replays,
		Metrics:         m,
		Logger:          r.log.With().Str("component", "admin").Logger(),
	}
	if r.ui != nil {
		opts.Sessions, opts.Console = r.ui, r.ui
		opts.Backoff = r.ui.Backoff()
	}
	opts.Frontend = adminFrontend(a)
	return admin.New(opts)
}

// adminFrontend is how clients reach the admin listener (admin.public_url,
// admin.trusted_proxies).
func adminFrontend(a *config.Admin) *admin.Frontend {
	return &admin.Frontend{PublicURL: a.PublicURL, TrustedProxies: a.TrustedProxies}
}

// serveAdmin serves the admin listener until ctx ends.
func (r *Relay) serveAdmin(ctx context.Context, l net.Listener) {
	srv := &http.Server{
		Handler:           r.AdminHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	if r.tail != nil {
		// Live tail streams would hold Shutdown until its deadline.
		srv.RegisterOnShutdown(r.tail.Close)
	}
	scheme := "http"
	if a := r.cfg.Admin; a.TLSCert != "" {
		certs, err := admin.NewCertReloader(a.TLSCert, a.TLSKey, r.log.With().Str("component", "admin").Logger())
		if err != nil {
			r.log.Error().Err(err).Msg("admin listener not started")
			_ = l.Close()
			return
		}
		srv.TLSConfig = &tls.Config{GetCertificate: certs.GetCertificate, MinVersion: tls.VersionTLS12}
		l = tls.NewListener(l, srv.TLSConfig)
		scheme = "https"
	}
	shut := lifecycle.New(ctx)
	shut.Go(func(ctx context.Context) {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	r.log.Info().Str("listen", l.Addr().String()).Str("scheme", scheme).Msg("admin API, /metrics, /healthz and /readyz listening")
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		r.log.Error().Err(err).Msg("admin listener stopped")
	}
	shut.StopAndWait()
}

// Ready reports whether this instance is reading its source (streaming
// from the slot, or connected to the outbox table), can use its state
// store (the database answers and the state schema is there) and captures
// every configured table: what /readyz answers. A standby instance
// (waiting for the slot held by another) is alive but not ready, and says
// why. Every reason that holds is given, joined with "; ".
func (r *Relay) Ready(ctx context.Context) error {
	var reasons []error
	if err := r.source.Ready(); err != nil {
		reasons = append(reasons, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := r.store.Usable(pctx); err != nil {
		reasons = append(reasons, fmt.Errorf("state store: %w", err))
	}
	if r.watch != nil {
		if err := r.watch.Ready(); err != nil {
			reasons = append(reasons, err)
		}
	}
	return joinReasons(reasons)
}

// joinReasons joins errors into one whose text is theirs separated by
// "; " (errors.Join separates with newlines, awkward in a JSON reason).
func joinReasons(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	return fmt.Errorf("%w; %s", errs[0], strings.Join(msgs[1:], "; "))
}

// SendTest sends a webhook.test event to an endpoint now, signed with its
// secrets, even when it is disabled, and logs the attempt.
func (r *Relay) SendTest(ctx context.Context, id string) (store.Attempt, error) {
	now := time.Now()
	ep := r.dispatcher.Endpoint(id)
	if ep == nil {
		// Created a moment ago and not loaded yet, perhaps.
		w, err := r.store.GetWebhook(ctx, id)
		if err != nil {
			return store.Attempt{}, fmt.Errorf("webhook %s: %w", id, err)
		}
		if ep, err = apiEndpoint(w, r.guarded, r.keyring, now); err != nil {
			return store.Attempt{}, err
		}
	}
	ev := &event.Event{
		ID:        event.NewTestID(),
		Type:      "webhook.test",
		Timestamp: now,
		Data:      []byte(fmt.Sprintf(`{"webhook_id":%q,"message":"This is a test event from walhook."}`, id)),
	}
	return r.dispatcher.SendTest(ctx, ep, ev)
}
