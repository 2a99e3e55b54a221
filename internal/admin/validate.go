package admin

import (
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/limit"
	"github.com/walhook/walhook/internal/netguard"
	"github.com/walhook/walhook/internal/signing"
)

// Limits on webhook fields.
const (
	maxURLBytes         = 2048
	maxDescriptionBytes = 1024
	maxTenantBytes      = 256
	maxEventFilters     = 100
	maxHeaders          = 20
	maxHeaderValueBytes = 4096
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
	// Secret is refused with a pointer to rotate-secret.
	Secret *string `json:"secret"`
}

// reservedHeaders are set by walhook itself and cannot be overridden.
var reservedHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Content-Type": true, "Transfer-Encoding": true,
	"Connection": true, "Te": true, "Trailer": true, "Upgrade": true, "Keep-Alive": true,
	"Proxy-Connection": true, "Expect": true,
	http.CanonicalHeaderKey(signing.HeaderWebhookID):        true,
	http.CanonicalHeaderKey(signing.HeaderWebhookTimestamp): true,
	http.CanonicalHeaderKey(signing.HeaderWebhookSignature): true,
	signing.HeaderID: true, signing.HeaderEvent: true, signing.HeaderTimestamp: true,
	signing.DefaultHMACHeader: true, signing.DefaultStripeHeader: true, signing.DefaultGitHubHeader: true,
}

// checkURL validates an endpoint URL: absolute http(s), a host, no
// fragment, and whatever the outbound-safety guard says.
func (s *server) checkURL(raw string) *apiError {
	if raw == "" {
		return invalid("url", "url is required")
	}
	if len(raw) > maxURLBytes {
		return invalid("url", "url is longer than %d bytes", maxURLBytes)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return invalid("url", "url is not a valid URL")
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return invalid("url", "url must start with https:// (got scheme %q)", u.Scheme)
	}
	if u.Hostname() == "" {
		return invalid("url", "url has no host")
	}
	if u.Fragment != "" {
		return invalid("url", "url must not have a #fragment")
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
	if len(filters) > maxEventFilters {
		return invalid("events", "events has more than %d entries", maxEventFilters)
	}
	for _, f := range filters {
		if strings.TrimSpace(f) == "" {
			return invalid("events", "events must not contain an empty name")
		}
		if _, err := path.Match(f, ""); err != nil {
			return invalid("events", "event filter %q is not a valid glob", f)
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
		return "none (the config defines no event)"
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
	r, err := limit.ParseRate(s)
	if err != nil {
		return "", invalid("rate_limit", "%v", err)
	}
	return r.String(), nil
}

// checkSigning validates a scheme name and returns it with the default
// filled in.
func checkSigning(scheme string) (string, *apiError) {
	if scheme == "" {
		return signing.StandardWebhooks, nil
	}
	for _, known := range signing.Schemes {
		if scheme == known {
			return scheme, nil
		}
	}
	return "", invalid("signing", "signing must be one of %s (got %q)", strings.Join(signing.Schemes, ", "), scheme)
}

// checkSecret validates a secret for a scheme; the message never contains
// the secret.
func checkSecret(scheme, secret string) *apiError {
	if _, err := signing.ParseSecret(scheme, secret); err != nil {
		return invalid("secret", "secret is not valid for %s signing: %v", scheme, err)
	}
	return nil
}

// checkHeaders validates custom headers: valid names and values, not one
// walhook sets itself.
func checkHeaders(h map[string]string) *apiError {
	if len(h) > maxHeaders {
		return invalid("headers", "headers has more than %d entries", maxHeaders)
	}
	for name, value := range h {
		if !validHeaderName(name) {
			return invalid("headers", "header name %q is not a valid HTTP header name", name)
		}
		if reservedHeaders[http.CanonicalHeaderKey(name)] {
			return invalid("headers", "header %q is set by walhook and cannot be overridden", name)
		}
		if len(value) > maxHeaderValueBytes {
			return invalid("headers", "header %q has a value longer than %d bytes", name, maxHeaderValueBytes)
		}
		if !validHeaderValue(value) {
			return invalid("headers", "header %q has a value with control characters", name)
		}
	}
	return nil
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue refuses control characters other than tab.
func validHeaderValue(v string) bool {
	if !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		if (r < 0x20 && r != '\t') || r == 0x7f {
			return false
		}
	}
	return true
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
