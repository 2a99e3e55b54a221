package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/walhook/walhook/internal/limit"
)

// Signing schemes an endpoint may use.
var signings = []string{"standard-webhooks", "hmac-sha256", "stripe", "github"}

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
			SignatureHeader: b.SignatureHeader, Headers: b.Headers, Ordering: b.Ordering,
			Timeout: 15 * time.Second, Concurrency: 8, DisableAfter: 5 * 24 * time.Hour,
			Retry: append([]time.Duration(nil), DefaultRetrySchedule...), DeclRange: b.DefRange,
		}
		d.endpointURL(b)
		d.endpointEvents(cfg, b)
		if ep.Signing == "" {
			ep.Signing = "standard-webhooks"
		} else if !contains(signings, ep.Signing) {
			d.errorf(b.SigningRange, "Unknown signing", "signing is one of %s, not %q.", strings.Join(signings, ", "), ep.Signing)
		}
		ep.Secrets = d.endpointSecrets(b, ep.Signing)
		if ep.SignatureHeader != "" && ep.Signing == "standard-webhooks" {
			d.warnf(b.SignatureHeaderRange, "Ignored signature_header", "standard-webhooks always signs in the webhook-signature header; signature_header applies to hmac-sha256, stripe and github.")
		}
		for name := range ep.Headers {
			if !validHeaderName(name) {
				d.errorf(b.DefRange, "Invalid header name", "Header %q of endpoint %q is not a valid HTTP header name.", name, b.Name)
			}
		}
		switch ep.Ordering {
		case "":
			ep.Ordering = "none"
		case "none", "key":
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
	r, err := limit.ParseRate(b.RateLimit)
	if err == nil && r.IsZero() {
		err = errors.New("an empty rate_limit sets no limit: write requests per unit, like \"500/s\" or \"3000/m\", or leave it out")
	}
	if err != nil {
		d.errorf(b.RateLimitRange, "Invalid rate_limit", "%s", sentence(err))
	}
	return r
}

func (d *decoder) endpointURL(b *endpointBlock) {
	if !present(b.URLRange) || d.failed(b.URLRange) {
		return
	}
	u, err := url.Parse(b.URL)
	switch {
	case err != nil:
		d.errorf(b.URLRange, "Invalid endpoint URL", "%q does not parse as a URL: %v.", b.URL, err)
	case u.Scheme != "http" && u.Scheme != "https":
		d.errorf(b.URLRange, "Invalid endpoint URL", "%q must be an http:// or https:// URL.", b.URL)
	case u.Host == "" || u.Hostname() == "":
		d.errorf(b.URLRange, "Invalid endpoint URL", "%q has no host.", b.URL)
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
		matched := false
		for _, e := range cfg.Events {
			if MatchAny([]string{f}, e.Name) {
				matched = true
				break
			}
		}
		if matched {
			continue
		}
		if cfg.Source.Outbox != nil {
			// Outbox rows name their own events, so this may still match.
			d.warnf(b.EventsRange, "Filter matches no event", "%q matches no event block; it can only match events written to the outbox table.", f)
		} else {
			d.errorf(b.EventsRange, "Filter matches no event", "%q matches no event defined in this file. Events: %s.", f, eventNames(cfg))
		}
	}
}

func eventNames(cfg *Config) string {
	if len(cfg.Events) == 0 {
		return "(none)"
	}
	names := make([]string, len(cfg.Events))
	for i, e := range cfg.Events {
		names[i] = e.Name
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
		if signing == "standard-webhooks" {
			if err := CheckStandardSecret(s); err != nil {
				d.errorf(r, "Malformed secret", "%s", sentence(err))
			}
			continue
		}
		if s == "" {
			d.errorf(r, "Missing secret", "The secret of endpoint %q is empty.", b.Name)
		} else if len(s) < 16 {
			d.warnf(r, "Short secret", "A %d-byte secret is weak; use at least 16 random bytes.", len(s))
		}
	}
	return secrets
}

// CheckStandardSecret checks a Standard Webhooks secret: "whsec_" followed
// by the base64 of 24 to 64 random bytes.
func CheckStandardSecret(s string) error {
	if s == "" {
		return errors.New("the secret is empty: a standard-webhooks secret is whsec_ followed by base64 of 24 to 64 random bytes")
	}
	raw, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return errors.New("a standard-webhooks secret starts with \"whsec_\" followed by base64 of 24 to 64 random bytes (generate one with: echo whsec_$(openssl rand -base64 32))")
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return errors.New("the part after \"whsec_\" is not valid base64")
	}
	if len(key) < 24 || len(key) > 64 {
		return fmt.Errorf("a standard-webhooks secret holds 24 to 64 bytes; this one holds %d", len(key))
	}
	return nil
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

func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune("\"(),/:;<=>?@[\\]{}", c) {
			return false
		}
	}
	return http.CanonicalHeaderKey(name) != ""
}
