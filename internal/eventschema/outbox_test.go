package eventschema

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/event"
	"github.com/walhook/walhook/internal/rules"
)

// TestOutboxEventSchema describes an event the outbox block declares,
// without a database, and checks that the bodies walhook renders for it
// (default and an endpoint's body expression) validate against the
// schemas, while a payload that is not an object or array does not.
func TestOutboxEventSchema(t *testing.T) {
	t.Parallel()
	cfg, diags := config.Parse([]byte(`source "postgres" {
  url  = "postgres://nowhere.invalid/db"
  mode = "outbox"
  outbox {
    table  = "app.webhook_outbox"
    events = ["order.paid"]
  }
}
endpoint "reshaped" {
  url    = "https://example.com/hook"
  events = ["order.*"]
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
  body   = { event = event.type, tenant = event.tenant, data = event.data }
}`), "test.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	ev, err := NewCatalog(cfg).Describe(context.Background(), "order.paid")
	if err != nil {
		t.Fatal(err)
	}
	if ev.Source != "outbox" || ev.Table != "app.webhook_outbox" || len(ev.Ops) != 0 || len(ev.Bodies) != 1 {
		t.Fatalf("described %+v", ev)
	}
	def, body := compile(t, ev.Schema), compile(t, ev.Bodies[0].Schema)
	if err := accepts(t, def, string(ev.Example)); err != nil {
		t.Errorf("example %s: %v", ev.Example, err)
	}
	for _, data := range []string{`{"order_id":42,"amount":"19.90"}`, `[1,2]`} {
		e := &event.Event{ID: "evt_x", Type: "order.paid", Tenant: "org_7", Timestamp: time.Now(), Data: json.RawMessage(data), Table: "app.webhook_outbox"}
		if err := accepts(t, def, string(rules.DefaultBody(e))); err != nil {
			t.Errorf("default body of %s: %v", data, err)
		}
		b, err := rules.RenderBody(cfg.Endpoints[0], e)
		if err != nil {
			t.Fatal(err)
		}
		if err := accepts(t, body, string(b)); err != nil {
			t.Errorf("endpoint body %s: %v", b, err)
		}
	}
	e := &event.Event{ID: "evt_x", Type: "order.paid", Timestamp: time.Now(), Data: json.RawMessage(`"text"`)}
	if accepts(t, def, string(rules.DefaultBody(e))) == nil {
		t.Errorf("a string payload validates; the schema says object or array")
	}
}

// TestOutboxDeclaredPayloadSchema: an outbox event with a payload schema
// in the config is described with that schema, every keyword kept, and
// bodies are checked against it.
func TestOutboxDeclaredPayloadSchema(t *testing.T) {
	t.Parallel()
	cfg, diags := config.Parse([]byte(`source "postgres" {
  url  = "postgres://nowhere.invalid/db"
  mode = "outbox"
  outbox {
    table  = "webhook_outbox"
    events = ["order.paid"]
    payload_schemas = {
      "order.paid" = {
        description          = "An order was paid."
        type                 = "object"
        required             = ["order_id"]
        properties           = { order_id = { type = "integer", minimum = 1 } }
        additionalProperties = { type = "string" }
      }
    }
  }
}`), "test.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	ev, err := NewCatalog(cfg).Describe(context.Background(), "order.paid")
	if err != nil {
		t.Fatal(err)
	}
	if ev.Description != "An order was paid." {
		t.Errorf("description %q", ev.Description)
	}
	doc := marshal(t, ev.Schema)
	if want := `"data":{"additionalProperties":{"type":"string"},"description":"An order was paid.","properties":{"order_id":{"minimum":1,"type":"integer"}}`; !strings.Contains(doc, want) {
		t.Errorf("schema %s\nlacks %s", doc, want)
	}
	cs := compile(t, ev.Schema)
	for data, ok := range map[string]bool{
		`{"order_id":42,"note":"x"}`: true,
		`{"order_id":0}`:             false,
		`{"note":"x"}`:               false,
		`{"order_id":1,"note":2}`:    false,
	} {
		e := &event.Event{ID: "evt_x", Type: "order.paid", Timestamp: time.Now(), Data: json.RawMessage(data)}
		if err := accepts(t, cs, string(rules.DefaultBody(e))); (err == nil) != ok {
			t.Errorf("payload %s: validation error %v, want valid %t", data, err, ok)
		}
	}
}
