package dispatch

import (
	"net/http"
	"time"

	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/event"
	"github.com/walhook/walhook/internal/sender"
	"github.com/walhook/walhook/internal/signing"
)

// Endpoint is a webhook endpoint as the dispatcher sees it: one from the
// HCL config (operator-trusted) or one registered through the admin API.
type Endpoint struct {
	ID     string // "cfg:<name>" for HCL endpoints, "ep_…" for API ones
	Name   string
	Source string // "config" or "api"
	URL    string
	Events []string
	// Tenant, when set, restricts the endpoint to events of that tenant.
	Tenant       string
	Active       bool
	Signer       signing.Signer
	Header       http.Header // extra headers sent with every request
	Timeout      time.Duration
	Ordered      bool // ordering = "key"
	Concurrency  int
	Retry        []time.Duration
	DisableAfter time.Duration
	// Body renders the request body of an event; nil means the default.
	Body   func(*event.Event) ([]byte, error)
	Client *sender.Client
}

// Wants reports whether the endpoint subscribes to ev.
func (e *Endpoint) Wants(ev *event.Event) bool {
	if !e.Active {
		return false
	}
	if e.Tenant != "" && e.Tenant != ev.Tenant {
		return false
	}
	if ev.Endpoint != "" && ev.Endpoint != e.ID {
		return false
	}
	return config.MatchAny(e.Events, ev.Type)
}

// MaxAttempts is the first attempt plus one per retry delay.
func (e *Endpoint) MaxAttempts() int { return 1 + len(e.Retry) }

// Defaults for endpoints that do not say otherwise.
const (
	DefaultTimeout      = 15 * time.Second
	DefaultConcurrency  = 8
	DefaultDisableAfter = 5 * 24 * time.Hour
)

// ConfigEndpointID is the id of the HCL endpoint named name.
func ConfigEndpointID(name string) string { return "cfg:" + name }

// fill sets defaults on zero fields.
func (e *Endpoint) fill() {
	if e.Timeout <= 0 {
		e.Timeout = DefaultTimeout
	}
	if e.Concurrency <= 0 {
		e.Concurrency = DefaultConcurrency
	}
	if e.Retry == nil {
		e.Retry = config.DefaultRetrySchedule
	}
	if e.DisableAfter <= 0 {
		e.DisableAfter = DefaultDisableAfter
	}
	if e.Header == nil {
		e.Header = http.Header{}
	}
}
