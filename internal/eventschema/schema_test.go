package eventschema

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/config"
)

// docsTable is docs(id int primary key, title text not null, body text,
// amount numeric(12,2)) with the given replica identity.
func docsTable(identity byte) *cdc.Table {
	col := func(name string, oid uint32, sqlType string, notNull, toast bool) cdc.Column {
		return cdc.Column{Name: name, Type: cdc.ColumnValueType(oid, ""), SQLType: sqlType, NotNull: notNull, Toastable: toast}
	}
	return &cdc.Table{
		Schema: "public", Name: "docs", Identity: identity, Key: []string{"id"},
		Columns: []cdc.Column{
			col("id", pgtype.Int4OID, "integer", true, false),
			col("title", pgtype.TextOID, "text", true, true),
			col("body", pgtype.TextOID, "text", false, true),
			col("amount", pgtype.NumericOID, "numeric(12,2)", false, false),
		},
	}
}

func parseEvent(t *testing.T, block string) (*config.Event, []*config.Endpoint) {
	t.Helper()
	src := `source "postgres" { url = "postgres://localhost/x" }` + "\n" + block
	cfg, diags := config.Parse([]byte(src), "test.hcl")
	if diags.HasErrors() {
		t.Fatalf("parsing config: %s", diags.Error())
	}
	return cfg.Events[0], cfg.Endpoints
}

func marshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// compile compiles a schema with the validator the integration test uses.
func compile(t *testing.T, s *Schema) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(marshal(t, s)))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.AssertContent()
	if err := c.AddResource("s.json", doc); err != nil {
		t.Fatal(err)
	}
	cs, err := c.Compile("s.json")
	if err != nil {
		t.Fatalf("compiling %s: %v", marshal(t, s), err)
	}
	return cs
}

func accepts(t *testing.T, cs *jsonschema.Schema, doc string) error {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(doc)))
	if err != nil {
		t.Fatal(err)
	}
	return cs.Validate(v)
}

// TestDefaultDataFollowsReplicaIdentity: without FULL an update may lack
// unchanged TOASTed columns and a delete carries only the key; with FULL
// every column is always there.
func TestDefaultDataFollowsReplicaIdentity(t *testing.T) {
	t.Parallel()
	e, _ := parseEvent(t, `event "doc.changed" {
  table = "docs"
  on    = ["update"]
}`)
	d := DataSchema(e, docsTable('d'))
	if got := marshal(t, d.Required); got != `["id","amount"]` {
		t.Errorf("DEFAULT update: required %s", got)
	}
	cs := compile(t, d)
	if err := accepts(t, cs, `{"id":1,"amount":12000.00}`); err != nil {
		t.Errorf("DEFAULT update without TOASTed columns rejected: %v", err)
	}
	full := DataSchema(e, docsTable('f'))
	if got := marshal(t, full.Required); got != `["id","title","body","amount"]` {
		t.Errorf("FULL update: required %s", got)
	}
	if err := accepts(t, compile(t, full), `{"id":1,"amount":12000.00}`); err == nil {
		t.Errorf("FULL update without title and body accepted")
	}

	del, _ := parseEvent(t, `event "doc.deleted" {
  table = "docs"
  on    = ["delete"]
}`)
	if got := marshal(t, DataSchema(del, docsTable('d'))); got != `{"type":"object","properties":{"id":{"type":"integer","x-postgres-type":"integer"}},"required":["id"],"additionalProperties":false}` {
		t.Errorf("DEFAULT delete: %s", got)
	}
}

// TestExpressionSchemas checks what custom data expressions are described
// as, and that each example validates against its schema.
func TestExpressionSchemas(t *testing.T) {
	t.Parallel()
	num := `{"anyOf":[{"type":"number"},{"type":"string","enum":["NaN","Infinity","-Infinity"]},{"type":"null"}],"x-postgres-type":"numeric(12,2)"}`
	cases := []struct{ data, want string }{
		{`new.amount`, num},
		{`{ a = new.amount, b = "x", c = 1, d = [true, null] }`,
			`{"type":"object","properties":{"a":` + num + `,"b":{"const":"x"},"c":{"const":1},"d":{"type":"array","prefixItems":[{"const":true},{"type":"null"}],"minItems":2,"maxItems":2}},"required":["a","b","c","d"],"additionalProperties":false}`},
		{`{ title = upper(new.title), n = length(new.title), ok = new.id > 1, j = jsonencode(new) }`,
			`{"type":"object","properties":{"title":{"type":"string"},"n":{"type":"integer"},"ok":{"type":"boolean"},"j":{"type":"string"}},"required":["title","n","ok","j"],"additionalProperties":false}`},
		{`coalesce(new.body, "none")`, `{"anyOf":[{"type":"string","x-postgres-type":"text"},{"const":"none"}]}`},
		{`"${new.id}"`, `{"type":"integer","x-postgres-type":"integer"}`},
		{`"id ${new.id}"`, `{"type":"string"}`},
		{`merge(jsondecode(new.body), { x = 1 })`, `{"type":"object"}`},
		{`lookup({}, "x", 1)`, `{}`},
		{`[for t in split(",", new.title) : upper(t)]`, `{"type":"array","items":{"type":"string"}}`},
	}
	for _, tc := range cases {
		e, _ := parseEvent(t, `event "doc.created" {
  table = "docs"
  on    = ["insert"]
  data  = `+tc.data+`
}`)
		s := DataSchema(e, docsTable('f'))
		if got := marshal(t, s); got != tc.want {
			t.Errorf("data = %s\n got %s\nwant %s", tc.data, got, tc.want)
		}
		if err := accepts(t, compile(t, s), string(Example(s))); err != nil {
			t.Errorf("data = %s: example %s does not validate: %v", tc.data, Example(s), err)
		}
	}
}

// TestMergeAndBody covers merge over the row (the common custom payload)
// and an endpoint body expression reading event.data.
func TestMergeAndBody(t *testing.T) {
	t.Parallel()
	e, endpoints := parseEvent(t, `event "doc.updated" {
  table = "docs"
  on    = ["update"]
  data  = merge(new, { previous_title = old.title, amount = tostring(new.amount) })
}
endpoint "legacy" {
  url    = "https://example.com/hook"
  events = ["doc.*"]
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
  body   = { event = event.type, title = event.data.title, when = event.timestamp, key = event.key }
}
endpoint "plain" {
  url    = "https://example.com/plain"
  events = ["*"]
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
}`)
	ev := Describe(e, docsTable('f'), endpoints)
	data := ev.Schema.Properties.Get("data")
	if got := marshal(t, data.Properties.Get("amount")); got != `{"type":["string","null"]}` {
		t.Errorf("merged amount: %s", got)
	}
	if got := marshal(t, data.Required); got != `["id","title","body","amount","previous_title"]` {
		t.Errorf("merged required: %s", got)
	}
	if len(ev.Bodies) != 1 || ev.Bodies[0].EndpointID != "cfg:legacy" {
		t.Fatalf("bodies = %+v", ev.Bodies)
	}
	want := `{"$schema":"https://json-schema.org/draft/2020-12/schema","title":"doc.updated","description":"The doc.updated event: update of public.docs.","type":"object","properties":{"event":{"const":"doc.updated"},"title":{"type":"string","x-postgres-type":"text"},"when":{"type":"string","format":"date-time"},"key":{"type":"string"}},"required":["event","title","when","key"],"additionalProperties":false}`
	if got := marshal(t, ev.Bodies[0].Schema); got != want {
		t.Errorf("body schema\n got %s\nwant %s", got, want)
	}
	for _, s := range []*Schema{ev.Schema, ev.Bodies[0].Schema} {
		if err := accepts(t, compile(t, s), string(Example(s))); err != nil {
			t.Errorf("example %s does not validate: %v", Example(s), err)
		}
	}
	if !strings.HasPrefix(string(ev.Example), `{"id":"evt_`) {
		t.Errorf("example = %s", ev.Example)
	}
}

// TestSpecialDatesValidate: infinity, -infinity and BC dates and
// timestamps, which walhook sends as Postgres writes them, pass a
// validator that asserts formats; other non-dates do not.
func TestSpecialDatesValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		oid       uint32
		name      string
		good, bad []string
	}{
		{pgtype.TimestamptzOID, "timestamptz", []string{`"2026-11-23T14:05:06.123456Z"`, `"infinity"`, `"-infinity"`, `"0044-03-15 12:00:00+00 BC"`}, []string{`"yesterday"`, `"2026-13-45"`}},
		{pgtype.DateOID, "date", []string{`"2026-11-23"`, `"infinity"`, `"0044-03-15 BC"`}, []string{`"2026-11-23T00:00:00Z"`, `"soon"`}},
	} {
		cs := compile(t, valueSchema(cdc.ColumnValueType(tc.oid, tc.name), nil))
		for _, v := range tc.good {
			if err := accepts(t, cs, v); err != nil {
				t.Errorf("%s %s refused: %v", tc.name, v, err)
			}
		}
		for _, v := range tc.bad {
			if accepts(t, cs, v) == nil {
				t.Errorf("%s %s accepted", tc.name, v)
			}
		}
	}
}

// TestBatchBody: an endpoint with a batch block is listed with the batch
// body, whose data lists the event's bodies (its own body expression's
// when it has one); the example validates, and so does a real batch body.
func TestBatchBody(t *testing.T) {
	t.Parallel()
	e, endpoints := parseEvent(t, `event "doc.updated" {
  table = "docs"
  on    = ["update"]
}
endpoint "batched" {
  url    = "https://example.com/hook"
  events = ["doc.*"]
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
  batch {
    max_events = 10
  }
}
endpoint "shaped" {
  url    = "https://example.com/shaped"
  events = ["*"]
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
  body   = { event = event.type }
  batch {}
}`)
	ev := Describe(e, docsTable('f'), endpoints)
	if len(ev.Bodies) != 2 || !ev.Bodies[0].Batch || !ev.Bodies[1].Batch {
		t.Fatalf("bodies = %+v", ev.Bodies)
	}
	plain, shaped := ev.Bodies[0].Schema, ev.Bodies[1].Schema
	data := plain.Properties.Get("data")
	if data == nil || marshal(t, data.Items) != marshal(t, envelope(e, DataSchema(e, docsTable('f')))) || *data.MaxItems != 10 {
		t.Errorf("batch data = %s", marshal(t, data))
	}
	if got := marshal(t, shaped.Properties.Get("data").Items); got != `{"type":"object","properties":{"event":{"const":"doc.updated"}},"required":["event"],"additionalProperties":false}` {
		t.Errorf("shaped batch items = %s", got)
	}
	for _, s := range []*Schema{plain, shaped} {
		if err := accepts(t, compile(t, s), string(Example(s))); err != nil {
			t.Errorf("example %s does not validate: %v", Example(s), err)
		}
	}
	body := `{"type":"batch","id":"bat_x","timestamp":"2026-11-23T14:57:19.958113Z","data":[{"event":"doc.updated"},{"event":"doc.updated"}]}`
	if err := accepts(t, compile(t, shaped), body); err != nil {
		t.Errorf("a batch body does not validate: %v", err)
	}
}

// TestBatchDocument: an API webhook's batch body around the default body
// is the batch body an HCL endpoint with the same max_events gets, with
// the default body's title and description at its root; its example
// validates.
func TestBatchDocument(t *testing.T) {
	t.Parallel()
	e, endpoints := parseEvent(t, `event "doc.updated" {
  table = "docs"
  on    = ["update"]
}
endpoint "batched" {
  url    = "https://example.com/hook"
  events = ["doc.*"]
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
  batch {
    max_events = 25
  }
}`)
	ev := Describe(e, docsTable('f'), endpoints)
	got := BatchDocument(ev.Schema, 25)
	if want := marshal(t, ev.Bodies[0].Schema); marshal(t, got) != want {
		t.Errorf("batch document\n got %s\nwant %s", marshal(t, got), want)
	}
	if got.Title != "doc.updated" || got.Draft != Draft || got.Properties.Get("data").Items.Title != "" {
		t.Errorf("root title %q, draft %q, item title %q", got.Title, got.Draft, got.Properties.Get("data").Items.Title)
	}
	if ev.Schema.Title != "doc.updated" {
		t.Errorf("BatchDocument changed the default body's document: title %q", ev.Schema.Title)
	}
	if err := accepts(t, compile(t, got), string(Example(got))); err != nil {
		t.Errorf("example %s does not validate: %v", Example(got), err)
	}
}
