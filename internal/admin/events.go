package admin

import (
	"context"
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

func (s *server) listEvents(w http.ResponseWriter, r *http.Request) *apiError {
	events := make([]eventEntry, len(s.opts.Events))
	for i, e := range s.opts.Events {
		events[i] = eventEntry{EventInfo: e, SchemaURL: "/v1/events/" + url.PathEscape(e.Name) + "/schema"}
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
		return nil, errorf(http.StatusServiceUnavailable, CodeNotReady, "cannot read the table of event %s from the source database: %v", name, err)
	}
	return ev, nil
}

func (s *server) getEvent(w http.ResponseWriter, r *http.Request) *apiError {
	ev, aerr := s.describeEvent(r)
	if aerr != nil {
		return aerr
	}
	writeJSON(w, http.StatusOK, ev)
	return nil
}

// getEventSchema answers the schema document alone: of the default body,
// or with ?endpoint= (an id "cfg:name" or a name) of that endpoint's body.
func (s *server) getEventSchema(w http.ResponseWriter, r *http.Request) *apiError {
	ev, aerr := s.describeEvent(r)
	if aerr != nil {
		return aerr
	}
	ep := r.URL.Query().Get("endpoint")
	if ep == "" {
		writeJSON(w, http.StatusOK, ev.Schema)
		return nil
	}
	for _, b := range ev.Bodies {
		if b.EndpointID == ep || b.Endpoint == ep {
			writeJSON(w, http.StatusOK, b.Schema)
			return nil
		}
	}
	_, byName := s.config["cfg:"+ep]
	if _, byID := s.config[ep]; byID || byName {
		// An endpoint without a body expression receives the default body.
		writeJSON(w, http.StatusOK, ev.Schema)
		return nil
	}
	e := errorf(http.StatusBadRequest, CodeInvalidRequest, "endpoint %q is not an HCL endpoint; API-registered webhooks receive the default body", ep)
	e.Field = "endpoint"
	return e
}
