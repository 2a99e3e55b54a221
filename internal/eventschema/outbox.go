package eventschema

import (
	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/event"
)

// OutboxData is the schema of an outbox event's data: the row's payload,
// which the application writes and walhook passes on as it is, a JSON
// object or array (docs/outbox.md).
func OutboxData() *Schema {
	return &Schema{
		Type:        Types{"object", "array"},
		Description: "The outbox row's payload, as the application wrote it.",
	}
}

// DescribeOutbox describes event name, declared by the outbox block as
// written by the application into outbox table ("schema.table"): the
// default body {"id", "type", "timestamp", "data"} with an open data, and
// the body of each HCL endpoint with a body expression that receives it.
func DescribeOutbox(name, table string, endpoints []*config.Endpoint) *Event {
	data := OutboxData()
	ev := &Event{
		Name: name, Table: table, Ops: []string{}, Source: "outbox",
		Schema: outboxDocument(name, table, outboxEnvelope(name, data, false)), Bodies: []Body{},
	}
	ev.Example = Example(ev.Schema)
	for _, ep := range endpoints {
		if ep.Body == nil || !ep.Matches(name) {
			continue
		}
		s := outboxDocument(name, table, exprSchema(ep.Body, scope{"event": outboxEnvelope(name, data, true)}))
		ev.Bodies = append(ev.Bodies, Body{EndpointID: "cfg:" + ep.Name, Endpoint: ep.Name, Schema: s, Example: Example(s)})
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

// outboxDocument makes s the schema document of outbox event name.
func outboxDocument(name, table string, s *Schema) *Schema {
	doc := *s
	doc.Draft = Draft
	doc.Title = name
	doc.Description = "The " + name + " event, written by the application into the outbox table " + table + "."
	return &doc
}
