package dispatch

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/walhook/walhook/internal/event"
	"github.com/walhook/walhook/internal/limit"
	"github.com/walhook/walhook/internal/sender"
	"github.com/walhook/walhook/internal/signing"
)

// Endpoint is a webhook endpoint as the dispatcher sees it: one from the
// HCL config (operator-trusted) or one registered through the admin API.
// Every field is resolved by the caller (defaults come from package
// config); SetEndpoints rejects an endpoint that is not.
type Endpoint struct {
	ID     string // "cfg:<name>" for HCL endpoints, "ep_…" for API ones
	Name   string
	Source string // "config" or "api"
	URL    string
	Events []string
	// Tenant, when set, restricts the endpoint to events of that tenant.
	Tenant  string
	Active  bool
	Signer  signing.Signer
	Header  http.Header // extra headers sent with every request
	Timeout time.Duration
	Ordered bool // ordering = "key"
	// Concurrency is the ceiling of the endpoint's adaptive in-flight
	// limit (internal/limit), first attempts and retries together.
	Concurrency int
	// RateLimit caps attempts per unit of time, first attempts and
	// retries together; zero: none.
	RateLimit    limit.Rate
	Retry        []time.Duration
	DisableAfter time.Duration
	// Body renders the request body of an event.
	Body func(*event.Event) ([]byte, error)
	// BodyShape names what Body renders: endpoints with the same non-empty
	// shape render an event to the same bytes, so Dispatch encodes it once
	// for all of them (and a shared secret signs it once). Empty: Body is
	// called for this endpoint alone.
	BodyShape string
	Client    *sender.Client
	// Batching, when set, sends many events in one request (batch.go);
	// nil: one event per request.
	Batching *Batching
}

// Batching is how an endpoint batches its first attempts (docs/config.md,
// "batch").
type Batching struct {
	MaxEvents int           // events in one request, at least 1
	MaxBytes  int           // bytes of event bodies in one request; one larger event goes alone
	MaxWait   time.Duration // how long a lane waits for more events; 0: none
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
	return event.MatchAny(e.Events, ev.Type)
}

// MaxAttempts is the first attempt plus one per retry delay.
func (e *Endpoint) MaxAttempts() int { return 1 + len(e.Retry) }

// ConfigEndpointID is the id of the HCL endpoint named name.
func ConfigEndpointID(name string) string { return "cfg:" + name }

// check reports a field left unresolved.
func (e *Endpoint) check() error {
	var errs []error
	if e.Timeout <= 0 {
		errs = append(errs, errors.New("no timeout"))
	}
	if e.Concurrency <= 0 {
		errs = append(errs, errors.New("no concurrency"))
	}
	if e.DisableAfter <= 0 {
		errs = append(errs, errors.New("no disable_after"))
	}
	if e.Body == nil {
		errs = append(errs, errors.New("no body renderer"))
	}
	if e.Client == nil {
		errs = append(errs, errors.New("no HTTP client"))
	}
	if e.Header == nil {
		errs = append(errs, errors.New("nil header"))
	}
	if b := e.Batching; b != nil && (b.MaxEvents < 1 || b.MaxBytes < 1 || b.MaxWait < 0) {
		errs = append(errs, fmt.Errorf("batch of %d events, %d bytes, %s wait", b.MaxEvents, b.MaxBytes, b.MaxWait))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("endpoint %s is not resolved: %w", e.Name, err)
	}
	return nil
}
