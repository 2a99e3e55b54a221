package admin

import (
	"errors"
	"net/http"
	"strings"

	"github.com/walhook/walhook/internal/event"
	"github.com/walhook/walhook/internal/eventschema"
	"github.com/walhook/walhook/internal/store"
)

// endpointBody is the body one endpoint receives for an event, for
// ?endpoint= on GET /v1/events/{name} and its /schema (docs/api.md).
type endpointBody struct {
	// Body is the endpoint's body: the default body, its HCL body
	// expression's, or a batch of either.
	Body eventschema.Body
	// Receives is false when the endpoint's events do not match the event.
	Receives bool
}

// bodyFor resolves ?endpoint= for event ev: an API webhook's id (a
// tenant's own only), or an HCL endpoint's id or name (admins only).
// defaultDoc is the default body's schema as the caller may see it.
func (s *server) bodyFor(r *http.Request, ev *eventschema.Event, defaultDoc *eventschema.Schema, ep string) (endpointBody, *apiError) {
	p, _ := PrincipalFrom(r.Context())
	if strings.HasPrefix(ep, "ep_") && s.opts.Store != nil {
		hook, err := s.opts.Store.GetWebhook(r.Context(), ep)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return endpointBody{}, s.internal(r, "reading the webhook", err)
		}
		if err == nil && (!p.Scoped() || hook.Tenant == p.Tenant) {
			return webhookBody(hook, ev, defaultDoc), nil
		}
	}
	if p.Scoped() {
		e := errorf(http.StatusBadRequest, CodeInvalidRequest, "endpoint %q is not one of your webhooks", ep)
		e.Field = "endpoint"
		return endpointBody{}, e
	}
	cfg, ok := s.config[ep]
	if !ok {
		cfg, ok = s.config["cfg:"+ep]
	}
	if !ok {
		e := errorf(http.StatusBadRequest, CodeInvalidRequest, "endpoint %q is neither an HCL endpoint nor an API webhook", ep)
		e.Field = "endpoint"
		return endpointBody{}, e
	}
	out := endpointBody{Receives: event.MatchAny(cfg.Events, ev.Name),
		Body: eventschema.Body{EndpointID: cfg.ID, Endpoint: cfg.Name, Schema: defaultDoc, Example: ev.Example}}
	for _, b := range ev.Bodies {
		if b.EndpointID == cfg.ID {
			out.Body = b
		}
	}
	return out, nil
}

// webhookBody is the body API webhook hook receives for ev: the default
// body, or batches of it when the webhook batches.
func webhookBody(hook store.Webhook, ev *eventschema.Event, defaultDoc *eventschema.Schema) endpointBody {
	b := eventschema.Body{EndpointID: hook.ID, Endpoint: hook.ID, Schema: defaultDoc, Example: ev.Example}
	if hook.Batch != nil {
		b.Batch = true
		b.Schema = eventschema.BatchDocument(defaultDoc, hook.Batch.MaxEvents)
		b.Example = eventschema.Example(b.Schema)
	}
	return endpointBody{Body: b, Receives: event.MatchAny(hook.Events, ev.Name)}
}

// bodies is the "bodies" list of an event read with ?endpoint=: the
// endpoint's body when it receives the event, else empty.
func (b endpointBody) bodies() []eventschema.Body {
	if !b.Receives {
		return []eventschema.Body{}
	}
	return []eventschema.Body{b.Body}
}
