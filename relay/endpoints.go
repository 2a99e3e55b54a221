package relay

import (
	"fmt"
	"net/http"
	"time"

	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/dispatch"
	"github.com/walhook/walhook/internal/endpointspec"
	"github.com/walhook/walhook/internal/event"
	"github.com/walhook/walhook/internal/rules"
	"github.com/walhook/walhook/internal/sender"
	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/store"
)

// configEndpoint turns an HCL endpoint into a dispatcher endpoint. HCL
// endpoints are operator-trusted: they use the unrestricted client.
func configEndpoint(ep *config.Endpoint, client *sender.Client, keys *signing.Keyring) (*dispatch.Endpoint, error) {
	signer, err := keys.New(ep.Signing, ep.Secrets, signing.Options{SignatureHeader: ep.SignatureHeader})
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", ep.Name, err)
	}
	h := http.Header{}
	for k, v := range ep.Headers {
		h.Set(k, v)
	}
	out := &dispatch.Endpoint{
		ID:           dispatch.ConfigEndpointID(ep.Name),
		Name:         ep.Name,
		Source:       "config",
		URL:          ep.URL,
		Events:       ep.Events,
		Active:       true,
		Signer:       signer,
		Header:       h,
		Timeout:      ep.Timeout,
		Ordered:      ep.Ordering == config.OrderingKey,
		Concurrency:  ep.Concurrency,
		RateLimit:    ep.RateLimit,
		Retry:        ep.Retry,
		DisableAfter: ep.DisableAfter,
		Body:         defaultBody,
		BodyShape:    defaultBodyShape,
		Client:       client,
	}
	if b := ep.Batch; b != nil {
		out.Batching = &dispatch.Batching{MaxEvents: b.MaxEvents, MaxBytes: b.MaxBytes, MaxWait: b.MaxWait}
	}
	if ep.Body != nil {
		out.Body = func(ev *event.Event) ([]byte, error) { return rules.RenderBody(ep, ev) }
		out.BodyShape = out.ID // its own body expression
	}
	return out, nil
}

// apiEndpoint turns a webhook registered through the admin API into a
// dispatcher endpoint, signing with every secret not yet expired.
func apiEndpoint(w store.Webhook, client *sender.Client, keys *signing.Keyring, now time.Time) (*dispatch.Endpoint, error) {
	var secrets []string
	for _, s := range w.Secrets {
		if s.ExpiresAt == nil || s.ExpiresAt.After(now) {
			secrets = append(secrets, s.Value)
		}
	}
	signer, err := keys.New(w.Signing, secrets, signing.Options{})
	if err != nil {
		return nil, fmt.Errorf("webhook %s: %w", w.ID, err)
	}
	rate, err := endpointspec.CheckRateLimit(w.RateLimit)
	if err != nil {
		return nil, fmt.Errorf("webhook %s: rate_limit: %w", w.ID, err)
	}
	h := http.Header{}
	for k, v := range w.Headers {
		h.Set(k, v)
	}
	var batching *dispatch.Batching
	if b := w.Batch; b != nil {
		batching = &dispatch.Batching{MaxEvents: b.MaxEvents, MaxBytes: b.MaxBytes, MaxWait: b.MaxWait}
	}
	return &dispatch.Endpoint{
		ID:     w.ID,
		Name:   w.ID,
		Source: "api",
		URL:    w.URL,
		Events: w.Events,
		Tenant: w.Tenant,
		Active: w.Active,
		Signer: signer,
		Header: h,
		// API webhooks take every endpoint default from package config.
		Timeout:      config.DefaultEndpointTimeout,
		Concurrency:  config.DefaultConcurrency,
		RateLimit:    rate,
		Retry:        config.DefaultRetrySchedule,
		DisableAfter: config.DefaultDisableAfter,
		Body:         defaultBody,
		BodyShape:    defaultBodyShape,
		Client:       client,
		Batching:     batching,
	}, nil
}

// defaultBodyShape is the BodyShape of endpoints sending defaultBody: an
// event sent to many of them is encoded once.
const defaultBodyShape = "default"

// defaultBody renders the Standard Webhooks body {"id","type","timestamp","data"}.
func defaultBody(ev *event.Event) ([]byte, error) { return rules.DefaultBody(ev), nil }
