package eventschema

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/event"
)

// Event describes one event type: the rule's catalogue entry, the schema
// and an example of the default request body, and the same for each HCL
// endpoint that reshapes the body of this event with a body expression.
type Event struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Table       string   `json:"table"`
	Ops         []string `json:"ops"`
	// Source is "outbox" for an event the outbox block declares (Table is
	// the outbox table, Ops empty); empty for a rule's event.
	Source string `json:"source,omitempty"`
	// Schema is the JSON Schema (2020-12) of the default request body,
	// {"id", "type", "timestamp", "op", "table", "data"}.
	Schema  *Schema         `json:"schema"`
	Example json.RawMessage `json:"example"`
	// Bodies lists the endpoints with a body expression or a batch block
	// that receive this event; empty when every subscriber gets the
	// default body.
	Bodies []Body `json:"bodies"`
}

// Body is what one endpoint with a body expression receives for an event.
type Body struct {
	EndpointID string `json:"endpoint_id"` // "cfg:<name>", as the admin API names HCL endpoints
	Endpoint   string `json:"endpoint"`
	// Batch is set when the endpoint receives batches: Schema is then the
	// batch body, its data a list of this event's bodies (and those of the
	// other events the endpoint subscribes to).
	Batch   bool            `json:"batch,omitempty"`
	Schema  *Schema         `json:"schema"`
	Example json.RawMessage `json:"example"`
}

// ErrUnknownEvent is returned for an event name no rule defines.
var ErrUnknownEvent = errors.New("no such event")

// Describe describes event e over table t (from cdc.LookupTable), for the
// endpoints of the config.
func Describe(e *config.Event, t *cdc.Table, endpoints []*config.Endpoint) *Event {
	data := DataSchema(e, t)
	ev := &Event{
		Name: e.Name, Description: e.Description, Table: e.QualifiedTable(), Ops: append([]string(nil), e.Ops...),
		Schema: document(e, envelope(e, data)), Bodies: []Body{},
	}
	ev.Example = Example(ev.Schema)
	for _, ep := range endpoints {
		if (ep.Body == nil && ep.Batch == nil) || !ep.Matches(e.Name) {
			continue
		}
		body := envelope(e, data)
		if ep.Body != nil {
			body = exprSchema(ep.Body, scope{"event": eventVar(e, data)})
		}
		s := document(e, batchOf(ep, body))
		ev.Bodies = append(ev.Bodies, Body{EndpointID: "cfg:" + ep.Name, Endpoint: ep.Name, Batch: ep.Batch != nil, Schema: s, Example: Example(s)})
	}
	return ev
}

// DataSchema describes the event's data: the default (the row) or what its
// data expression yields, for each of its operations.
func DataSchema(e *config.Event, t *cdc.Table) *Schema {
	var options []*Schema
	for _, op := range e.Ops {
		r := rowsFor(t, op)
		if e.Data == nil {
			options = append(options, r.defaultData(op, t.Schema+"."+t.Name))
			continue
		}
		options = append(options, exprSchema(e.Data, rowScope(t, op, r)))
	}
	return oneOfThese(options...)
}

// rowScope is the variables a rule's expressions see for op on t.
func rowScope(t *cdc.Table, op string, r rows) scope {
	changed := typed("null")
	if op == "update" && t.FullIdentity() {
		names := make([]any, len(t.Columns))
		for i, c := range t.Columns {
			names[i] = c.Name
		}
		changed = &Schema{Type: Types{"array"}, Items: &Schema{Type: Types{"string"}, Enum: names}}
	}
	return scope{
		"new": r.new, "old": r.old, "op": constOf(op), "table": constOf(t.Schema + "." + t.Name),
		"tx": {
			Type: Types{"object"}, AdditionalProperties: boolPtr(false), Required: []string{"id", "lsn", "commit_time"},
			Properties: Properties{
				{"id", typed("integer")},
				{"lsn", &Schema{Type: Types{"string"}, Examples: []any{"0/16B3748"}}},
				{"commit_time", &Schema{Type: Types{"string"}, Format: "date-time"}},
			},
		},
		"changed": changed,
	}
}

// envelope is the default body of event e around data: op is one of the
// rule's operations, table the rule's table.
func envelope(e *config.Event, data *Schema) *Schema {
	ops := make([]any, len(e.Ops))
	for i, op := range e.Ops {
		ops[i] = op
	}
	op := &Schema{Type: Types{"string"}, Enum: ops}
	if len(ops) == 1 {
		op = constOf(ops[0])
	}
	return &Schema{
		Type: Types{"object"}, AdditionalProperties: boolPtr(false),
		Properties: Properties{
			{"id", &Schema{Type: Types{"string"}, Examples: []any{event.NewID(0x16B3748, 0, e.Name)}}},
			{"type", constOf(e.Name)},
			{"timestamp", &Schema{Type: Types{"string"}, Format: "date-time"}},
			{"op", op},
			{"table", constOf(e.QualifiedTable())},
			{"data", data},
		},
		Required: []string{"id", "type", "timestamp", "op", "table", "data"},
	}
}

// batchOf is the request body of endpoint ep around one event's body:
// body itself, or the batch body listing such bodies when ep batches
// (README.md, "Batches").
func batchOf(ep *config.Endpoint, body *Schema) *Schema {
	if ep.Batch == nil {
		return body
	}
	return Batch(body, ep.Batch.MaxEvents)
}

// Batch is the batch body {"type": "batch", "id", "timestamp", "data"}
// whose data lists 1 to maxEvents bodies like body, one event's request
// body (README.md, "Batches").
func Batch(body *Schema, maxEvents int) *Schema {
	one, most := 1, maxEvents
	return &Schema{
		Type: Types{"object"}, AdditionalProperties: boolPtr(false),
		Properties: Properties{
			{"type", constOf("batch")},
			{"id", &Schema{Type: Types{"string"}, Description: "The batch's webhook-id.", Examples: []any{"bat_3w5m2fz7xq4c6d0b8e1k9h2j7a"}}},
			{"timestamp", &Schema{Type: Types{"string"}, Format: "date-time"}},
			{"data", &Schema{Type: Types{"array"}, Items: body, MinItems: &one, MaxItems: &most,
				Description: "The bodies of the batch's events, in order; it may also hold the other events the endpoint subscribes to."}},
		},
		Required: []string{"type", "id", "timestamp", "data"},
	}
}

// BatchDocument is the batch body, as a schema document, of an endpoint
// that receives the body doc describes (a document from this package, the
// default body's for an API webhook) in batches of at most maxEvents:
// doc's dialect, title and description move to the batch's root.
func BatchDocument(doc *Schema, maxEvents int) *Schema {
	item := *doc
	item.Draft, item.Title, item.Description = "", "", ""
	out := Batch(&item, maxEvents)
	out.Draft, out.Title, out.Description = doc.Draft, doc.Title, doc.Description
	return out
}

// eventVar is the event variable of an endpoint's body expression.
func eventVar(e *config.Event, data *Schema) *Schema {
	s := envelope(e, data)
	s.Properties = append(s.Properties, Property{"key", typed("string")}, Property{"tenant", typed("string")})
	s.Required = append(s.Required, "key", "tenant")
	return s
}

// document makes s a schema document for event e: dialect, title and
// description on a copy of its root.
func document(e *config.Event, s *Schema) *Schema {
	doc := *s
	doc.Draft = Draft
	doc.Title = e.Name
	doc.Description = e.Description
	if doc.Description == "" {
		doc.Description = fmt.Sprintf("The %s event: %s of %s.", e.Name, joinOps(e.Ops), e.QualifiedTable())
	}
	return &doc
}

func joinOps(ops []string) string {
	out := ""
	for i, op := range ops {
		switch {
		case i == 0:
		case i == len(ops)-1:
			out += " or "
		default:
			out += ", "
		}
		out += op
	}
	return out
}

// Catalog describes the events of a config, reading each rule's table
// from the source database when asked, so schemas follow the tables. A
// table read is reused for TableTTL, so a console listing every event
// does not open a connection per event.
type Catalog struct {
	cfg *config.Config
	// now is the clock (tests move it).
	now func() time.Time

	mu     sync.Mutex
	tables map[string]cachedTable
}

type cachedTable struct {
	table *cdc.Table
	read  time.Time
}

// TableTTL is how long a Catalog reuses a table it read.
const TableTTL = 5 * time.Second

// NewCatalog returns a Catalog of cfg's events.
func NewCatalog(cfg *config.Config) *Catalog {
	return &Catalog{cfg: cfg, now: time.Now, tables: map[string]cachedTable{}}
}

// Describe describes the event named name: a rule's, read from its table,
// or one the outbox block declares. It returns ErrUnknownEvent for a name
// the config does not define.
func (c *Catalog) Describe(ctx context.Context, name string) (*Event, error) {
	var e *config.Event
	for _, x := range c.cfg.Events {
		if x.Name == name {
			e = x
		}
	}
	if e == nil {
		if o := c.cfg.Source.Outbox; o != nil && slices.Contains(o.Events, name) {
			return DescribeOutbox(name, o, c.cfg.Endpoints), nil
		}
		return nil, fmt.Errorf("describing event %q: %w", name, ErrUnknownEvent)
	}
	t, err := c.table(ctx, e.Schema, e.Table)
	if err != nil {
		return nil, fmt.Errorf("describing event %q: %w", name, err)
	}
	return Describe(e, t, c.cfg.Endpoints), nil
}

// table returns schema.table from the cache or, when missing or older than
// TableTTL, from the source database (the lock is not held meanwhile).
func (c *Catalog) table(ctx context.Context, schema, table string) (*cdc.Table, error) {
	key := schema + "." + table
	c.mu.Lock()
	cached, ok := c.tables[key]
	c.mu.Unlock()
	if ok && c.now().Sub(cached.read) < TableTTL {
		return cached.table, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.cfg.Source.URL)
	if err != nil {
		return nil, fmt.Errorf("connecting to the source database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	t, err := cdc.LookupTable(ctx, conn, schema, table)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("there is no table %s in the source database", key)
	}
	c.mu.Lock()
	c.tables[key] = cachedTable{table: t, read: c.now()}
	c.mu.Unlock()
	return t, nil
}
