package eventschema

import (
	"encoding/json"

	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/event"
)

// OutboxData is the schema of an outbox event's data: the row's payload,
// which the application writes and walhook passes on as it is. declared
// is the payload schema the config gives for the event (JSON), if any;
// without one the payload is any JSON object or array (docs/outbox.md).
func OutboxData(declared json.RawMessage) *Schema {
	if declared != nil {
		var s Schema
		if err := json.Unmarshal(declared, &s); err != nil {
			// Keywords this package does not model in a shape it cannot
			// read: the schema is still written as declared.
			s = Schema{}
		}
		s.Raw = declared
		return &s
	}
	return &Schema{
		Type:        Types{"object", "array"},
		Description: "The outbox row's payload, as the application wrote it.",
	}
}

// DescribeOutbox describes event name, declared by outbox block o as
// written by the application into its table: the default body {"id",
// "type", "timestamp", "data"} with data as declared in payload_schemas (its
// description the event's) or open, and the body of each HCL endpoint with
// a body expression that receives it.
func DescribeOutbox(name string, o *config.Outbox, endpoints []*config.Endpoint) *Event {
	table, declared := o.Table, o.PayloadSchemas[name]
	data := OutboxData(declared)
	ev := &Event{
		Name: name, Description: o.Description(name), Table: table, Ops: []string{}, Source: "outbox",
		Schema: outboxDocument(name, table, o.Description(name), outboxEnvelope(name, data, false)), Bodies: []Body{},
	}
	ev.Example = Example(ev.Schema)
	for _, ep := range endpoints {
		if (ep.Body == nil && ep.Batch == nil) || !ep.Matches(name) {
			continue
		}
		body := outboxEnvelope(name, data, false)
		if ep.Body != nil {
			body = exprSchema(ep.Body, scope{"event": outboxEnvelope(name, data, true)})
		}
		s := outboxDocument(name, table, ev.Description, batchOf(ep, body))
		ev.Bodies = append(ev.Bodies, Body{EndpointID: "cfg:" + ep.Name, Endpoint: ep.Name, Batch: ep.Batch != nil, Schema: s, Example: Example(s)})
	}
	return ev
}

// outboxEnvelope is the default body of outbox event name around data;
// with vars, the event variable of a body expression (op is empty for an
// outbox event, table the outbox table, key and tenant the row's).
func outboxEnvelope(name string, data *Schema, vars bool) *Schema {
	s := &Schema{
		Type: Types{"object"}, AdditionalProperties: boolPtr(false),
		Properties: Properties{
			{"id", &Schema{Type: Types{"string"}, Examples: []any{event.NewID(1, 0, name)}}},
			{"type", constOf(name)},
			{"timestamp", &Schema{Type: Types{"string"}, Format: "date-time"}},
			{"data", data},
		},
		Required: []string{"id", "type", "timestamp", "data"},
	}
	if vars {
		s.Properties = append(s.Properties, Property{"op", constOf("")}, Property{"table", typed("string")},
			Property{"key", typed("string")}, Property{"tenant", typed("string")})
		s.Required = append(s.Required, "op", "table", "key", "tenant")
	}
	return s
}

// outboxDocument makes s the schema document of outbox event name, with
// its description or, when empty, one naming the outbox table.
func outboxDocument(name, table, description string, s *Schema) *Schema {
	doc := *s
	doc.Raw = nil
	doc.Draft = Draft
	doc.Title = name
	doc.Description = description
	if description == "" {
		doc.Description = "The " + name + " event, written by the application into the outbox table " + table + "."
	}
	return &doc
}
