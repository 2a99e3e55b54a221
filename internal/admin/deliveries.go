package admin

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/walhook/walhook/internal/store"
)

// listDeliveries answers GET /v1/webhooks/{id}/deliveries
// ?status=&event_type=&since=&until=&limit=&cursor=: the endpoint's
// deliveries, newest first, each with its attempts.
func (s *server) listDeliveries(w http.ResponseWriter, r *http.Request) *apiError {
	ref, e := s.lookup(r)
	if e != nil {
		return e
	}
	f, e := deliveryFilter(r.URL.Query())
	if e != nil {
		return e
	}
	f.EndpointID = ref.id
	return s.answerDeliveries(w, r, f)
}

// listAllDeliveries answers GET /v1/deliveries?endpoint_id=&tenant=
// &status=&event_type=&since=&until=&limit=&cursor=: deliveries to any
// endpoint, newest first. A tenant token sees its own webhooks' only.
func (s *server) listAllDeliveries(w http.ResponseWriter, r *http.Request) *apiError {
	q := r.URL.Query()
	f, e := deliveryFilter(q)
	if e != nil {
		return e
	}
	f.EndpointID = q.Get("endpoint_id")
	f.Tenant = q.Get("tenant")
	if p, _ := PrincipalFrom(r.Context()); p.Scoped() {
		ids, err := s.tenantEndpoints(r, p.Tenant)
		if err != nil {
			return s.internal(r, "listing the tenant's webhooks", err)
		}
		f.Tenant, f.EndpointIDs = p.Tenant, ids
	}
	return s.answerDeliveries(w, r, f)
}

// tenantEndpoints are the ids of a tenant's webhooks (at most
// store.MaxListLimit of them).
func (s *server) tenantEndpoints(r *http.Request, tenant string) ([]string, error) {
	hooks, _, err := s.opts.Store.ListWebhooks(r.Context(), tenant, store.MaxListLimit, "")
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(hooks))
	for _, h := range hooks {
		ids = append(ids, h.ID)
	}
	return ids, nil
}

// deliveryFilter reads the query parameters both delivery lists share.
func deliveryFilter(q url.Values) (store.DeliveryFilter, *apiError) {
	f := store.DeliveryFilter{EventType: q.Get("event_type"), Cursor: q.Get("cursor")}
	switch st := q.Get("status"); st {
	case "", string(store.StatusPending), string(store.StatusDelivered), string(store.StatusFailed):
		f.Status = st
	default:
		return f, errorf(http.StatusBadRequest, CodeInvalidRequest, `status must be "pending", "delivered" or "failed" (got %q)`, st)
	}
	for name, at := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return f, errorf(http.StatusBadRequest, CodeInvalidRequest, `%s must be an RFC 3339 time such as "2026-01-02T15:04:05Z" (got %q)`, name, v)
			}
			*at = t
		}
	}
	limit, e := parseLimit(q)
	f.Limit = limit
	return f, e
}

// answerDeliveries lists deliveries with their attempts.
func (s *server) answerDeliveries(w http.ResponseWriter, r *http.Request, f store.DeliveryFilter) *apiError {
	ds, next, err := s.opts.Store.ListDeliveries(r.Context(), f)
	if errors.Is(err, store.ErrBadCursor) {
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "cursor is not one this API returned")
	}
	if err != nil {
		return s.internal(r, "listing deliveries", err)
	}
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	attempts, err := s.opts.Store.ListAttempts(r.Context(), ids)
	if err != nil {
		return s.internal(r, "listing attempts", err)
	}
	out := make([]deliveryView, len(ds))
	for i, d := range ds {
		out[i] = viewDelivery(d, attempts[d.ID])
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out, "next_cursor": next})
	return nil
}

// getDelivery answers GET /v1/deliveries/{id}: the delivery, every
// attempt, and each attempt's request headers: as logged with the attempt,
// or, for attempts logged without them (before migration 007), rebuilt by
// the relay when it can.
func (s *server) getDelivery(w http.ResponseWriter, r *http.Request) *apiError {
	d, e := s.scopedDelivery(r)
	if e != nil {
		return e
	}
	attempts, err := s.opts.Store.ListAttempts(r.Context(), []string{d.ID})
	if err != nil {
		return s.internal(r, "listing attempts", err)
	}
	v := viewDelivery(d, attempts[d.ID])
	body := string(d.Body)
	v.Body = &body
	for i, a := range attempts[d.ID] {
		switch {
		case a.RequestHeaders != nil:
			v.Attempts[i].RequestHeaders = a.RequestHeaders
		case s.opts.RequestHeaders != nil:
			v.Attempts[i].RequestHeaders = flatHeaders(s.opts.RequestHeaders(d, a))
		}
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// scopedDelivery reads the route's delivery. With ?tenant=, a delivery of
// another tenant is not found; for a tenant token, a delivery to any
// endpoint but the tenant's own webhooks is not found.
func (s *server) scopedDelivery(r *http.Request) (store.Delivery, *apiError) {
	id := r.PathValue("id")
	if !strings.HasPrefix(id, "dlv_") {
		return store.Delivery{}, notFound("delivery", id)
	}
	d, err := s.opts.Store.GetDelivery(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return d, notFound("delivery", id)
	}
	if err != nil {
		return d, s.internal(r, "reading the delivery", err)
	}
	tenant, scoped := tenantScope(r)
	if !scoped {
		return d, nil
	}
	if d.Tenant != tenant {
		return d, notFound("delivery", id)
	}
	if p, _ := PrincipalFrom(r.Context()); p.Scoped() {
		if !strings.HasPrefix(d.EndpointID, "ep_") {
			return d, notFound("delivery", id)
		}
		hook, err := s.opts.Store.GetWebhook(r.Context(), d.EndpointID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && hook.Tenant != tenant) {
			return d, notFound("delivery", id)
		}
		if err != nil {
			return d, s.internal(r, "reading the webhook", err)
		}
	}
	return d, nil
}

// flatHeaders shows headers one value per name, sorted by name.
func flatHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, vs := range h {
		out[k] = strings.Join(vs, ", ")
	}
	return out
}

// retryDelivery answers POST /v1/deliveries/{id}/retry: the delivery is
// pending and due now with a fresh schedule. A delivery out of the
// request's tenant scope is not found.
func (s *server) retryDelivery(w http.ResponseWriter, r *http.Request) *apiError {
	if e := decodeBody(w, r, &struct{}{}, true); e != nil {
		return e
	}
	found, e := s.scopedDelivery(r)
	if e != nil {
		return e
	}
	d, err := s.opts.Store.Retry(r.Context(), found.ID)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("delivery", found.ID)
	}
	if err != nil {
		return s.internal(r, "retrying the delivery", err)
	}
	attempts, err := s.opts.Store.ListAttempts(r.Context(), []string{d.ID})
	if err != nil {
		return s.internal(r, "listing attempts", err)
	}
	s.log.Info().Str("delivery_id", d.ID).Str("endpoint_id", d.EndpointID).Msg("delivery queued for retry")
	writeJSON(w, http.StatusOK, viewDelivery(d, attempts[d.ID]))
	return nil
}

// recoverInput is the body of POST /v1/webhooks/{id}/recover.
type recoverInput struct {
	Since *string `json:"since"`
}

// recoverDeliveries answers POST /v1/webhooks/{id}/recover {"since"}:
// the endpoint's failed deliveries created since then are retried.
func (s *server) recoverDeliveries(w http.ResponseWriter, r *http.Request) *apiError {
	ref, e := s.lookup(r)
	if e != nil {
		return e
	}
	var in recoverInput
	if e := decodeBody(w, r, &in, false); e != nil {
		return e
	}
	if in.Since == nil {
		return invalid("since", `since is required: recover failed deliveries created at or after this RFC 3339 time`)
	}
	since, err := time.Parse(time.RFC3339Nano, *in.Since)
	if err != nil {
		return invalid("since", `since must be an RFC 3339 time such as "2026-01-02T15:04:05Z" (got %q)`, *in.Since)
	}
	n, err := s.opts.Store.Recover(r.Context(), ref.id, since)
	if err != nil {
		return s.internal(r, "recovering deliveries", err)
	}
	s.log.Info().Str("endpoint_id", ref.id).Int64("recovered", n).Msg("failed deliveries queued again")
	writeJSON(w, http.StatusOK, map[string]any{"webhook_id": ref.id, "recovered": n})
	return nil
}

// enableWebhook answers POST /v1/webhooks/{id}/enable: a disabled endpoint
// is enabled and its failure streak cleared.
func (s *server) enableWebhook(w http.ResponseWriter, r *http.Request) *apiError {
	ref, e := s.lookup(r)
	if e != nil {
		return e
	}
	if e := decodeBody(w, r, &struct{}{}, true); e != nil {
		return e
	}
	if err := s.opts.Store.Enable(r.Context(), ref.id); err != nil {
		return s.internal(r, "enabling the endpoint", err)
	}
	h, err := s.opts.Store.Health(r.Context(), ref.id)
	if err != nil {
		return s.internal(r, "reading endpoint health", err)
	}
	s.log.Info().Str("endpoint_id", ref.id).Msg("endpoint enabled")
	writeJSON(w, http.StatusOK, map[string]any{"webhook_id": ref.id, "health": viewHealth(h)})
	return nil
}
