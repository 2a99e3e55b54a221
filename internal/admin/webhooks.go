package admin

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/store"
)

// endpointRef is the endpoint a /v1/webhooks/{id} route names: an API
// webhook or a config endpoint.
type endpointRef struct {
	id  string
	api *store.Webhook
	cfg *ConfigEndpoint
}

// lookup finds the endpoint of the route's {id}. With a ?tenant= query
// parameter or a tenant token, an API webhook of another tenant (or a
// config endpoint) is not found, so an application can scope every call
// to its customer.
func (s *server) lookup(r *http.Request) (endpointRef, *apiError) {
	id := r.PathValue("id")
	tenant, scoped := tenantScope(r)
	if ep, ok := s.config[id]; ok && !scoped {
		return endpointRef{id: id, cfg: &ep}, nil
	}
	if !strings.HasPrefix(id, "ep_") {
		return endpointRef{}, notFound("webhook", id)
	}
	w, err := s.opts.Store.GetWebhook(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && scoped && w.Tenant != tenant) {
		return endpointRef{}, notFound("webhook", id)
	}
	if err != nil {
		return endpointRef{}, s.internal(r, "reading the webhook", err)
	}
	return endpointRef{id: id, api: &w}, nil
}

// tenantParam returns the tenant query parameter and whether it was given.
func tenantParam(q url.Values) (string, bool) {
	if !q.Has("tenant") {
		return "", false
	}
	return q.Get("tenant"), true
}

// readOnly refuses a change to a config endpoint.
func readOnly(ref endpointRef, what string) *apiError {
	return errorf(http.StatusConflict, CodeReadOnly,
		"%s is defined in the config file (endpoint %q) and is read-only through the API; %s", ref.id, ref.cfg.Name, what)
}

// parseLimit reads ?limit=: 1 to store.MaxListLimit, default store.DefaultListLimit.
func parseLimit(q url.Values) (int, *apiError) {
	if !q.Has("limit") {
		return store.DefaultListLimit, nil
	}
	n, err := strconv.Atoi(q.Get("limit"))
	if err != nil || n < 1 || n > store.MaxListLimit {
		return 0, errorf(http.StatusBadRequest, CodeInvalidRequest, "limit must be a whole number from 1 to %d", store.MaxListLimit)
	}
	return n, nil
}

func (s *server) healthMap(ctx context.Context) (map[string]store.Health, error) {
	all, err := s.opts.Store.AllHealth(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[string]store.Health, len(all))
	for _, h := range all {
		m[h.EndpointID] = h
	}
	return m, nil
}

// listWebhooks answers GET /v1/webhooks?tenant=&source=&limit=&cursor=.
// Config endpoints come first on the first page (they do not count toward
// limit) unless a tenant is asked for.
func (s *server) listWebhooks(w http.ResponseWriter, r *http.Request) *apiError {
	q := r.URL.Query()
	limit, e := parseLimit(q)
	if e != nil {
		return e
	}
	source := q.Get("source")
	if source != "" && source != "api" && source != "config" {
		return errorf(http.StatusBadRequest, CodeInvalidRequest, `source must be "api" or "config"`)
	}
	tenant, scoped := tenantScope(r)
	cursor := q.Get("cursor")
	health, err := s.healthMap(r.Context())
	if err != nil {
		return s.internal(r, "reading endpoint health", err)
	}
	out := []webhookView{}
	if cursor == "" && !scoped && source != "api" {
		for _, ep := range s.opts.ConfigEndpoints {
			out = append(out, viewConfigEndpoint(ep, health[ep.ID]))
		}
	}
	next := ""
	if source != "config" {
		hooks, n, err := s.opts.Store.ListWebhooks(r.Context(), tenant, limit, cursor)
		if errors.Is(err, store.ErrBadCursor) {
			return errorf(http.StatusBadRequest, CodeInvalidRequest, "cursor is not one this API returned")
		}
		if err != nil {
			return s.internal(r, "listing webhooks", err)
		}
		now := time.Now()
		for _, h := range hooks {
			out = append(out, viewWebhook(h, health[h.ID], false, now))
		}
		next = n
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out, "next_cursor": next})
	return nil
}

// createWebhook answers POST /v1/webhooks: 201 with the webhook and its
// secret in full.
func (s *server) createWebhook(w http.ResponseWriter, r *http.Request) *apiError {
	var in webhookInput
	if e := decodeBody(w, r, &in, false); e != nil {
		return e
	}
	if e := s.checkURL(in.URL); e != nil {
		return e
	}
	if e := s.checkEvents(in.Events); e != nil {
		return e
	}
	scheme, e := checkSigning(in.Signing)
	if e != nil {
		return e
	}
	secret := in.Secret
	if secret == "" {
		secret = signing.GenerateSecret()
	} else if e := checkSecret(scheme, secret); e != nil {
		return e
	}
	if e := checkHeaders(in.Headers); e != nil {
		return e
	}
	rate, e := checkRateLimit(in.RateLimit)
	if e != nil {
		return e
	}
	batch, e := checkBatch(in.Batch)
	if e != nil {
		return e
	}
	if e := checkText("description", in.Description, maxDescriptionBytes); e != nil {
		return e
	}
	if e := checkTenant(in.Tenant); e != nil {
		return e
	}
	if p, _ := PrincipalFrom(r.Context()); p.Scoped() {
		if in.Tenant != "" && in.Tenant != p.Tenant {
			return invalid("tenant", "a tenant token creates webhooks of its own tenant only")
		}
		in.Tenant = p.Tenant
	}
	active := true
	if in.Active != nil {
		active = *in.Active
	}
	now := time.Now()
	hook, err := s.opts.Store.CreateWebhook(r.Context(), store.Webhook{
		URL: in.URL, Description: in.Description, Events: in.Events, Tenant: in.Tenant, Active: active,
		Headers: in.Headers, Signing: scheme, Secrets: []store.Secret{{Value: secret, CreatedAt: now}},
		RateLimit: rate, Batch: batch,
	})
	if err != nil {
		return s.internal(r, "creating the webhook", err)
	}
	s.log.Info().Str("webhook_id", hook.ID).Str("host", hostOf(hook.URL)).Str("tenant", hook.Tenant).Msg("webhook created")
	w.Header().Set("Location", "/v1/webhooks/"+hook.ID)
	writeJSON(w, http.StatusCreated, viewWebhook(hook, store.Health{}, true, now))
	return nil
}

// getWebhook answers GET /v1/webhooks/{id}.
func (s *server) getWebhook(w http.ResponseWriter, r *http.Request) *apiError {
	ref, e := s.lookup(r)
	if e != nil {
		return e
	}
	h, err := s.opts.Store.Health(r.Context(), ref.id)
	if err != nil {
		return s.internal(r, "reading endpoint health", err)
	}
	if ref.cfg != nil {
		writeJSON(w, http.StatusOK, viewConfigEndpoint(*ref.cfg, h))
		return nil
	}
	writeJSON(w, http.StatusOK, viewWebhook(*ref.api, h, false, time.Now()))
	return nil
}

// patchWebhook answers PATCH /v1/webhooks/{id}: the given fields change,
// each validated as on create.
func (s *server) patchWebhook(w http.ResponseWriter, r *http.Request) *apiError {
	ref, e := s.lookup(r)
	if e != nil {
		return e
	}
	if ref.cfg != nil {
		return readOnly(ref, "change it in the config file and reload walhook")
	}
	var p webhookPatch
	if e := decodeBody(w, r, &p, false); e != nil {
		return e
	}
	hook := *ref.api
	if p.Secret != nil {
		return invalid("secret", "the secret cannot be patched: POST /v1/webhooks/%s/rotate-secret replaces it with an overlap", hook.ID)
	}
	if p.URL != nil {
		if e := s.checkURL(*p.URL); e != nil {
			return e
		}
		hook.URL = *p.URL
	}
	if p.Events != nil {
		if e := s.checkEvents(*p.Events); e != nil {
			return e
		}
		hook.Events = *p.Events
	}
	if p.Signing != nil {
		scheme, e := checkSigning(*p.Signing)
		if e != nil {
			return e
		}
		for _, sec := range activeSecrets(hook.Secrets, time.Now()) {
			if e := checkSecret(scheme, sec.Value); e != nil {
				e.Field = "signing"
				e.Message = "the webhook's secret does not suit " + scheme + " signing; rotate to a generated secret first"
				return e
			}
		}
		hook.Signing = scheme
	}
	if p.Headers != nil {
		if e := checkHeaders(*p.Headers); e != nil {
			return e
		}
		hook.Headers = *p.Headers
	}
	if p.RateLimit != nil {
		rate, e := checkRateLimit(*p.RateLimit)
		if e != nil {
			return e
		}
		hook.RateLimit = rate
	}
	if b, set, e := patchBatch(p.Batch); e != nil {
		return e
	} else if set {
		hook.Batch = b
	}
	if p.Description != nil {
		if e := checkText("description", *p.Description, maxDescriptionBytes); e != nil {
			return e
		}
		hook.Description = *p.Description
	}
	if p.Tenant != nil {
		if e := checkTenant(*p.Tenant); e != nil {
			return e
		}
		if pr, _ := PrincipalFrom(r.Context()); pr.Scoped() && *p.Tenant != pr.Tenant {
			return invalid("tenant", "a tenant token cannot move a webhook to another tenant")
		}
		hook.Tenant = *p.Tenant
	}
	if p.Active != nil {
		hook.Active = *p.Active
	}
	out, h, e := s.saveWebhook(r, hook, "updating the webhook")
	if e != nil {
		return e
	}
	s.log.Info().Str("webhook_id", out.ID).Msg("webhook updated")
	writeJSON(w, http.StatusOK, viewWebhook(out, h, false, time.Now()))
	return nil
}

// deleteWebhook answers DELETE /v1/webhooks/{id}: 204; its pending
// deliveries become failed.
func (s *server) deleteWebhook(w http.ResponseWriter, r *http.Request) *apiError {
	ref, e := s.lookup(r)
	if e != nil {
		return e
	}
	if ref.cfg != nil {
		return readOnly(ref, "remove it from the config file and reload walhook")
	}
	err := s.opts.Store.DeleteWebhook(r.Context(), ref.id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("webhook", ref.id)
	}
	if err != nil {
		return s.internal(r, "deleting the webhook", err)
	}
	s.log.Info().Str("webhook_id", ref.id).Msg("webhook deleted")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// hostOf is a URL's host, for logs (the path and query may hold tokens).
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

// saveWebhook writes a changed webhook (as read, so a concurrent change is
// a 409) and returns it with its health.
func (s *server) saveWebhook(r *http.Request, hook store.Webhook, what string) (store.Webhook, store.Health, *apiError) {
	out, err := s.opts.Store.UpdateWebhook(r.Context(), hook)
	if errors.Is(err, store.ErrNotFound) {
		return out, store.Health{}, notFound("webhook", hook.ID)
	}
	if errors.Is(err, store.ErrConflict) {
		return out, store.Health{}, conflict(hook.ID)
	}
	if err != nil {
		return out, store.Health{}, s.internal(r, what, err)
	}
	h, err := s.opts.Store.Health(r.Context(), out.ID)
	if err != nil {
		return out, h, s.internal(r, "reading endpoint health", err)
	}
	return out, h, nil
}
