package admin

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/store"
)

// webhookView is a webhook as the API returns it, API-registered or
// from the config.
type webhookView struct {
	ID          string            `json:"id"`
	Source      string            `json:"source"` // "api" or "config"
	Name        string            `json:"name,omitempty"`
	URL         string            `json:"url"`
	Description string            `json:"description,omitempty"`
	Events      []string          `json:"events"`
	Tenant      string            `json:"tenant,omitempty"`
	Active      bool              `json:"active"`
	Headers     map[string]string `json:"headers,omitempty"`
	HeaderNames []string          `json:"header_names,omitempty"`
	Signing     string            `json:"signing"`
	Ordering    string            `json:"ordering,omitempty"`
	RateLimit   string            `json:"rate_limit,omitempty"`
	Batch       *batchView        `json:"batch,omitempty"`
	// Secret is the newest secret: in full on create and rotation, else a
	// hint such as "whsec_…abcd".
	Secret    string       `json:"secret,omitempty"`
	Secrets   []secretView `json:"secrets,omitempty"`
	Health    healthView   `json:"health"`
	CreatedAt *time.Time   `json:"created_at,omitempty"`
	UpdatedAt *time.Time   `json:"updated_at,omitempty"`
}

// secretView describes one active secret without revealing it.
type secretView struct {
	Hint      string     `json:"hint"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// healthView is an endpoint's delivery health.
type healthView struct {
	Disabled            bool       `json:"disabled"`
	DisabledReason      string     `json:"disabled_reason,omitempty"`
	DisabledAt          *time.Time `json:"disabled_at,omitempty"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	FailingSince        *time.Time `json:"failing_since,omitempty"`
	LastSuccessAt       *time.Time `json:"last_success_at,omitempty"`
	LastFailureAt       *time.Time `json:"last_failure_at,omitempty"`
}

func viewHealth(h store.Health) healthView {
	return healthView{
		Disabled: h.Disabled, DisabledReason: h.DisabledReason, DisabledAt: h.DisabledAt,
		ConsecutiveFailures: h.ConsecutiveFailures, FailingSince: h.FailingSince,
		LastSuccessAt: h.LastSuccessAt, LastFailureAt: h.LastFailureAt,
	}
}

// viewWebhook shows an API webhook; with reveal the newest secret is in
// full. Expired secrets are left out.
func viewWebhook(w store.Webhook, h store.Health, reveal bool, now time.Time) webhookView {
	v := webhookView{
		ID: w.ID, Source: "api", URL: w.URL, Description: w.Description, Events: w.Events,
		Tenant: w.Tenant, Active: w.Active, Headers: w.Headers, Signing: w.Signing, RateLimit: w.RateLimit,
		Batch: viewBatch(w.Batch), Health: viewHealth(h), CreatedAt: &w.CreatedAt, UpdatedAt: &w.UpdatedAt,
	}
	if v.Signing == "" {
		v.Signing = signing.StandardWebhooks
	}
	if v.Events == nil {
		v.Events = []string{}
	}
	for _, s := range activeSecrets(w.Secrets, now) {
		v.Secrets = append(v.Secrets, secretView{Hint: secretHint(s.Value), CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt})
	}
	if len(v.Secrets) > 0 {
		v.Secret = v.Secrets[0].Hint
		if reveal {
			v.Secret = w.Secrets[0].Value
		}
	}
	return v
}

func viewConfigEndpoint(ep ConfigEndpoint, h store.Health) webhookView {
	return webhookView{
		ID: ep.ID, Source: "config", Name: ep.Name, URL: ep.URL, Events: ep.Events, Active: true,
		HeaderNames: ep.HeaderNames, Signing: ep.Signing, Ordering: ep.Ordering, Batch: ep.Batch, Health: viewHealth(h),
	}
}

// activeSecrets are the secrets not yet expired, in stored order (newest
// first).
func activeSecrets(ss []store.Secret, now time.Time) []store.Secret {
	var out []store.Secret
	for _, s := range ss {
		if s.ExpiresAt == nil || s.ExpiresAt.After(now) {
			out = append(out, s)
		}
	}
	return out
}

// secretHint masks a secret: its "whsec_" prefix, if any, and its last
// four characters ("whsec_…abcd"); short secrets show no characters.
func secretHint(s string) string {
	prefix := ""
	if strings.HasPrefix(s, signing.SecretPrefix) {
		prefix, s = signing.SecretPrefix, strings.TrimPrefix(s, signing.SecretPrefix)
	}
	if len(s) < 16 {
		return prefix + "…"
	}
	return prefix + "…" + s[len(s)-4:]
}

// deliveryView is a delivery with its attempts, newest first.
type deliveryView struct {
	ID            string          `json:"id"`
	EventID       string          `json:"event_id"`
	EventType     string          `json:"event_type"`
	EndpointID    string          `json:"endpoint_id"`
	Status        string          `json:"status"`
	Key           string          `json:"key,omitempty"`
	Tenant        string          `json:"tenant,omitempty"`
	EventTime     time.Time       `json:"event_time"`
	CommitLSN     string          `json:"commit_lsn"`
	AttemptCount  int             `json:"attempt_count"`
	NextAttemptAt *time.Time      `json:"next_attempt_at,omitempty"`
	LastStatus    int             `json:"last_status,omitempty"`
	LastError     string          `json:"last_error,omitempty"`
	Payload       json.RawMessage `json:"payload"`
	// Body is the request body exactly as sent, as a string; single
	// delivery reads only (payload is the same JSON, whitespace aside, but
	// a JSON parser may round its numbers).
	Body      *string       `json:"body,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	UpdatedAt time.Time     `json:"updated_at"`
	Attempts  []attemptView `json:"attempts"`
}

// attemptView is one HTTP attempt.
type attemptView struct {
	Number      int       `json:"number"`
	AttemptedAt time.Time `json:"attempted_at"`
	DurationMS  float64   `json:"duration_ms"`
	StatusCode  int       `json:"status_code"`
	OK          bool      `json:"ok"`
	Error       string    `json:"error,omitempty"`
	Response    string    `json:"response"`
	// RequestHeaders are the headers the attempt was sent with,
	// credentials masked; for attempts logged before migration 007, rebuilt
	// from the endpoint as it is now with the signature masked.
	// Single-delivery reads only.
	RequestHeaders map[string]string `json:"request_headers,omitempty"`
}

// maxResponseExcerpt caps the response body an attempt view shows.
const maxResponseExcerpt = 2048

func viewAttempt(a store.Attempt) attemptView {
	resp := a.Response
	if len(resp) > maxResponseExcerpt {
		resp = strings.ToValidUTF8(resp[:maxResponseExcerpt], "") + "…"
	}
	return attemptView{
		Number: a.Number, AttemptedAt: a.AttemptedAt, DurationMS: float64(a.Duration.Microseconds()) / 1000,
		StatusCode: a.StatusCode, OK: a.Error == "" && a.StatusCode >= 200 && a.StatusCode < 300,
		Error: a.Error, Response: resp,
	}
}

func viewDelivery(d store.Delivery, attempts []store.Attempt) deliveryView {
	v := deliveryView{
		ID: d.ID, EventID: d.EventID, EventType: d.EventType, EndpointID: d.EndpointID, Status: string(d.Status),
		Key: d.Key, Tenant: d.Tenant, EventTime: d.EventTime, CommitLSN: formatLSN(d.CommitLSN),
		AttemptCount: d.Attempts, LastStatus: d.LastStatus, LastError: d.LastError,
		Payload: payload(d.Body), CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
		Attempts: make([]attemptView, 0, len(attempts)),
	}
	if d.Status == store.StatusPending {
		next := d.NextAttemptAt
		v.NextAttemptAt = &next
	}
	for _, a := range attempts {
		v.Attempts = append(v.Attempts, viewAttempt(a))
	}
	return v
}

// payload is the delivery body as JSON: itself when it is JSON, else a
// JSON string of it.
func payload(body []byte) json.RawMessage {
	if len(body) > 0 && json.Valid(body) {
		return body
	}
	b, _ := json.Marshal(string(body)) // marshalling a string cannot fail
	return b
}

// formatLSN writes an LSN the way Postgres does: "16/B374D848".
func formatLSN(lsn uint64) string {
	return fmt.Sprintf("%X/%X", uint32(lsn>>32), uint32(lsn))
}
