package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/relay"
	"github.com/walhook/walhook/testenv"
)

// kindsSQL creates a table with a column of every type walhook decodes,
// and one row of values and one of nulls.
const kindsSQL = `
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE DOMAIN positive AS int CHECK (VALUE > 0);
CREATE TABLE kinds (
	id int PRIMARY KEY,
	i2 smallint, i4 int, i8 bigint, o oid,
	num numeric, num_scaled numeric(12,2), num_nan numeric,
	f4 real, f8 double precision, f8_nan double precision, f8_inf double precision,
	b bool,
	t text, vc varchar(10), ch char(3), nm name, u uuid, e mood, dom positive,
	tstz timestamptz, ts timestamp, d date,
	j json, jb jsonb, jb_null jsonb, by bytea,
	a_int int[], a_text text[], a_num numeric[], a_jsonb jsonb[], a_2d int[], a_enum mood[], a_tstz timestamptz[], a_empty int[],
	iv interval, ip inet, tm time, mn money,
	x8 xid8, qc "char", a_vc varchar(3)[], a_bool bool[], a_bytea bytea[], tsr tstzrange,
	required_text text NOT NULL,
	gen int GENERATED ALWAYS AS (i2 * 2) STORED
);
ALTER TABLE kinds REPLICA IDENTITY FULL;
CREATE TABLE money (id int PRIMARY KEY, amount numeric, note text);
`

const kindsValues = `
INSERT INTO kinds VALUES (
	1, -32768, 2147483647, -9000000000, 4000000000,
	'12345678901234567890.123456789', 12000.00, 'NaN',
	1.1, 3.141592653589793, 'NaN', '-Infinity',
	true,
	'héllo "world"', 'short', 'ab', 'a_name', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy', 7,
	'2024-03-01 12:34:56.123456+02', '2024-03-01 12:34:56.5', '2024-02-29',
	'{"a": 1,  "b": [true, null]}', '{"b": [true, null], "a": 1.50}', 'null', '\x0001ff',
	'{1,NULL,3}', '{"a b","c,d",NULL}', '{1.50,NaN}', ARRAY['{"k": 1}'::jsonb, '[1, 2]'::jsonb],
	'{{1,2},{3,4}}', '{sad,happy}', '{"2024-03-01 12:00:00+00"}', '{}',
	'1 day 02:00:00', '10.0.0.1/8', '13:14:15', 12.5,
	'18446744073709551615', 'q', '{abc,NULL,"d,e"}', '{t,f,NULL}', ARRAY['\x00ff'::bytea], '[2024-01-01,2024-02-01)',
	'x'
);
INSERT INTO kinds (id, required_text) VALUES (2, '');
UPDATE kinds SET t = 'changed', num_scaled = 0.10 WHERE id = 1;
DELETE FROM kinds WHERE id = 2;
`

// received collects request bodies per endpoint path.
type received struct {
	mu     sync.Mutex
	bodies map[string][][]byte
	wake   testkit.Notifier
}

func newReceived() *received {
	return &received{bodies: map[string][][]byte{}, wake: testkit.NewNotifier()}
}

func (rc *received) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	rc.mu.Lock()
	rc.bodies[r.URL.Path] = append(rc.bodies[r.URL.Path], b)
	rc.mu.Unlock()
	rc.wake.Notify()
	w.WriteHeader(http.StatusNoContent)
}

// wait waits until path has n bodies and returns them.
func (rc *received) wait(t *testing.T, path string, n int) [][]byte {
	t.Helper()
	var got [][]byte
	testkit.AwaitCond(t, testkit.Timeout, fmt.Sprintf("%d bodies at %s", n, path), rc.wake, func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		got = append([][]byte(nil), rc.bodies[path]...)
		return len(got) >= n
	})
	return got
}

// reshaper is an endpoint that reshapes money.moved with a body expression.
const reshaper = `
endpoint "reshaper" {
  url    = "RECEIVER/reshaper"
  events = ["money.moved"]
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
  body   = { event = event.type, amount = event.data.amount, cents = event.data.amount * 100, data = event.data }
}
`

// schemaRelay runs a relay with an admin handler on db, delivering to rc:
// endpoint "all" receives every event; blocks adds events and endpoints
// (RECEIVER in them stands for rc's URL).
func schemaRelay(t *testing.T, db *testenv.DB, rc *received, blocks string) (adminURL string) {
	t.Helper()
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	slot := testenv.Name(t, "slot")
	src := fmt.Sprintf(`
source "postgres" {
  url         = %q
  slot        = %q
  publication = %q
}
admin {
  listen = "127.0.0.1:0"
  token  = %q
}
delivery {
  shutdown_timeout = "5s"
}
endpoint "all" {
  url    = "%s/all"
  events = ["*"]
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
}
%s`, db.URL, slot, slot, tokenA, srv.URL, strings.ReplaceAll(blocks, "RECEIVER", srv.URL))
	_, r := runRelay(t, src, relay.Options{})
	api := httptest.NewServer(r.AdminHandler())
	t.Cleanup(api.Close)
	return api.URL
}

// getJSON GETs path from the admin API and returns the body.
func getJSON(t *testing.T, base, path string, want int) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tokenA)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("GET %s: %d, want %d: %s", path, res.StatusCode, want, b)
	}
	return b
}

// compileSchema compiles a schema document with format and content
// assertions on.
func compileSchema(t *testing.T, doc []byte) *jsonschema.Schema {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.AssertContent()
	if err := c.AddResource("event.json", v); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("event.json")
	if err != nil {
		t.Fatalf("compiling the schema: %v\n%s", err, doc)
	}
	return s
}

func validate(s *jsonschema.Schema, body []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return err
	}
	return s.Validate(v)
}

// TestDeliveriesValidateAgainstTheirSchema writes rows holding every type
// walhook decodes (values and nulls; insert, update and delete), with the
// default payload and a custom data expression, and checks that every body
// actually delivered validates against the schema the admin API serves for
// its event, and that each event's example does too.
func TestDeliveriesValidateAgainstTheirSchema(t *testing.T) {
	t.Parallel()
	db := testenv.NewEmptyDB(t)
	db.Exec(t, kindsSQL)
	rc := newReceived()
	base := schemaRelay(t, db, rc, `
event "kind.changed" {
  description = "Every column, default payload"
  table = "kinds"
  on    = ["insert", "update", "delete"]
}
event "kind.custom" {
  table = "kinds"
  on    = ["insert", "update"]
  data  = {
    id     = new.id
    amount = new.num_scaled
    label  = coalesce(new.t, "none")
    tags   = new.a_text
    meta   = new.jb
    at     = new.tstz
    pair   = [new.i4, new.f8]
    next   = try(new.i4 + 1, null)
    moved  = op == "update" ? old.num_scaled : null
    kind   = new.e
    cols   = changed
  }
}
event "money.moved" {
  table = "money"
  on    = ["insert"]
  data  = { amount = new.amount, doubled = new.amount * 2, note = new.note }
}
`+reshaper)
	var catalogue struct {
		Data []struct {
			Name      string `json:"name"`
			SchemaURL string `json:"schema_url"`
		} `json:"data"`
	}
	if err := json.Unmarshal(getJSON(t, base, "/v1/events", http.StatusOK), &catalogue); err != nil {
		t.Fatal(err)
	}
	if len(catalogue.Data) != 3 || catalogue.Data[0].SchemaURL != "/v1/events/kind.changed/schema" {
		t.Fatalf("catalogue = %+v", catalogue.Data)
	}

	db.Exec(t, kindsValues)
	db.Exec(t, `INSERT INTO money VALUES (1, 0.10, 'a'), (2, 12000.00, NULL), (3, -0.000001, 'c'), (4, 1e-20, 'd'),
		(5, 1234567890123456789012345678901.123456789, 'e')`)
	// kind.changed: 2 inserts, 1 update, 1 delete; kind.custom: 2 inserts,
	// 1 update; money.moved: 5.
	bodies := rc.wait(t, "/all", 12)

	schemas := map[string]*jsonschema.Schema{}
	for _, c := range catalogue.Data {
		doc := getJSON(t, base, c.SchemaURL, http.StatusOK)
		schemas[c.Name] = compileSchema(t, doc)
		var ev struct {
			Example json.RawMessage `json:"example"`
		}
		if err := json.Unmarshal(getJSON(t, base, "/v1/events/"+c.Name, http.StatusOK), &ev); err != nil {
			t.Fatal(err)
		}
		if err := validate(schemas[c.Name], ev.Example); err != nil {
			t.Errorf("the example of %s does not validate: %v\n%s", c.Name, err, ev.Example)
		}
	}
	seen := map[string]int{}
	for _, b := range bodies {
		var head struct{ Type string }
		if err := json.Unmarshal(b, &head); err != nil {
			t.Fatalf("delivered body is not JSON: %v", err)
		}
		seen[head.Type]++
		s := schemas[head.Type]
		if s == nil {
			t.Fatalf("delivery of unknown event %q", head.Type)
		}
		if err := validate(s, b); err != nil {
			t.Errorf("a %s delivery does not validate against its schema: %v\n%s", head.Type, err, b)
		}
	}
	if seen["kind.changed"] != 4 || seen["kind.custom"] != 3 || seen["money.moved"] != 5 {
		t.Errorf("deliveries per event: %v", seen)
	}

	// The validator does reject a body that breaks the schema.
	for _, b := range bodies {
		if bytes.Contains(b, []byte(`"type":"kind.changed"`)) && bytes.Contains(b, []byte(`"i4":2147483647`)) {
			bad := bytes.Replace(b, []byte(`"i4":2147483647`), []byte(`"i4":"2147483647"`), 1)
			if validate(schemas["kind.changed"], bad) == nil {
				t.Errorf("a string for an integer column validates")
			}
			bad = bytes.Replace(b, []byte(`"u":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"`), []byte(`"u":"not-a-uuid"`), 1)
			if validate(schemas["kind.changed"], bad) == nil {
				t.Errorf("a malformed uuid validates")
			}
		}
	}

	// The reshaping endpoint's bodies validate against its body schema.
	reshaped := rc.wait(t, "/reshaper", 5)
	bodySchema := compileSchema(t, getJSON(t, base, "/v1/events/money.moved/schema?endpoint=reshaper", http.StatusOK))
	for _, b := range reshaped {
		if err := validate(bodySchema, b); err != nil {
			t.Errorf("a reshaped money.moved body does not validate: %v\n%s", err, b)
		}
	}
	if a, b := getJSON(t, base, "/v1/events/money.moved/schema?endpoint=cfg:all", http.StatusOK), getJSON(t, base, "/v1/events/money.moved/schema", http.StatusOK); !bytes.Equal(a, b) {
		t.Errorf("an endpoint without a body expression gets another schema than the default body:\n%s\n%s", a, b)
	}
	getJSON(t, base, "/v1/events/money.moved/schema?endpoint=nope", http.StatusBadRequest)
	getJSON(t, base, "/v1/events/no.such/schema", http.StatusNotFound)
	getJSON(t, base, "/v1/events/no.such", http.StatusNotFound)
}

// TestExactNumbersDelivered checks numeric values keep Postgres's text
// through a custom data expression and an endpoint body expression, and
// that arithmetic on them gives plain numbers.
func TestExactNumbersDelivered(t *testing.T) {
	t.Parallel()
	db := testenv.NewEmptyDB(t)
	db.Exec(t, `CREATE TABLE money (id int PRIMARY KEY, amount numeric, note text)`)
	rc := newReceived()
	schemaRelay(t, db, rc, `
event "money.moved" {
  table = "money"
  on    = ["insert"]
  data  = { amount = new.amount, plus_one = new.amount + 1 }
}
`+reshaper)
	texts := []struct{ in, out, plusOne string }{
		{"0.10", "0.10", "1.1"},
		{"12000.00", "12000.00", "12001"},
		{"-0.000001", "-0.000001", "0.999999"},
		{"1e-20", "0.00000000000000000001", "1.00000000000000000001"},
		{"1234567890123456789012345678901234567890", "1234567890123456789012345678901234567890", "1234567890123456789012345678901234567891"},
		{"123456789012345678901234567890.1234567890", "123456789012345678901234567890.1234567890", "123456789012345678901234567891.123456789"},
	}
	for i, x := range texts {
		db.Exec(t, `INSERT INTO money VALUES ($1, $2::numeric, '')`, i, x.in)
	}
	all := rc.wait(t, "/all", len(texts))
	reshaped := rc.wait(t, "/reshaper", len(texts))
	for _, x := range texts {
		wantData := fmt.Sprintf(`"data":{"amount":%s,"plus_one":%s}`, x.out, x.plusOne)
		if !containsBody(all, wantData) {
			t.Errorf("no default body contains %s; got\n%s", wantData, bytes.Join(all, []byte("\n")))
		}
		wantBody := `{"event":"money.moved","data":{"amount":` + x.out + ","
		if !containsBody(reshaped, wantBody) {
			t.Errorf("no reshaped body starts %s; got\n%s", wantBody, bytes.Join(reshaped, []byte("\n")))
		}
	}
}

func containsBody(bodies [][]byte, part string) bool {
	for _, b := range bodies {
		if strings.Contains(string(b), part) {
			return true
		}
	}
	return false
}

// TestToastDelivered updates only the title of rows holding 1.3 MB of text
// and of jsonb: with REPLICA IDENTITY FULL the webhook carries the whole
// row, body and meta included; with DEFAULT they are absent (Postgres does
// not send them). Either way the deliveries validate against the schema.
func TestToastDelivered(t *testing.T) {
	t.Parallel()
	db := testenv.NewEmptyDB(t)
	db.Exec(t, `CREATE TABLE docs_full (id int PRIMARY KEY, title text, body text, meta jsonb);
		ALTER TABLE docs_full REPLICA IDENTITY FULL;
		CREATE TABLE docs_default (id int PRIMARY KEY, title text, body text, meta jsonb)`)
	rc := newReceived()
	base := schemaRelay(t, db, rc, `
event "doc.full" {
  table = "docs_full"
  on    = ["insert", "update"]
}
event "doc.default" {
  table = "docs_default"
  on    = ["insert", "update"]
}
event "doc.full.custom" {
  table = "docs_full"
  on    = ["update"]
  data  = { id = new.id, title = new.title, body_length = length(new.body), meta = new.meta, changed = changed }
}
`)
	// Random-looking text that Postgres cannot compress below the TOAST
	// threshold: the hex of a sequence hashed by Postgres itself.
	db.Exec(t, `INSERT INTO docs_full VALUES (1, 'a', (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 40625) i), jsonb_build_object('blob', (SELECT string_agg(md5((-i)::text), '') FROM generate_series(1, 40625) i)))`)
	db.Exec(t, `INSERT INTO docs_default SELECT * FROM docs_full`)
	db.Exec(t, `UPDATE docs_full SET title = 'b'`)
	db.Exec(t, `UPDATE docs_default SET title = 'b'`)
	var want struct {
		Body string
		Meta json.RawMessage
	}
	if err := db.Pool.QueryRow(context.Background(), `SELECT body, meta FROM docs_full`).Scan(&want.Body, &want.Meta); err != nil {
		t.Fatal(err)
	}
	if len(want.Body) < 1300_000 {
		t.Fatalf("body of %d bytes", len(want.Body))
	}
	bodies := rc.wait(t, "/all", 5)

	type row struct {
		ID      int              `json:"id"`
		Title   string           `json:"title"`
		Body    *string          `json:"body"`
		Meta    *json.RawMessage `json:"meta"`
		Len     *int             `json:"body_length"`
		Changed []string         `json:"changed"`
	}
	got := map[string]row{}
	for _, b := range bodies {
		var msg struct {
			Type string `json:"type"`
			Data row    `json:"data"`
		}
		if err := json.Unmarshal(b, &msg); err != nil {
			t.Fatal(err)
		}
		got[msg.Type+"/"+msg.Data.Title] = msg.Data
		if err := validate(compileSchema(t, getJSON(t, base, "/v1/events/"+msg.Type+"/schema", http.StatusOK)), b); err != nil {
			t.Errorf("%s delivery does not validate: %v", msg.Type, err)
		}
	}
	sameMeta := func(m *json.RawMessage) bool {
		if m == nil {
			return false
		}
		var a, b any
		_ = json.Unmarshal(*m, &a)
		_ = json.Unmarshal(want.Meta, &b)
		return fmt.Sprint(a) == fmt.Sprint(b)
	}
	for _, key := range []string{"doc.full/a", "doc.full/b", "doc.default/a"} {
		r := got[key]
		if r.Body == nil || *r.Body != want.Body || !sameMeta(r.Meta) {
			t.Errorf("%s: body present %v, meta present %v: want the whole row", key, r.Body != nil, r.Meta != nil)
		}
	}
	if r := got["doc.default/b"]; r.ID != 1 || r.Body != nil || r.Meta != nil {
		t.Errorf("doc.default update: body present %v, meta present %v: want both absent", r.Body != nil, r.Meta != nil)
	}
	if r := got["doc.full.custom/b"]; r.Len == nil || *r.Len != len(want.Body) || !sameMeta(r.Meta) || fmt.Sprint(r.Changed) != "[title]" {
		t.Errorf("doc.full.custom: body_length %v, meta present %v, changed %v (want [title])", r.Len, r.Meta != nil, r.Changed)
	}
}
