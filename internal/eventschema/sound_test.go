package eventschema

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/rules"
)

// TestSchemaHoldsForEvaluatedData evaluates many data expressions with the
// real rules engine on rows of values and of nulls, for every operation and
// both replica identities, and checks each event's data validates against
// the schema derived for it: the derivation never promises more than the
// rules deliver.
func TestSchemaHoldsForEvaluatedData(t *testing.T) {
	t.Parallel()
	datas := []string{
		"", // the default
		`new`, `old`, `merge(new, { previous = old })`, `merge(old, new, { n = 1 })`,
		`{ id = new.id, amount = new.amount, title = upper(new.title), tags = new.tags }`,
		`{ a = coalesce(new.amount, 0), b = try(new.meta.plan, "free"), c = new.id * 2, d = !new.done }`,
		`{ a = op, b = table, c = tx, d = changed, e = [for t in coalesce(new.tags, []) : t] }`,
		`new.amount`, `"${new.title}"`, `"id ${new.id}"`, `jsonencode(new)`,
		`op == "delete" ? old : new`,
		`{ amount = tostring(new.amount), meta = new.meta, first = try(new.tags[0], null) }`,
		`{ for k, v in new : k => v }`,
		`merge(new, jsondecode("{\"x\": 1}"))`,
		`[new.id, new.amount, new.done]`,
	}
	// Every operation in one rule, and read alone (a backfill's rule: its
	// schema must stand without the other operations' options).
	opSets := [][]cdc.Op{{cdc.OpInsert, cdc.OpUpdate, cdc.OpDelete, cdc.OpRead}, {cdc.OpRead}}
	checked := 0
	for _, identity := range []byte{'d', 'f'} {
		table := soundTable(identity)
		for i, data := range datas {
			for _, ops := range opSets {
				checked += checkSound(t, table, i, data, ops)
			}
		}
	}
	// 2 identities x 18 expressions x 5 ops x 2 rows, less the changes a
	// rule fails on (new.x on delete, old.x without FULL).
	if checked < 200 {
		t.Errorf("only %d events were checked", checked)
	}
	t.Logf("%d evaluated events validated", checked)
}

// checkSound evaluates the rule of ops with data on changes of each op and
// checks each event's data against the rule's derived data schema; it
// returns how many events it checked.
func checkSound(t *testing.T, table *cdc.Table, i int, data string, ops []cdc.Op) (checked int) {
	t.Helper()
	quoted := make([]string, len(ops))
	for k, op := range ops {
		quoted[k] = fmt.Sprintf("%q", op)
	}
	block := fmt.Sprintf("event \"e%d\" {\n  table = \"things\"\n  on = [%s]\n", i, strings.Join(quoted, ", "))
	if data != "" {
		block += "  data = " + data + "\n"
	}
	block += "}\n"
	e, _ := parseEvent(t, block)
	schema := DataSchema(e, table)
	cs := compile(t, schema)
	r := compileRules(t, block)
	for _, op := range ops {
		for _, values := range []bool{true, false} {
			c := soundChange(table, op, values)
			evs, failures := r.Evaluate(c, nil)
			if len(failures) > 0 {
				continue // no delivery: nothing to describe
			}
			for _, ev := range evs {
				checked++
				if err := accepts(t, cs, string(ev.Data)); err != nil {
					t.Errorf("identity %c, data %q, %s of a rule on %v (values %v): %s does not validate against %s: %v",
						table.Identity, data, op, ops, values, ev.Data, marshal(t, schema), err)
				}
			}
		}
	}
	return checked
}

func compileRules(t *testing.T, block string) *rules.Rules {
	t.Helper()
	cfg, diags := config.Parse([]byte(`source "postgres" { url = "postgres://localhost/x" }`+"\n"+block), "test.hcl")
	if diags.HasErrors() {
		t.Fatalf("parsing config: %s", diags.Error())
	}
	r, err := rules.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// soundTable is things(id bigint pk, title text not null, amount
// numeric(12,2), done bool, tags text[], meta jsonb, seen timestamptz).
func soundTable(identity byte) *cdc.Table {
	col := func(name string, oid uint32, notNull, toast bool) cdc.Column {
		return cdc.Column{Name: name, Type: cdc.ColumnValueType(oid, ""), NotNull: notNull, Toastable: toast}
	}
	return &cdc.Table{
		Schema: "public", Name: "things", Identity: identity, Key: []string{"id"},
		Columns: []cdc.Column{
			col("id", pgtype.Int8OID, true, false),
			col("title", pgtype.TextOID, true, true),
			col("amount", pgtype.NumericOID, false, true),
			col("done", pgtype.BoolOID, false, false),
			col("tags", pgtype.TextArrayOID, false, true),
			col("meta", pgtype.JSONBOID, false, true),
			col("seen", pgtype.TimestamptzOID, false, false),
		},
	}
}

// soundChange is a change of op on things as the Reader delivers it: with
// values or with nulls; without FULL the old row is only the key and an
// update leaves the TOASTable columns out of new.
func soundChange(t *cdc.Table, op cdc.Op, values bool) *cdc.Change {
	full := map[string]any{
		"id": int64(7), "title": "Walhook", "amount": json.Number("12000.00"), "done": true,
		"tags": []any{"a", nil, "b"}, "meta": json.RawMessage(`{"plan": "pro", "n": 1.50}`), "seen": "2026-11-23T14:05:06.123456Z",
	}
	if !values {
		full = map[string]any{"id": int64(7), "title": "", "amount": nil, "done": nil, "tags": nil, "meta": nil, "seen": nil}
	}
	keys := map[string]any{"id": full["id"]}
	c := &cdc.Change{Schema: t.Schema, Table: t.Name, Op: op, Columns: t.ColumnNames(), Key: t.Key, OldFull: t.FullIdentity()}
	switch op {
	case cdc.OpInsert, cdc.OpRead:
		c.New = full
	case cdc.OpUpdate:
		c.New = copyMap(full)
		if t.FullIdentity() {
			c.Old = copyMap(full)
			c.Old["title"] = "before"
		} else {
			for _, col := range t.Columns {
				if col.Toastable {
					delete(c.New, col.Name)
					c.Unchanged = append(c.Unchanged, col.Name)
				}
			}
		}
	case cdc.OpDelete:
		c.Old = keys
		if t.FullIdentity() {
			c.Old = full
		}
	}
	return c
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestBodySchemaHoldsForRenderedBodies renders endpoint body expressions
// with the real renderer for events of both identities and checks each
// body validates against the endpoint's derived body schema.
func TestBodySchemaHoldsForRenderedBodies(t *testing.T) {
	t.Parallel()
	bodies := []string{
		`event`,
		`{ event = event.type, at = event.timestamp, data = event.data, key = event.key }`,
		`{ amount = try(event.data.amount, null), tags = try(event.data.tags, []), tenant = event.tenant == "" ? null : event.tenant }`,
		`merge(event.data, { kind = event.type })`,
		`[event.id, upper(event.type)]`,
	}
	checked := 0
	for _, identity := range []byte{'d', 'f'} {
		table := soundTable(identity)
		for i, body := range bodies {
			block := fmt.Sprintf(`event "thing.changed" {
  table = "things"
  on    = ["insert", "update", "delete"]
}
endpoint "reshaped" {
  url    = "https://example.com/hook"
  events = ["*"]
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
  body   = %s
}`, body)
			e, endpoints := parseEvent(t, block)
			described := Describe(e, table, endpoints)
			if len(described.Bodies) != 1 {
				t.Fatalf("body %d: bodies %+v", i, described.Bodies)
			}
			cs := compile(t, described.Bodies[0].Schema)
			r := compileRules(t, block)
			for _, op := range []cdc.Op{cdc.OpInsert, cdc.OpUpdate, cdc.OpDelete} {
				for _, values := range []bool{true, false} {
					evs, failures := r.Evaluate(soundChange(table, op, values), nil)
					if len(failures) > 0 {
						t.Fatalf("default data failed: %v", failures)
					}
					for k := range evs {
						b, err := rules.RenderBody(endpoints[0], &evs[k])
						if err != nil {
							continue // no delivery
						}
						checked++
						if err := accepts(t, cs, string(b)); err != nil {
							t.Errorf("identity %c, body %s, %s: %s does not validate against %s: %v",
								identity, body, op, b, marshal(t, described.Bodies[0].Schema), err)
						}
					}
				}
			}
		}
	}
	if checked < 50 {
		t.Errorf("only %d bodies were checked", checked)
	}
}

// TestTruncateDataNamesTableAndOp: a truncate's default data names the
// table and the operation, and its schema says so exactly.
func TestTruncateDataNamesTableAndOp(t *testing.T) {
	t.Parallel()
	block := "event \"things.truncated\" {\n  table = \"things\"\n  on = [\"truncate\"]\n}\n"
	e, _ := parseEvent(t, block)
	table := soundTable('d')
	schema := DataSchema(e, table)
	evs, fails := compileRules(t, block).Evaluate(&cdc.Change{Schema: "public", Table: "things", Op: cdc.OpTruncate}, nil)
	if len(evs) != 1 || len(fails) != 0 {
		t.Fatalf("events %v, failures %v", evs, fails)
	}
	if got := string(evs[0].Data); got != `{"table":"public.things","op":"truncate"}` {
		t.Fatalf("truncate data = %s", got)
	}
	cs := compile(t, schema)
	if err := accepts(t, cs, string(evs[0].Data)); err != nil {
		t.Fatalf("the truncate data does not hold its schema %s: %v", marshal(t, schema), err)
	}
	if err := accepts(t, cs, `{"table":"public.other","op":"truncate"}`); err == nil {
		t.Fatalf("the schema accepts another table: %s", marshal(t, schema))
	}
}
