package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"github.com/walhook/walhook/internal/eventschema"
	"github.com/walhook/walhook/internal/rules"
)

// EventSchemas describes events with their JSON Schema and an example
// (GET /v1/events/{name}); *eventschema.Catalog is one.
type EventSchemas interface {
	Describe(ctx context.Context, name string) (*eventschema.Event, error)
}

var _ EventSchemas = (*eventschema.Catalog)(nil)

// eventEntry is an event of the catalogue with where its schema is.
type eventEntry struct {
	rules.EventInfo
	SchemaURL string `json:"schema_url"`
}

// tenantEvent is an event as a tenant sees it: what it can subscribe to
// and the body it would receive, without the source table, the rule's
// condition or the config endpoints that receive it.
type tenantEvent struct {
	Name        string              `json:"name"`
	Description string              `json:"description,omitempty"`
	SchemaURL   string              `json:"schema_url,omitempty"`
	Schema      *eventschema.Schema `json:"schema,omitempty"`
	Example     json.RawMessage     `json:"example,omitempty"`
	// Bodies is set with ?endpoint= (one of the tenant's webhooks): its
	// body when it receives the event, else empty.
	Bodies []eventschema.Body `json:"bodies,omitzero"`
}

// scoped reports whether the request acts as a tenant.
func scoped(r *http.Request) bool {
	p, _ := PrincipalFrom(r.Context())
	return p.Scoped()
}

func schemaURL(name string) string { return "/v1/events/" + url.PathEscape(name) + "/schema" }

func (s *server) listEvents(w http.ResponseWriter, r *http.Request) *apiError {
	if scoped(r) {
		events := make([]tenantEvent, len(s.opts.Events))
		for i, e := range s.opts.Events {
			events[i] = tenantEvent{Name: e.Name, Description: e.Description, SchemaURL: schemaURL(e.Name)}
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": events})
		return nil
	}
	events := make([]eventEntry, len(s.opts.Events))
	for i, e := range s.opts.Events {
		events[i] = eventEntry{EventInfo: e, SchemaURL: schemaURL(e.Name)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": events})
	return nil
}

// describeEvent describes the event named in the path.
func (s *server) describeEvent(r *http.Request) (*eventschema.Event, *apiError) {
	name := r.PathValue("name")
	known := false
	for _, e := range s.opts.Events {
		known = known || e.Name == name
	}
	if !known {
		return nil, notFound("event", name)
	}
	if s.opts.Schemas == nil {
		return nil, errorf(http.StatusNotImplemented, CodeNotAvailable, "event schemas are not wired in this process")
	}
	ev, err := s.opts.Schemas.Describe(r.Context(), name)
	if errors.Is(err, eventschema.ErrUnknownEvent) {
		return nil, notFound("event", name)
	}
	if err != nil {
		s.log.Warn().Err(err).Str("event", name).Msg("describing an event")
		if scoped(r) {
			return nil, errorf(http.StatusServiceUnavailable, CodeNotReady, "the schema of event %s cannot be read now; try again later", name)
		}
		return nil, errorf(http.StatusServiceUnavailable, CodeNotReady, "cannot read the table of event %s from the source database: %v", name, err)
	}
	return ev, nil
}

// getEvent answers an event's description; with ?endpoint= its bodies
// list holds only the body that endpoint receives (docs/api.md).
func (s *server) getEvent(w http.ResponseWriter, r *http.Request) *apiError {
	ev, aerr := s.describeEvent(r)
	if aerr != nil {
		return aerr
	}
	ep := r.URL.Query().Get("endpoint")
	if scoped(r) {
		out := tenantEvent{Name: ev.Name, Description: ev.Description, Schema: tenantSchema(ev), Example: ev.Example}
		if ep != "" {
			b, aerr := s.bodyFor(r, ev, out.Schema, ep)
			if aerr != nil {
				return aerr
			}
			out.Bodies = b.bodies()
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	if ep != "" {
		b, aerr := s.bodyFor(r, ev, ev.Schema, ep)
		if aerr != nil {
			return aerr
		}
		one := *ev
		one.Bodies = b.bodies()
		ev = &one
	}
	writeJSON(w, http.StatusOK, ev)
	return nil
}

// getEventSchema answers the schema document alone: of the default body,
// or with ?endpoint= (an API webhook's id, an HCL endpoint's id "cfg:name"
// or name) of the body that endpoint receives, a batch included.
func (s *server) getEventSchema(w http.ResponseWriter, r *http.Request) *apiError {
	ev, aerr := s.describeEvent(r)
	if aerr != nil {
		return aerr
	}
	doc := ev.Schema
	if scoped(r) {
		doc = tenantSchema(ev)
	}
	if ep := r.URL.Query().Get("endpoint"); ep != "" {
		b, aerr := s.bodyFor(r, ev, doc, ep)
		if aerr != nil {
			return aerr
		}
		doc = b.Body.Schema
	}
	writeJSON(w, http.StatusOK, doc)
	return nil
}

// tenantSchema is the default body's schema as a tenant sees it: its
// description is the event's own, never the generated one that names the
// source table.
func tenantSchema(ev *eventschema.Event) *eventschema.Schema {
	if ev.Schema == nil {
		return nil
	}
	s := *ev.Schema
	s.Description = ev.Description
	if s.Description == "" {
		s.Description = "The " + ev.Name + " event."
	}
	return &s
}
