package relay

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/walhook/walhook/internal/admin"
	"github.com/walhook/walhook/internal/console"
	"github.com/walhook/walhook/internal/metrics"
	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/store"
	"github.com/walhook/walhook/internal/version"
)

// newConsole builds the web console over this relay (docs/console.md).
func (r *Relay) newConsole() *console.Console {
	backoff := admin.NewAuthBackoff(time.Now)
	if r.metrics != nil {
		if err := r.metrics.Register(backoff); err != nil {
			r.log.Warn().Err(err).Msg("registering the authentication backoff metrics")
		}
	}
	return console.New(console.Options{
		Auth:     admin.NewAuthenticator(r.cfg.Admin.Tokens, r.store),
		Store:    r.store,
		Tail:     r.tail,
		Source:   r.sourceStatus,
		Runtime:  r.endpointRuntime,
		Frontend: adminFrontend(r.cfg.Admin),
		Backoff:  backoff,
		Logger:   r.log,
	})
}

// sourceStatus is the change source for the console's overview.
func (r *Relay) sourceStatus() console.SourceStatus {
	switch src := r.source.(type) {
	case *pollSource:
		st := src.poller.Status()
		out := console.SourceStatus{Mode: "outbox", Name: r.cfg.Source.Outbox.Table, Connected: st.Connected,
			Streaming: st.Connected && st.Listening, LastError: st.LastError}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if b, err := src.backlog(ctx); err == nil {
			age := b.OldestAge.Seconds()
			out.RowsWaiting, out.RowsEstimated, out.OldestAgeSeconds = &b.Rows, b.Estimated, &age
		}
		return out
	case *slotSource:
		st := src.reader.Status()
		lagSeconds := metrics.LagSeconds(src.reader.OldestUnconfirmed(), time.Now())
		out := console.SourceStatus{Mode: "logical", Name: r.cfg.Source.Slot, Connected: st.Connected, Streaming: st.Streaming,
			LagSeconds: &lagSeconds, LastError: st.LastError}
		// Lag in bytes and the confirmed position as Postgres sees them.
		if v, ok := r.watch.slotView(); ok && v.Exists {
			lagBytes := float64(v.LagBytes())
			out.LagBytes = &lagBytes
			if v.Confirmed != 0 {
				out.ConfirmedLSN = v.Confirmed.String()
			}
		}
		return out
	}
	return console.SourceStatus{}
}

// endpointRuntime is what the dispatcher runs with, by endpoint id: the
// current adaptive concurrency limit, the attempts in flight and the first
// attempts per second, once the endpoint has had work (before that, its
// configured ceiling).
func (r *Relay) endpointRuntime() map[string]console.EndpointRuntime {
	out := map[string]console.EndpointRuntime{}
	for _, ep := range r.dispatcher.Endpoints() {
		rt := console.EndpointRuntime{Concurrency: ep.Concurrency, RateLimit: ep.RateLimit.String()}
		if load, ok := r.dispatcher.Load(ep.ID); ok {
			inFlight, rate := load.InFlight, load.Throughput
			rt.Concurrency, rt.InFlight, rt.RatePerSecond = load.Limit, &inFlight, &rate
		}
		out[ep.ID] = rt
	}
	return out
}

// requestHeaders rebuilds the headers an attempt of d was sent with, for
// attempts logged before migration 007 stored them: the endpoint's headers
// (values of config endpoints masked, they may hold credentials), the
// sender's and the signer's, timestamped at the attempt. Those signatures
// were not stored, so their values are masked too. Nil when the endpoint
// is gone.
func (r *Relay) requestHeaders(d store.Delivery, a store.Attempt) http.Header {
	ep := r.dispatcher.Endpoint(d.EndpointID)
	if ep == nil {
		return nil
	}
	h := make(http.Header, len(ep.Header)+6)
	for k, v := range ep.Header {
		if ep.Source == "config" {
			v = []string{"(set in the config file)"}
		}
		h[k] = v
	}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", version.UserAgent())
	h.Set("Webhook-Attempt", strconv.Itoa(a.Number))
	if ep.Signer != nil {
		m := signing.Message{ID: d.EventID, Type: d.EventType, Timestamp: a.AttemptedAt, Body: d.Body}
		ep.Signer.Sign(h, m)
		// The headers that change with the body are the signatures.
		other := http.Header{}
		m.Body = append(bytes.Clone(d.Body), ' ')
		ep.Signer.Sign(other, m)
		for k, v := range other {
			if len(h[k]) > 0 && h[k][0] != v[0] {
				h[k] = []string{"(signature computed per attempt; not stored)"}
			}
		}
	}
	return h
}
