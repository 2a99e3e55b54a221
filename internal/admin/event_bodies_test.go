package admin_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/walhook/walhook/internal/admin"
	"github.com/walhook/walhook/internal/eventschema"
	"github.com/walhook/walhook/internal/rules"
)

// TestEventBodyOfEndpoint: ?endpoint= on GET /v1/events/{name} lists only
// the body that endpoint receives (none when its events do not match),
// and an API webhook that batches gets the batch body around the default
// body, on /schema too, for the admin and for its own tenant.
func TestEventBodyOfEndpoint(t *testing.T) {
	t.Parallel()
	e := setup(t, func(o *admin.Options) {
		o.Schemas = fakeSchemas{}
		o.Events = append([]rules.EventInfo(nil), catalogue...)
	})
	batched := e.create(map[string]any{"url": "https://acme.example.com/b", "events": []string{"contact.*"}, "tenant": "acme",
		"batch": map[string]any{"max_events": 50}})
	single := e.create(map[string]any{"url": "https://acme.example.com/s", "events": []string{"deal.*"}, "tenant": "acme"})
	var tok struct{ Token string }
	e.expect(e.do("POST", "/v1/tokens", map[string]any{"tenant": "acme", "name": "portal"}), http.StatusCreated).json(t, &tok)

	type described struct {
		Bodies []eventschema.Body `json:"bodies"`
	}
	read := func(r response) described {
		t.Helper()
		var d described
		e.expect(r, http.StatusOK).json(t, &d)
		return d
	}
	admin := func(path string) response { return e.do("GET", path, nil) }
	tenant := func(path string) response { return e.call("GET", path, nil, tok.Token) }

	for who, get := range map[string]func(string) response{"admin": admin, "tenant": tenant} {
		d := read(get("/v1/events/contact.created?endpoint=" + batched.ID))
		if len(d.Bodies) != 1 || !d.Bodies[0].Batch || d.Bodies[0].EndpointID != batched.ID {
			t.Fatalf("%s: bodies of the batched webhook = %+v", who, d.Bodies)
		}
		s := d.Bodies[0].Schema
		data := s.Properties.Get("data")
		if s.Properties.Get("type") == nil || data == nil || *data.MaxItems != 50 || data.Items.Title != "" {
			t.Errorf("%s: batch schema = %+v", who, s)
		}
		var example struct {
			Type string            `json:"type"`
			Data []json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(d.Bodies[0].Example, &example); err != nil || example.Type != "batch" || len(example.Data) != 1 {
			t.Errorf("%s: batch example = %s (%v)", who, d.Bodies[0].Example, err)
		}
		var doc eventschema.Schema
		e.expect(get("/v1/events/contact.created/schema?endpoint="+batched.ID), http.StatusOK).json(t, &doc)
		if doc.Properties.Get("data") == nil || doc.Title != "default body of contact.created" {
			t.Errorf("%s: /schema of the batched webhook = %+v", who, doc)
		}
		// The batched webhook does not receive deal events; the other
		// receives them one per request.
		if d := read(get("/v1/events/deal.stage.changed?endpoint=" + batched.ID)); len(d.Bodies) != 0 {
			t.Errorf("%s: a webhook not subscribed has bodies %+v", who, d.Bodies)
		}
		if d := read(get("/v1/events/deal.stage.changed?endpoint=" + single.ID)); len(d.Bodies) != 1 || d.Bodies[0].Batch || d.Bodies[0].Schema.Title != "default body of deal.stage.changed" {
			t.Errorf("%s: bodies of the unbatched webhook = %+v", who, d.Bodies)
		}
	}
	// An HCL endpoint by name: its own body; an unknown name is refused.
	if d := read(admin("/v1/events/contact.created?endpoint=crm")); len(d.Bodies) != 1 || d.Bodies[0].Schema.Title != "crm body" {
		t.Errorf("bodies of crm = %+v", d.Bodies)
	}
	if got := e.expect(admin("/v1/events/contact.created?endpoint=nosuch"), http.StatusBadRequest).apiError(t); got.Error.Field != "endpoint" {
		t.Errorf("unknown endpoint: %+v", got)
	}
	// A tenant naming a config endpoint or another tenant's webhook gets
	// the answer of a name that does not exist.
	other := e.create(map[string]any{"url": "https://globex.example.com/b", "events": []string{"*"}, "tenant": "globex",
		"batch": map[string]any{"max_events": 5}})
	for _, p := range []struct{ probe, missing string }{{"crm", "nosuch"}, {"cfg:crm", "cfg:nosuch"}, {other.ID, "ep_nosuch"}} {
		for _, path := range []string{"/v1/events/contact.created?endpoint=", "/v1/events/contact.created/schema?endpoint="} {
			got, want := tenant(path+p.probe), tenant(path+p.missing)
			if got.status != http.StatusBadRequest || got.status != want.status ||
				strings.ReplaceAll(string(got.body), p.probe, "NAME") != strings.ReplaceAll(string(want.body), p.missing, "NAME") {
				t.Errorf("%s: probing %q answers %d %s; a missing name answers %d %s", path, p.probe, got.status, got.body, want.status, want.body)
			}
		}
	}
}
