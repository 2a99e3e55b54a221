package config

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// outboxEvents reads the outbox block's events list: the names the
// application may write into the table's event_type, which make the
// outbox's part of the event catalogue (docs/outbox.md, "The event
// catalogue").
func (d *decoder) outboxEvents(cfg *Config, b *outboxBlock) {
	o := cfg.Source.Outbox
	if b == nil || o == nil {
		return
	}
	if !present(b.EventsRange) && present(b.PayloadSchemasRange) {
		d.errorf(b.PayloadSchemasRange, "Payload schemas without events", "payload_schemas describes events of the outbox block's events list: add events = [...] naming them.")
		return
	}
	if !present(b.EventsRange) || d.failed(b.EventsRange) {
		return
	}
	o.EventsRange = b.EventsRange
	if len(b.Events) == 0 {
		d.errorf(b.EventsRange, "No outbox events", "events lists the event names the application writes into the outbox table, like [\"order.paid\", \"order.refunded\"]; leave it out to declare none.")
		return
	}
	blocks := map[string]*Event{}
	for _, e := range cfg.Events {
		blocks[e.Name] = e
	}
	seen := map[string]bool{}
	for _, name := range b.Events {
		switch {
		case !validEventName(name):
			d.errorf(b.EventsRange, "Invalid event name", invalidEventName, name)
			continue
		case seen[name]:
			d.errorf(b.EventsRange, "Duplicate event name", "%q is listed twice in the outbox events.", name)
			continue
		case blocks[name] != nil:
			d.errorf(b.EventsRange, "Duplicate event name", "%q is an outbox event and an event block (at %s): an event comes from the outbox or from a rule, not both.", name, blocks[name].DeclRange)
			continue
		}
		seen[name] = true
		o.Events = append(o.Events, name)
	}
	d.payloadSchemas(o, b)
}

// EventNames are the names of every event the config can produce: its
// event blocks', then the outbox's declared events, in config order.
func (c *Config) EventNames() []string {
	names := make([]string, 0, len(c.Events))
	for _, e := range c.Events {
		names = append(names, e.Name)
	}
	if o := c.Source.Outbox; o != nil {
		names = append(names, o.Events...)
	}
	return names
}

// EventTables are the tables the event blocks read ("schema.table"), in
// config order without repeats: those the trigger fallback captures.
func (c *Config) EventTables() []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range c.Events {
		if t := e.QualifiedTable(); !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

// payloadSchemas reads the outbox block's payload_schemas: an object whose
// keys are event names of its events list and whose values are the JSON
// Schemas of those events' payloads, written in HCL.
func (d *decoder) payloadSchemas(o *Outbox, b *outboxBlock) {
	if !present(b.PayloadSchemasRange) {
		return
	}
	v, diags := b.PayloadSchemas.Value(&hcl.EvalContext{Functions: functions})
	if diags.HasErrors() {
		d.diags = append(d.diags, diags...)
		return
	}
	rng := b.PayloadSchemas.Range()
	ty := v.Type()
	if v.IsNull() || !(ty.IsObjectType() || ty.IsMapType()) {
		d.errorf(rng, "Invalid payload_schemas", "payload_schemas is an object of JSON Schemas by event name, like { \"order.paid\" = { type = \"object\" } }, not %s.", ty.FriendlyName())
		return
	}
	keys := map[string]hcl.Range{}
	if obj, ok := b.PayloadSchemas.(*hclsyntax.ObjectConsExpr); ok {
		for _, item := range obj.Items {
			if k, diags := item.KeyExpr.Value(nil); !diags.HasErrors() && k.Type() == cty.String && k.IsKnown() && !k.IsNull() {
				keys[k.AsString()] = item.KeyExpr.Range()
			}
		}
	}
	o.PayloadSchemas = map[string]json.RawMessage{}
	for it := v.ElementIterator(); it.Next(); {
		k, s := it.Element()
		name := k.AsString()
		at, ok := keys[name]
		if !ok {
			at = rng
		}
		if !slices.Contains(o.Events, name) {
			d.errorf(at, "Unknown outbox event", "%q has a payload schema but is not in the outbox block's events list (%s).", name, strings.Join(o.Events, ", "))
			continue
		}
		if !s.IsWhollyKnown() || s.IsNull() || !(s.Type().IsObjectType() || s.Type().IsMapType()) {
			d.errorf(at, "Invalid payload schema", "The payload schema of %q is a JSON Schema object, like { type = \"object\", required = [\"order_id\"] }.", name)
			continue
		}
		raw, err := ctyjson.Marshal(s, s.Type())
		if err != nil {
			d.errorf(at, "Invalid payload schema", "The payload schema of %q cannot be written as JSON: %v.", name, err)
			continue
		}
		o.PayloadSchemas[name] = raw
	}
}

// Description is the description of outbox event name: its payload
// schema's "description", or empty.
func (o *Outbox) Description(name string) string {
	var s struct {
		Description string `json:"description"`
	}
	if raw := o.PayloadSchemas[name]; raw != nil {
		_ = json.Unmarshal(raw, &s) // written by payloadSchemas: an object
	}
	return s.Description
}
