package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/endpointspec"
	"github.com/walhook/walhook/internal/netguard"
)

// Limits on webhook fields besides the endpoint's own (internal/endpointspec).
const (
	maxDescriptionBytes = 1024
)

// webhookInput is the body of POST /v1/webhooks.
type webhookInput struct {
	URL         string            `json:"url"`
	Events      []string          `json:"events"`
	Description string            `json:"description"`
	Secret      string            `json:"secret"`
	Tenant      string            `json:"tenant"`
	Active      *bool             `json:"active"`
	Headers     map[string]string `json:"headers"`
	Signing     string            `json:"signing"`
	RateLimit   string            `json:"rate_limit"`
	Batch       *batchInput       `json:"batch"`
}

// webhookPatch is the body of PATCH /v1/webhooks/{id}: absent (or null)
// fields keep their value.
type webhookPatch struct {
	URL         *string            `json:"url"`
	Events      *[]string          `json:"events"`
	Description *string            `json:"description"`
	Tenant      *string            `json:"tenant"`
	Active      *bool              `json:"active"`
	Headers     *map[string]string `json:"headers"`
	Signing     *string            `json:"signing"`
	RateLimit   *string            `json:"rate_limit"` // "" removes the limit
	Batch       json.RawMessage    `json:"batch"`      // an object sets it, false removes it
	// Secret is refused with a pointer to rotate-secret.
	Secret *string `json:"secret"`
}

// checkURL validates an endpoint URL (internal/endpointspec's rules) and asks
// the outbound-safety guard whether it may be called.
func (s *server) checkURL(raw string) *apiError {
	if err := endpointspec.CheckURL(raw); err != nil {
		return invalid("url", "url %v", err)
	}
	if err := s.opts.Guard.CheckURL(raw); err != nil {
		var refused *netguard.RefusedError
		if errors.As(err, &refused) {
			e := errorf(http.StatusBadRequest, CodeURLRefused, "url refused: %s; %s", refused.Reason, refused.Hint)
			e.Field = "url"
			return e
		}
		return invalid("url", "url refused: %v", err)
	}
	return nil
}

// checkEvents validates event filters: non-empty, valid globs, each
// matching at least one event of the catalogue.
func (s *server) checkEvents(filters []string) *apiError {
	if len(filters) == 0 {
		return invalid("events", `events is required: a list of event names or globs such as "contact.*" (GET /v1/events lists them)`)
	}
	if len(filters) > endpointspec.MaxEventFilters {
		return invalid("events", "events has more than %d entries", endpointspec.MaxEventFilters)
	}
	for _, f := range filters {
		if err := endpointspec.CheckEventFilter(f); err != nil {
			return invalid("events", "events: %v", err)
		}
		if !s.matchesCatalogue(f) {
			return invalid("events", "event filter %q matches no event; known events: %s (GET /v1/events)", f, s.eventNames())
		}
	}
	return nil
}

func (s *server) matchesCatalogue(filter string) bool {
	for _, ev := range s.opts.Events {
		if config.MatchAny([]string{filter}, ev.Name) {
			return true
		}
	}
	return false
}

func (s *server) eventNames() string {
	if len(s.opts.Events) == 0 {
		return "none (the config has no event block and declares no outbox events)"
	}
	names := make([]string, len(s.opts.Events))
	for i, ev := range s.opts.Events {
		names[i] = ev.Name
	}
	return strings.Join(names, ", ")
}

// checkRateLimit validates a rate_limit ("500/s", "3000/m", "10/h"; ""
// for none) and returns it as stored.
func checkRateLimit(s string) (string, *apiError) {
	r, err := endpointspec.CheckRateLimit(s)
	if err != nil {
		return "", invalid("rate_limit", "rate_limit: %v", err)
	}
	return r.String(), nil
}

// checkSigning validates a scheme name and returns it with the default
// filled in.
func checkSigning(scheme string) (string, *apiError) {
	scheme, err := endpointspec.CheckSigning(scheme)
	if err != nil {
		return "", invalid("signing", "signing %v", err)
	}
	return scheme, nil
}

// checkSecret validates a secret for a scheme; the message never contains
// the secret.
func checkSecret(scheme, secret string) *apiError {
	if err := endpointspec.CheckSecret(scheme, secret); err != nil {
		return invalid("secret", "secret is not valid for %s signing: %v", scheme, err)
	}
	if err := endpointspec.CheckSecretStrength(scheme, secret); err != nil {
		return invalid("secret", "secret is too weak for %s signing: %v", scheme, err)
	}
	return nil
}

// checkHeaders validates custom headers.
func checkHeaders(h map[string]string) *apiError {
	if err := endpointspec.CheckHeaders(h); err != nil {
		return invalid("headers", "headers: %v", err)
	}
	return nil
}

// checkText validates a free-text field's length and encoding.
func checkText(field, v string, max int) *apiError {
	if len(v) > max {
		return invalid(field, "%s is longer than %d bytes", field, max)
	}
	if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
		return invalid(field, "%s must be valid UTF-8 without NUL bytes", field)
	}
	return nil
}

// checkTenant validates a tenant name given to the API; empty is no
// tenant.
func checkTenant(name string) *apiError {
	if name == "" {
		return nil
	}
	if err := endpointspec.CheckTenant(name); err != nil {
		return invalid("tenant", "tenant %v", err)
	}
	return nil
}
