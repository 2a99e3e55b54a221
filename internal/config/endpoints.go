package config

import (
	"strings"
	"time"

	"github.com/walhook/walhook/internal/endpointspec"
	"github.com/walhook/walhook/internal/limit"
)

func (d *decoder) endpoints(cfg *Config, blocks []*endpointBlock) {
	byName := map[string]*endpointBlock{}
	for _, b := range blocks {
		if prev, ok := byName[b.Name]; ok {
			d.errorf(b.NameRange, "Duplicate endpoint name", "An endpoint named %q is already defined at %s.", b.Name, prev.NameRange)
			continue
		}
		byName[b.Name] = b
		ep := &Endpoint{
			Name: b.Name, URL: b.URL, Events: b.Events, Signing: b.Signing,
			SignatureHeader: b.SignatureHeader, Headers: b.Headers, Ordering: Ordering(b.Ordering),
			Timeout: DefaultEndpointTimeout, Concurrency: DefaultConcurrency, DisableAfter: DefaultDisableAfter,
			Retry: append([]time.Duration(nil), DefaultRetrySchedule...), DeclRange: b.DefRange,
		}
		d.endpointURL(b)
		d.endpointEvents(cfg, b)
		if scheme, err := endpointspec.CheckSigning(ep.Signing); err != nil {
			d.errorf(b.SigningRange, "Unknown signing", "signing %s.", err)
		} else {
			ep.Signing = scheme
		}
		ep.Secrets = d.endpointSecrets(b, ep.Signing)
		if ep.SignatureHeader != "" && ep.Signing == "standard-webhooks" {
			d.warnf(b.SignatureHeaderRange, "Ignored signature_header", "standard-webhooks always signs in the webhook-signature header; signature_header applies to hmac-sha256, stripe and github.")
		}
		if err := endpointspec.CheckHeaders(ep.Headers); err != nil {
			d.errorf(b.DefRange, "Invalid headers", "Endpoint %q: %s.", b.Name, err)
		}
		switch ep.Ordering {
		case "":
			ep.Ordering = OrderingNone
		case OrderingNone, OrderingKey:
		default:
			d.errorf(b.OrderingRange, "Invalid ordering", "ordering is \"none\" or \"key\", not %q.", ep.Ordering)
		}
		if b.Concurrency != nil {
			if *b.Concurrency < 1 {
				d.errorf(b.ConcurrencyRange, "Invalid concurrency", "concurrency must be at least 1, not %d.", *b.Concurrency)
			}
			ep.Concurrency = *b.Concurrency
		}
		ep.RateLimit = d.rateLimit(b)
		if v, ok := d.duration(b.Timeout, b.TimeoutRange); ok {
			ep.Timeout = v
		}
		if v, ok := d.duration(b.DisableAfter, b.DisableAfterRange); ok {
			ep.DisableAfter = v
		}
		if b.Retry != nil && present(b.Retry.ScheduleRange) && !d.failed(b.Retry.ScheduleRange) {
			ep.Retry = d.retrySchedule(b.Retry)
		}
		if b.Batch != nil {
			ep.Batch = d.batch(b.Batch)
		}
		if present(b.BodyRange) {
			d.checkExpr(b.Body, "body", BodyVariables, bodyCheckVars,
				"An endpoint's body can use event (id, type, timestamp, data, key, tenant).")
			ep.Body = b.Body
		}
		cfg.Endpoints = append(cfg.Endpoints, ep)
	}
}

// rateLimit reads an endpoint's rate_limit ("500/s", "3000/m", "10/h").
func (d *decoder) rateLimit(b *endpointBlock) limit.Rate {
	if !present(b.RateLimitRange) || d.failed(b.RateLimitRange) {
		return limit.Rate{}
	}
	r, err := endpointspec.CheckRateLimit(b.RateLimit)
	switch {
	case err != nil:
		d.errorf(b.RateLimitRange, "Invalid rate_limit", "%s", sentence(err))
	case r.IsZero():
		d.errorf(b.RateLimitRange, "Invalid rate_limit", "An empty rate_limit sets no limit: write requests per unit, like \"500/s\" or \"3000/m\", or leave it out.")
	}
	return r
}

func (d *decoder) endpointURL(b *endpointBlock) {
	if !present(b.URLRange) || d.failed(b.URLRange) {
		return
	}
	if err := endpointspec.CheckURL(b.URL); err != nil {
		d.errorf(b.URLRange, "Invalid endpoint URL", "%q %s.", b.URL, err)
	}
}

func (d *decoder) endpointEvents(cfg *Config, b *endpointBlock) {
	if !present(b.EventsRange) || d.failed(b.EventsRange) {
		return
	}
	if len(b.Events) == 0 {
		d.errorf(b.EventsRange, "No events", "Endpoint %q subscribes to no event: list event names or globs, like [\"deal.*\"] or [\"*\"].", b.Name)
		return
	}
	for _, f := range b.Events {
		if err := endpointspec.CheckEventFilter(f); err != nil {
			d.errorf(b.EventsRange, "Invalid event filter", "events %s.", err)
			continue
		}
		if matchesAny(f, cfg.EventNames()) {
			continue
		}
		if o := cfg.Source.Outbox; o != nil && len(o.Events) == 0 {
			// Outbox rows name their own events, so this may still match.
			d.warnf(b.EventsRange, "Filter matches no event", "%q matches no event block; it can only match events written to the outbox table. Declare those with events = [...] in the outbox block, so that filters are checked and API webhooks can subscribe (docs/outbox.md).", f)
		} else {
			d.errorf(b.EventsRange, "Filter matches no event", "%q matches no event defined in this file. Events: %s.", f, eventNames(cfg))
		}
	}
}

// matchesAny reports whether filter matches any of names.
func matchesAny(filter string, names []string) bool {
	for _, n := range names {
		if MatchAny([]string{filter}, n) {
			return true
		}
	}
	return false
}

func eventNames(cfg *Config) string {
	names := cfg.EventNames()
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
}

func (d *decoder) endpointSecrets(b *endpointBlock, signing string) []string {
	if d.failed(b.SecretRange) || d.failed(b.SecretsRange) {
		return nil
	}
	var secrets []string
	r := b.SecretRange
	switch {
	case b.Secret != nil && present(b.SecretsRange):
		d.errorf(b.SecretsRange, "Both secret and secrets", "Give either secret or secrets (during rotation; the first signs), not both.")
		return nil
	case b.Secret != nil:
		secrets = []string{*b.Secret}
	case present(b.SecretsRange):
		secrets, r = b.Secrets, b.SecretsRange
		if len(secrets) == 0 {
			d.errorf(r, "Missing secret", "secrets lists at least one signing secret.")
		}
	default:
		d.errorf(b.DefRange, "Missing secret", "Endpoint %q needs secret (the signing key), for example secret = env(\"CRM_WEBHOOK_SECRET\").", b.Name)
		return nil
	}
	for _, s := range secrets {
		if err := endpointspec.CheckSecret(signing, s); err != nil {
			d.errorf(r, "Malformed secret", "%s", sentence(err))
		} else if err := endpointspec.CheckSecretStrength(signing, s); err != nil {
			d.warnf(r, "Short secret", "%s The admin API refuses such a secret.", sentence(err))
		}
	}
	return secrets
}

func (d *decoder) retrySchedule(b *retryBlock) []time.Duration {
	if len(b.Schedule) == 0 {
		d.errorf(b.ScheduleRange, "Empty retry schedule", "schedule lists the delays between attempts, like [\"5s\", \"5m\", \"30m\"].")
		return nil
	}
	out := make([]time.Duration, 0, len(b.Schedule))
	for _, s := range b.Schedule {
		v, err := ParseDuration(s)
		if err != nil {
			d.errorf(b.ScheduleRange, "Invalid duration", "%s", sentence(err))
			continue
		}
		if v < 0 {
			d.errorf(b.ScheduleRange, "Invalid duration", "A retry delay must not be negative: %q.", s)
			continue
		}
		out = append(out, v)
	}
	return out
}
