package rules

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/event"
)

func types(evs []event.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

func TestExampleRules(t *testing.T) {
	t.Parallel()
	r, _ := exampleRules(t)
	closed := "2026-11-23T14:00:00Z"
	contactUpdated := contactRow(42, "ada@new.example")
	contactUpdated["updated_at"] = "2026-11-23T14:00:00Z"
	tests := []struct {
		name   string
		change *cdc.Change
		want   []string
		fails  []string // rules expected to fail
	}{
		{"contact insert", change("contacts", cdc.OpInsert, contactRow(42, "ada@example.com"), nil), []string{"contact.created"}, nil},
		{"contact update that changed columns", change("contacts", cdc.OpUpdate, contactUpdated, contactRow(42, "ada@example.com")), []string{"contact.updated"}, nil},
		{"contact update that changed nothing", change("contacts", cdc.OpUpdate, contactRow(42, "a@x"), contactRow(42, "a@x")), nil, nil},
		{"contact delete: no rule", change("contacts", cdc.OpDelete, nil, contactRow(42, "a@x")), nil, nil},
		{"deal stage change", change("deals", cdc.OpUpdate, dealRow(9, "won", nil), dealRow(9, "lead", nil)), []string{"deal.stage.changed"}, nil},
		{"deal closed and stage changed", change("deals", cdc.OpUpdate, dealRow(9, "won", closed), dealRow(9, "lead", nil)), []string{"deal.stage.changed", "deal.closed"}, nil},
		{"deal update, same stage, still open", change("deals", cdc.OpUpdate, dealRow(9, "lead", nil), dealRow(9, "lead", nil)), nil, nil},
		// HCL's && is false when one side is false, ignoring errors on the other.
		{"deal update without the old row", change("deals", cdc.OpUpdate, dealRow(9, "won", nil), nil), nil, []string{"deal.stage.changed"}},
		{"deal closed without the old row", change("deals", cdc.OpUpdate, dealRow(9, "won", closed), nil), nil, []string{"deal.stage.changed", "deal.closed"}},
		{"invoice paid", &cdc.Change{Schema: "public", Table: "invoices", Op: cdc.OpUpdate,
			New: map[string]any{"id": int64(1), "status": "paid"}, Old: map[string]any{"id": int64(1), "status": "open"},
			Key: []string{"id"}, OldFull: true}, []string{"invoice.paid"}, nil},
		{"table without rules", &cdc.Change{Schema: "public", Table: "notes", Op: cdc.OpInsert, New: map[string]any{"id": int64(1)}}, nil, nil},
		{"other schema", &cdc.Change{Schema: "crm", Table: "contacts", Op: cdc.OpInsert, New: map[string]any{"id": int64(1)}}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, fails := r.Evaluate(tt.change, nil)
			if got := strings.Join(types(evs), ","); got != strings.Join(tt.want, ",") {
				t.Errorf("events = %q, want %q", got, strings.Join(tt.want, ","))
			}
			var failed []string
			for _, f := range fails {
				failed = append(failed, f.Rule)
			}
			if got := strings.Join(failed, ","); got != strings.Join(tt.fails, ",") {
				t.Errorf("failures = %q, want %q (%v)", got, strings.Join(tt.fails, ","), fails)
			}
		})
	}
}

func TestContactCreatedDefaults(t *testing.T) {
	t.Parallel()
	r, _ := exampleRules(t)
	c := change("contacts", cdc.OpInsert, contactRow(42, "ada@example.com"), nil)
	evs, fails := r.Evaluate(c, nil)
	if len(fails) != 0 || len(evs) != 1 {
		t.Fatalf("events %v, failures %v", evs, fails)
	}
	ev := evs[0]
	if want := event.NewID(c.CommitLSN, c.Position, "contact.created"); ev.ID != want {
		t.Errorf("id = %s, want %s", ev.ID, want)
	}
	if ev.Key != "42" || ev.Tenant != "" || ev.Table != "public.contacts" {
		t.Errorf("key %q tenant %q table %q", ev.Key, ev.Tenant, ev.Table)
	}
	if !ev.Timestamp.Equal(commitTime) || ev.CommitLSN != c.CommitLSN || ev.EndLSN != c.EndLSN || ev.Position != 2 {
		t.Errorf("provenance: %+v", ev)
	}
	want := `{"id":42,"organization_id":7,"first_name":"Ada","last_name":"Lovelace","email":"ada@example.com","phone":null,"assigned_to":3,"created_at":"2026-11-23T13:00:00Z","updated_at":"2026-11-23T13:00:00Z"}`
	if string(ev.Data) != want {
		t.Errorf("data =\n%s\nwant\n%s", ev.Data, want)
	}
}

func TestDeterministicID(t *testing.T) {
	t.Parallel()
	r, _ := exampleRules(t)
	c := change("deals", cdc.OpUpdate, dealRow(9, "won", "2026-11-23T14:00:00Z"), dealRow(9, "lead", nil))
	a, _ := r.Evaluate(c, nil)
	b, _ := r.Evaluate(c, nil)
	if len(a) != 2 || a[0].ID != b[0].ID || a[1].ID != b[1].ID {
		t.Fatalf("ids differ between runs: %v / %v", a, b)
	}
	if a[0].ID == a[1].ID {
		t.Errorf("two rules on one change share id %s", a[0].ID)
	}
	c2 := *c
	c2.Position = 3
	d, _ := r.Evaluate(&c2, nil)
	if d[0].ID == a[0].ID {
		t.Errorf("a change at another position got the same id")
	}
	c3 := *c
	c3.CommitLSN++
	e, _ := r.Evaluate(&c3, nil)
	if e[0].ID == a[0].ID {
		t.Errorf("a change of another transaction got the same id")
	}
}

func TestDealStageChangedData(t *testing.T) {
	t.Parallel()
	r, _ := exampleRules(t)
	c := change("deals", cdc.OpUpdate, dealRow(9, "won", nil), dealRow(9, "lead", nil))
	evs, fails := r.Evaluate(c, nil)
	if len(fails) != 0 || len(evs) != 1 {
		t.Fatalf("events %v, failures %v", evs, fails)
	}
	ev := evs[0]
	if ev.Key != "9" || ev.Tenant != "7" {
		t.Errorf("key %q tenant %q, want 9 and 7", ev.Key, ev.Tenant)
	}
	want := `{"id":9,"organization_id":7,"contact_id":1,"title":"Big deal","amount":12345678901234567.89,"stage":"won","assigned_to":null,"closed_at":null,"metadata":{"plan": "pro", "seats": 12},"previous_stage":"lead"}`
	if string(ev.Data) != want {
		t.Errorf("data =\n%s\nwant\n%s", ev.Data, want)
	}
}

func TestChanged(t *testing.T) {
	t.Parallel()
	r, _ := compileSrc(t, `
event "contact.changes" {
  table = "contacts"
  on    = ["insert", "update", "delete"]
  data  = { changed = changed }
}`)
	old := contactRow(1, "a@x")
	newRow := contactRow(1, "b@x")
	newRow["phone"] = "+33 1"
	delete(newRow, "last_name") // TOASTed and unchanged
	tests := []struct {
		name string
		c    *cdc.Change
		want string
	}{
		{"update with the full old row", func() *cdc.Change {
			c := change("contacts", cdc.OpUpdate, newRow, old)
			c.Unchanged = []string{"last_name"}
			return c
		}(), `{"changed":["email","phone"]}`},
		{"nothing changed", change("contacts", cdc.OpUpdate, copyRow(old), old), `{"changed":[]}`},
		{"unchanged column listed but present", func() *cdc.Change {
			n := copyRow(old)
			n["email"] = "other"
			c := change("contacts", cdc.OpUpdate, n, old)
			c.Unchanged = []string{"email"}
			return c
		}(), `{"changed":[]}`},
		{"old row with the key only", func() *cdc.Change {
			c := change("contacts", cdc.OpUpdate, newRow, map[string]any{"id": int64(1)})
			c.OldFull = false
			return c
		}(), `{"changed":null}`},
		{"insert", change("contacts", cdc.OpInsert, newRow, nil), `{"changed":null}`},
		{"delete", change("contacts", cdc.OpDelete, nil, old), `{"changed":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, fails := r.Evaluate(tt.c, nil)
			if len(fails) != 0 || len(evs) != 1 {
				t.Fatalf("events %v, failures %v", evs, fails)
			}
			if string(evs[0].Data) != tt.want {
				t.Errorf("data = %s, want %s", evs[0].Data, tt.want)
			}
		})
	}
}

func TestVariablesPerOp(t *testing.T) {
	t.Parallel()
	r, _ := compileSrc(t, `
event "row.any" {
  table = "crm.items"
  on    = ["insert", "update", "delete", "truncate"]
  data  = {
    op = op, table = table, tx = tx,
    new = new == null ? "null" : new.name,
    old = old == null ? "null" : old.name,
  }
}`)
	row := map[string]any{"id": int64(5), "name": "n"}
	oldRow := map[string]any{"id": int64(5), "name": "o"}
	tx := `"tx":{"commit_time":"2026-11-23T13:05:06.123456Z","id":4242,"lsn":"0/16B3748"}`
	tests := []struct {
		op       cdc.Op
		new, old map[string]any
		want     string
		key      string
	}{
		{cdc.OpInsert, row, nil, `{"new":"n","old":"null","op":"insert","table":"crm.items",` + tx + `}`, "5"},
		{cdc.OpUpdate, row, oldRow, `{"new":"n","old":"o","op":"update","table":"crm.items",` + tx + `}`, "5"},
		{cdc.OpDelete, nil, oldRow, `{"new":"null","old":"o","op":"delete","table":"crm.items",` + tx + `}`, "5"},
		{cdc.OpTruncate, nil, nil, `{"new":"null","old":"null","op":"truncate","table":"crm.items",` + tx + `}`, ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.op), func(t *testing.T) {
			c := &cdc.Change{Schema: "crm", Table: "items", Op: tt.op, New: tt.new, Old: tt.old,
				Key: []string{"id"}, XID: 4242, CommitTime: commitTime, CommitLSN: 0x16B3748}
			if tt.op == cdc.OpTruncate {
				c.Key = nil
			}
			evs, fails := r.Evaluate(c, nil)
			if len(fails) != 0 || len(evs) != 1 {
				t.Fatalf("events %v, failures %v", evs, fails)
			}
			if string(evs[0].Data) != tt.want {
				t.Errorf("data =\n%s\nwant\n%s", evs[0].Data, tt.want)
			}
			if evs[0].Key != tt.key {
				t.Errorf("key = %q, want %q", evs[0].Key, tt.key)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	r, _ := compileSrc(t, `
event "member.any" {
  table = "memberships"
  on    = ["insert", "delete", "truncate"]
}`)
	row := map[string]any{"org": "7", "user_id": "abc", "role": "admin"}
	cols := []string{"org", "user_id", "role"}
	mk := func(op cdc.Op) *cdc.Change {
		c := &cdc.Change{Schema: "public", Table: "memberships", Op: op, Columns: cols, Key: []string{"org", "user_id"}}
		switch op {
		case cdc.OpInsert:
			c.New = row
		case cdc.OpDelete:
			c.Old = row
		}
		return c
	}
	for _, tt := range []struct {
		op        cdc.Op
		key, data string
	}{
		{cdc.OpInsert, "7:abc", `{"org":"7","user_id":"abc","role":"admin"}`},
		{cdc.OpDelete, "7:abc", `{"org":"7","user_id":"abc","role":"admin"}`},
		{cdc.OpTruncate, "", `{"table":"public.memberships","op":"truncate"}`},
	} {
		evs, fails := r.Evaluate(mk(tt.op), nil)
		if len(fails) != 0 || len(evs) != 1 {
			t.Fatalf("%s: events %v, failures %v", tt.op, evs, fails)
		}
		if evs[0].Key != tt.key || string(evs[0].Data) != tt.data || evs[0].Tenant != "" {
			t.Errorf("%s: key %q data %s tenant %q, want %q %s \"\"", tt.op, evs[0].Key, evs[0].Data, evs[0].Tenant, tt.key, tt.data)
		}
	}
}

func TestFailures(t *testing.T) {
	t.Parallel()
	r, _ := compileSrc(t, `
event "when.null" {
  table = "items"
  on    = ["insert"]
  when  = new.flag
}
event "when.string" {
  table = "items"
  on    = ["insert"]
  when  = new.name
}
event "when.error" {
  table = "items"
  on    = ["insert"]
  when  = upper(new.flag) == "X"
}
event "key.object" {
  table = "items"
  on    = ["insert"]
  key   = new.meta
}
event "tenant.error" {
  table = "items"
  on    = ["insert"]
  tenant = new.missing
}
event "data.error" {
  table = "items"
  on    = ["insert"]
  data  = { total = new.name + 1 }
}
event "toast.read" {
  table = "items"
  on    = ["insert"]
  data  = { bio = new.bio }
}
event "toast.try" {
  table = "items"
  on    = ["insert"]
  data  = { bio = try(new.bio, null), plan = new.meta.plan }
  tenant = new.flag
}
event "when.true" {
  table = "items"
  on    = ["insert"]
  when  = new.name == "widget"
}`)
	c := &cdc.Change{
		Schema: "public", Table: "items", Op: cdc.OpInsert,
		New:       map[string]any{"id": int64(3), "name": "widget", "flag": nil, "meta": json.RawMessage(`{"plan":"pro"}`)},
		Unchanged: []string{"bio"}, Columns: []string{"id", "name", "flag", "bio", "meta"}, Key: []string{"id"},
		XID: 9, CommitLSN: 100, EndLSN: 120, Position: 4,
	}
	evs, fails := r.Evaluate(c, nil)
	if got := strings.Join(types(evs), ","); got != "toast.try,when.true" {
		t.Errorf("events = %s, want toast.try,when.true", got)
	}
	if len(evs) > 0 && string(evs[0].Data) != `{"bio":null,"plan":"pro"}` {
		t.Errorf("toast.try data = %s", evs[0].Data)
	}
	want := map[string]string{
		"when.null":    "null, not a bool",
		"when.string":  "must be a bool, not string",
		"when.error":   "evaluating when",
		"key.object":   "must be a string or number, not object",
		"tenant.error": `does not have an attribute named "missing"`,
		"data.error":   "evaluating data",
		"toast.read":   `does not have an attribute named "bio"`,
	}
	if len(fails) != len(want) {
		t.Errorf("%d failures, want %d: %v", len(fails), len(want), fails)
	}
	for _, f := range fails {
		w, ok := want[f.Rule]
		if !ok {
			t.Errorf("unexpected failure of %s: %s", f.Rule, f.Error)
			continue
		}
		if !strings.Contains(f.Error, w) {
			t.Errorf("%s: error %q does not contain %q", f.Rule, f.Error, w)
		}
		if f.Table != "public.items" || f.Op != cdc.OpInsert || f.XID != 9 || f.CommitLSN != 100 || f.EndLSN != 120 || f.Position != 4 {
			t.Errorf("%s: provenance %+v", f.Rule, f)
		}
		if string(f.Row) != `{"id":3,"name":"widget","flag":null,"meta":{"plan":"pro"}}` {
			t.Errorf("%s: row %s", f.Rule, f.Row)
		}
	}
}

func TestCatalogue(t *testing.T) {
	t.Parallel()
	r, _ := exampleRules(t)
	cat := r.Catalogue()
	var names []string
	for _, e := range cat {
		names = append(names, e.Name)
	}
	if got := strings.Join(names, ","); got != "contact.created,contact.updated,deal.stage.changed,deal.closed,invoice.paid" {
		t.Errorf("catalogue = %s", got)
	}
	if cat[0].Description != "A contact was added" || cat[0].Table != "public.contacts" || strings.Join(cat[0].Ops, ",") != "insert" {
		t.Errorf("contact.created = %+v", cat[0])
	}
}

// TestCatalogueOutboxEvents checks that the outbox block's declared events
// follow the rules' in the catalogue, marked as outbox events.
func TestCatalogueOutboxEvents(t *testing.T) {
	t.Parallel()
	cfg, diags := config.Parse([]byte(`source "postgres" {
  url = "postgres://x/y"
  outbox {
    table  = "app.outbox"
    events = ["order.paid", "order.refunded"]
  }
}
event "item.created" {
  table = "items"
  on    = ["insert"]
}
`), "test.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	r, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cat := r.Catalogue()
	if len(cat) != 3 || cat[0].Name != "item.created" || cat[0].Source != "" {
		t.Fatalf("catalogue = %+v", cat)
	}
	for i, name := range []string{"order.paid", "order.refunded"} {
		e := cat[i+1]
		if e.Name != name || e.Source != SourceOutbox || e.Table != "app.outbox" || e.Ops == nil || len(e.Ops) != 0 {
			t.Errorf("catalogue[%d] = %+v", i+1, e)
		}
	}
}

func TestLogFailure(t *testing.T) {
	t.Parallel()
	var buf strings.Builder
	log := zerolog.New(&buf).Level(zerolog.InfoLevel)
	f := event.Failure{Rule: "deal.closed", Table: "public.deals", Op: cdc.OpUpdate, XID: 7, CommitLSN: 0x16B3748,
		Position: 3, Error: "evaluating when: boom", Row: json.RawMessage(`{"email":"secret@example.com"}`)}
	LogFailure(log, &f)
	got := buf.String()
	for _, want := range []string{`"rule":"deal.closed"`, `"table":"public.deals"`, `"op":"update"`, `"xid":7`, `"lsn":"0/16B3748"`, `"position":3`, `"error":"evaluating when: boom"`} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %s: %s", want, got)
		}
	}
	if strings.Contains(got, "secret@example.com") {
		t.Errorf("row data logged above debug level: %s", got)
	}
}
