package admin

import (
	"errors"
	"net/http"
	"time"

	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/store"
)

// maxSecretOverlap bounds the overlap a rotation may ask for.
const maxSecretOverlap = 90 * 24 * time.Hour

// rotateInput is the optional body of POST /v1/webhooks/{id}/rotate-secret.
type rotateInput struct {
	// Overlap is how long the old secrets keep signing ("24h"); default
	// admin.secret_overlap. "0s" retires them at once.
	Overlap *string `json:"overlap"`
	// Secret is the new secret; generated when empty.
	Secret string `json:"secret"`
}

// rotateSecret answers POST /v1/webhooks/{id}/rotate-secret: the new
// secret signs first, the old ones keep signing until now+overlap, and
// secrets already expired are dropped. The answer shows the new secret in
// full.
func (s *server) rotateSecret(w http.ResponseWriter, r *http.Request) *apiError {
	ref, e := s.lookup(r)
	if e != nil {
		return e
	}
	if ref.cfg != nil {
		return readOnly(ref, "rotate it in the config file: secrets = [new, old], then drop the old one later")
	}
	var in rotateInput
	if e := decodeBody(w, r, &in, true); e != nil {
		return e
	}
	overlap := s.opts.SecretOverlap
	if in.Overlap != nil {
		d, err := time.ParseDuration(*in.Overlap)
		if err != nil || d < 0 || d > maxSecretOverlap {
			return invalid("overlap", `overlap must be a duration from "0s" to "%s", such as "24h"`, maxSecretOverlap)
		}
		overlap = d
	}
	hook := *ref.api
	scheme := hook.Signing
	if scheme == "" {
		scheme = signing.StandardWebhooks
	}
	secret := in.Secret
	if secret == "" {
		secret = signing.GenerateSecret()
	} else if e := checkSecret(scheme, secret); e != nil {
		return e
	}
	now := time.Now()
	hook.Secrets = rotate(hook.Secrets, secret, now, overlap)
	out, h, e := s.saveWebhook(r, hook, "rotating the secret")
	if e != nil {
		return e
	}
	s.log.Info().Str("webhook_id", out.ID).Stringer("overlap", overlap).Msg("webhook secret rotated")
	writeJSON(w, http.StatusOK, viewWebhook(out, h, true, now))
	return nil
}

// rotate puts secret first; each old secret still active expires at the
// earlier of its own expiry and now+overlap, and expired ones are dropped.
func rotate(old []store.Secret, secret string, now time.Time, overlap time.Duration) []store.Secret {
	out := []store.Secret{{Value: secret, CreatedAt: now}}
	until := now.Add(overlap)
	for _, s := range activeSecrets(old, now) {
		if overlap <= 0 {
			break
		}
		if s.ExpiresAt == nil || s.ExpiresAt.After(until) {
			t := until
			s.ExpiresAt = &t
		}
		out = append(out, s)
	}
	return out
}

// testView is the answer of POST /v1/webhooks/{id}/test.
type testView struct {
	WebhookID string `json:"webhook_id"`
	EventID   string `json:"event_id"`
	EventType string `json:"event_type"`
	attemptView
}

// testWebhook answers POST /v1/webhooks/{id}/test: a webhook.test event
// is sent now and the attempt returned, whatever the endpoint answered.
func (s *server) testWebhook(w http.ResponseWriter, r *http.Request) *apiError {
	ref, e := s.lookup(r)
	if e != nil {
		return e
	}
	if e := decodeBody(w, r, &struct{}{}, true); e != nil {
		return e
	}
	if s.opts.Tester == nil {
		return errorf(http.StatusNotImplemented, CodeNotAvailable, "test events are not available in this process")
	}
	a, err := s.opts.Tester.SendTest(r.Context(), ref.id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("webhook", ref.id)
	}
	if err != nil {
		return s.internal(r, "sending the test event", err)
	}
	eventType := a.EventType
	if eventType == "" {
		eventType = "webhook.test"
	}
	writeJSON(w, http.StatusOK, testView{WebhookID: ref.id, EventID: a.EventID, EventType: eventType, attemptView: viewAttempt(a)})
	return nil
}
