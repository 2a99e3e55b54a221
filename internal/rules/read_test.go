package rules

import (
	"encoding/json"
	"testing"

	"github.com/walhook/walhook/cdc"
)

// TestReadOp checks that a backfilled row (op read) matches only the rules
// that list read, with new the row, old null and op "read".
func TestReadOp(t *testing.T) {
	t.Parallel()
	r, _ := compileSrc(t, `
event "contact.synced" {
  table = "contacts"
  on    = ["insert", "read"]
  when  = op == "read" ? old == null && new.email != "" : true
  data  = { op = op, email = new.email, had_old = old != null }
}
event "contact.created" {
  table = "contacts"
  on    = ["insert"]
}
`)
	read := &cdc.Change{Schema: "public", Table: "contacts", Op: cdc.OpRead,
		New: map[string]any{"id": int64(7), "email": "ada@example.com"}, Key: []string{"id"}, Columns: []string{"id", "email"}}
	evs, fails := r.Evaluate(read, nil)
	if len(fails) > 0 {
		t.Fatalf("failures: %+v", fails)
	}
	if got := types(evs); len(got) != 1 || got[0] != "contact.synced" {
		t.Fatalf("events = %v, want only contact.synced (contact.created does not list read)", got)
	}
	var data map[string]any
	if err := json.Unmarshal(evs[0].Data, &data); err != nil {
		t.Fatal(err)
	}
	if data["op"] != "read" || data["email"] != "ada@example.com" || data["had_old"] != false {
		t.Errorf("data = %v, want op read, the row's email and no old", data)
	}
	if evs[0].Key != "7" {
		t.Errorf("key = %q, want the primary key 7", evs[0].Key)
	}

	// Without a read rule, backfilled rows of the table make nothing.
	r2, _ := compileSrc(t, `
event "contact.created" {
  table = "contacts"
  on    = ["insert"]
}
`)
	if evs, fails := r2.Evaluate(read, nil); len(evs) != 0 || len(fails) != 0 {
		t.Errorf("rules without read: events %v, failures %v; want none", types(evs), fails)
	}
}
