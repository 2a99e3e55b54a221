package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/walhook/walhook/internal/admin"
	"github.com/walhook/walhook/internal/event"
	"github.com/walhook/walhook/internal/netguard"
	"github.com/walhook/walhook/internal/rules"
	"github.com/walhook/walhook/internal/sender"
	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/store"
)

var _ admin.Tester = (*Relay)(nil)

// AdminHandler is the admin listener's handler: the /v1 API, /healthz,
// /readyz and /metrics.
func (r *Relay) AdminHandler() http.Handler {
	a := r.cfg.Admin
	var m http.Handler
	if r.metrics != nil {
		m = r.metrics.Handler()
	}
	return admin.New(admin.Options{
		Store:           r.Store,
		Tokens:          a.Tokens,
		Events:          r.Rules.Catalogue(),
		ConfigEndpoints: admin.ConfigEndpoints(r.cfg.Endpoints),
		Guard:           &netguard.Guard{Allow: a.AllowNetworks, AllowHTTP: a.AllowHTTP},
		SecretOverlap:   a.SecretOverlap,
		Tester:          r,
		Ready:           r.ready,
		Backfills:       r.adminBackfills(),
		Metrics:         m,
		Logger:          r.log.With().Str("component", "admin").Logger(),
	})
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
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	r.log.Info().Str("listen", l.Addr().String()).Msg("admin API, /metrics, /healthz and /readyz listening")
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		r.log.Error().Err(err).Msg("admin listener stopped")
	}
}

// ready reports whether this instance is streaming from the slot and can
// reach the state database. A standby instance (waiting for the slot held
// by another) is alive but not ready.
func (r *Relay) ready(ctx context.Context) error {
	if r.Poller != nil {
		if st := r.Poller.Status(); !st.Connected {
			if st.LastError != "" {
				return fmt.Errorf("not reading outbox table %s: %s", r.cfg.Source.Outbox.Table, st.LastError)
			}
			return fmt.Errorf("not reading outbox table %s yet", r.cfg.Source.Outbox.Table)
		}
	} else if st := r.Reader.Status(); !st.Streaming {
		if st.LastError != "" {
			return fmt.Errorf("not streaming from slot %s: %s", r.cfg.Source.Slot, st.LastError)
		}
		return fmt.Errorf("not streaming from slot %s yet", r.cfg.Source.Slot)
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := r.statePool.Ping(pctx); err != nil {
		return fmt.Errorf("state database: %w", err)
	}
	return nil
}

// SendTest sends a webhook.test event to an endpoint now, signed with its
// secrets, even when it is disabled, and logs the attempt.
func (r *Relay) SendTest(ctx context.Context, id string) (store.Attempt, error) {
	now := time.Now()
	ep := r.Dispatcher.Endpoint(id)
	if ep == nil {
		// Created a moment ago and not loaded yet, perhaps.
		w, err := r.Store.GetWebhook(ctx, id)
		if err != nil {
			return store.Attempt{}, fmt.Errorf("webhook %s: %w", id, err)
		}
		if ep, err = apiEndpoint(w, r.guarded, now); err != nil {
			return store.Attempt{}, err
		}
	}
	ev := &event.Event{
		ID:        event.NewTestID(),
		Type:      "webhook.test",
		Timestamp: now,
		Data:      []byte(fmt.Sprintf(`{"webhook_id":%q,"message":"This is a test event from walhook."}`, id)),
	}
	body := rules.DefaultBody(ev)
	h := ep.Header.Clone()
	if ep.Signer != nil {
		ep.Signer.Sign(h, signing.Message{ID: ev.ID, Type: ev.Type, Timestamp: now, Body: body})
	}
	res := ep.Client.Send(ctx, sender.Request{URL: ep.URL, Header: h, Body: body, Timeout: ep.Timeout})
	a := store.Attempt{
		EventID:     ev.ID,
		EventType:   ev.Type,
		EndpointID:  id,
		Number:      1,
		AttemptedAt: now,
		Duration:    res.Duration,
		StatusCode:  res.StatusCode,
		Response:    string(res.Response),
	}
	if !res.OK() {
		a.Error = res.ErrorText()
	}
	a.DeliveryID = store.DeliveryID(ev.ID, id)
	if err := r.Store.LogAttempts(ctx, nil, []store.Attempt{a}); err != nil {
		r.log.Warn().Err(err).Str("endpoint_id", id).Msg("logging a test attempt")
	}
	return a, nil
}
