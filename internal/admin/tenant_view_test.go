package admin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/walhook/walhook/internal/admin"
	"github.com/walhook/walhook/internal/eventschema"
	"github.com/walhook/walhook/internal/rules"
)

// fakeSchemas describes every catalogue event with a default body schema
// and a reshaped body for the config endpoint crm.
type fakeSchemas struct{}

func (fakeSchemas) Describe(_ context.Context, name string) (*eventschema.Event, error) {
	for _, e := range catalogue {
		if e.Name != name {
			continue
		}
		return &eventschema.Event{
			Name: e.Name, Description: e.Description, Table: e.Table, Ops: e.Ops,
			Schema:  &eventschema.Schema{Title: "default body of " + name, Description: "The " + name + " event: insert of " + e.Table + "."},
			Example: json.RawMessage(`{"id":"evt_1"}`),
			Bodies: []eventschema.Body{{EndpointID: configEndpoint.ID, Endpoint: configEndpoint.Name,
				Schema: &eventschema.Schema{Title: "crm body"}, Example: json.RawMessage(`{"crm":true}`)}},
		}, nil
	}
	return nil, eventschema.ErrUnknownEvent
}

// TestTenantSeesOnlyItsOwn: a tenant token sees the events it can
// subscribe to and their default body schema, never the source table, the
// rule's condition or the config endpoints; naming a config endpoint
// (by name or id) gets exactly the answer of a name that does not exist,
// on every route that takes one.
func TestTenantSeesOnlyItsOwn(t *testing.T) {
	t.Parallel()
	e := setup(t, func(o *admin.Options) {
		o.Schemas = fakeSchemas{}
		o.Events = append([]rules.EventInfo(nil), catalogue...)
		o.Events[0].When = `new.status == "secret-rule"`
	})
	hook := e.create(map[string]any{"url": "https://acme.example.com/h", "events": []string{"*"}, "tenant": "acme"})
	other := e.create(map[string]any{"url": "https://globex.example.com/h", "events": []string{"*"}, "tenant": "globex"})
	var tok struct{ Token string }
	e.expect(e.do("POST", "/v1/tokens", map[string]any{"tenant": "acme", "name": "portal"}), http.StatusCreated).json(t, &tok)
	as := func(path string) response { return e.call("GET", path, nil, tok.Token) }

	// The admin sees everything.
	for _, path := range []string{"/v1/events", "/v1/events/contact.created"} {
		body := string(e.expect(e.do("GET", path, nil), http.StatusOK).body)
		for _, want := range []string{"public.contacts", "secret-rule"} {
			if path == "/v1/events/contact.created" && want == "secret-rule" {
				continue // the description of one event has no when
			}
			if !strings.Contains(body, want) {
				t.Errorf("admin %s misses %q: %s", path, want, body)
			}
		}
	}
	if body := e.expect(e.do("GET", "/v1/events/contact.created/schema?endpoint=crm", nil), http.StatusOK).body; !strings.Contains(string(body), "crm body") {
		t.Errorf("admin schema of crm: %s", body)
	}

	// The tenant sees names, descriptions and schemas only.
	for _, path := range []string{"/v1/events", "/v1/events/contact.created", "/v1/events/contact.created/schema"} {
		body := string(e.expect(as(path), http.StatusOK).body)
		for _, leak := range []string{"public.", "secret-rule", "crm", "cfg:", `"ops"`, `"table"`, `"when"`, `"bodies"`} {
			if strings.Contains(body, leak) {
				t.Errorf("tenant %s shows %q: %s", path, leak, body)
			}
		}
	}
	var list struct {
		Data []struct {
			Name      string `json:"name"`
			SchemaURL string `json:"schema_url"`
		}
	}
	e.expect(as("/v1/events"), http.StatusOK).json(t, &list)
	if len(list.Data) != len(catalogue) || list.Data[0].Name != "contact.created" || list.Data[0].SchemaURL != "/v1/events/contact.created/schema" {
		t.Errorf("tenant event list: %+v", list.Data)
	}
	if body := e.expect(as("/v1/events/contact.created"), http.StatusOK).body; !strings.Contains(string(body), "default body of contact.created") {
		t.Errorf("tenant event description has no schema: %s", body)
	}
	// Its own webhook receives the default body.
	if body := e.expect(as("/v1/events/contact.created/schema?endpoint="+hook.ID), http.StatusOK).body; !strings.Contains(string(body), "default body") {
		t.Errorf("tenant schema for its own webhook: %s", body)
	}

	// Probing: a config endpoint's name or id, another tenant's webhook and
	// a name that does not exist all get the same answer.
	probes := []struct{ path, probe, missing string }{
		{"/v1/events/contact.created/schema?endpoint=%s", "crm", "nosuch"},
		{"/v1/events/contact.created/schema?endpoint=%s", "cfg:crm", "cfg:nosuch"},
		{"/v1/events/contact.created/schema?endpoint=%s", other.ID, "ep_nosuch"},
		{"/v1/webhooks/%s", "cfg:crm", "cfg:nosuch"},
		{"/v1/webhooks/%s", other.ID, "ep_nosuch"},
		{"/v1/webhooks/%s/deliveries", "cfg:crm", "cfg:nosuch"},
		{"/v1/deliveries?endpoint_id=%s", "cfg:crm", "cfg:nosuch"},
	}
	for _, p := range probes {
		got := as(strings.Replace(p.path, "%s", p.probe, 1))
		want := as(strings.Replace(p.path, "%s", p.missing, 1))
		gotBody := strings.ReplaceAll(string(got.body), p.probe, "NAME")
		wantBody := strings.ReplaceAll(string(want.body), p.missing, "NAME")
		if got.status != want.status || gotBody != wantBody {
			t.Errorf("%s: probing %q answers %d %s; a missing name answers %d %s", p.path, p.probe, got.status, got.body, want.status, want.body)
		}
	}
}
