package admin

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/walhook/walhook/internal/store"
)

// listDeliveries answers GET /v1/webhooks/{id}/deliveries
// ?status=&event_type=&since=&limit=&cursor=: the endpoint's deliveries,
// newest first, each with its attempts.
func (s *server) listDeliveries(w http.ResponseWriter, r *http.Request) *apiError {
	ref, e := s.lookup(r)
	if e != nil {
		return e
	}
	q := r.URL.Query()
	f := store.DeliveryFilter{EndpointID: ref.id, EventType: q.Get("event_type"), Cursor: q.Get("cursor")}
	switch st := q.Get("status"); st {
	case "", string(store.StatusPending), string(store.StatusDelivered), string(store.StatusFailed):
		f.Status = st
	default:
		return errorf(http.StatusBadRequest, CodeInvalidRequest, `status must be "pending", "delivered" or "failed" (got %q)`, st)
	}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return errorf(http.StatusBadRequest, CodeInvalidRequest, `since must be an RFC 3339 time such as "2026-01-02T15:04:05Z" (got %q)`, v)
		}
		f.Since = t
	}
	limit, e := parseLimit(q)
	if e != nil {
		return e
	}
	f.Limit = limit
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

// retryDelivery answers POST /v1/deliveries/{id}/retry: the delivery is
// pending and due now with a fresh schedule. With ?tenant=, a delivery of
// another tenant is not found.
func (s *server) retryDelivery(w http.ResponseWriter, r *http.Request) *apiError {
	id := r.PathValue("id")
	if !strings.HasPrefix(id, "dlv_") {
		return notFound("delivery", id)
	}
	if e := decodeBody(w, r, &struct{}{}, true); e != nil {
		return e
	}
	if tenant, scoped := tenantParam(r.URL.Query()); scoped {
		d, err := s.opts.Store.GetDelivery(r.Context(), id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && d.Tenant != tenant) {
			return notFound("delivery", id)
		}
		if err != nil {
			return s.internal(r, "reading the delivery", err)
		}
	}
	d, err := s.opts.Store.Retry(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("delivery", id)
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
