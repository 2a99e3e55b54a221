package rules

import (
	"reflect"
	"testing"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/event"
)

// A failure keeps what a replay needs: the event's type and id, the old
// row of an update, and a copy of the change that does not follow later
// changes of the reader's maps.
func TestFailureKeepsTheChangeForReplay(t *testing.T) {
	t.Parallel()
	r, _ := compileSrc(t, `
event "deal.big" {
  table = "deals"
  on    = ["update"]
  when  = new.amount > 10
}
event "deal.any" {
  table = "deals"
  on    = ["update"]
}`)
	c := &cdc.Change{
		Schema: "public", Table: "deals", Op: cdc.OpUpdate, Columns: []string{"id", "amount"}, Key: []string{"id"},
		New: map[string]any{"id": int64(1), "amount": nil}, Old: map[string]any{"id": int64(1)},
		XID: 5, CommitLSN: 1000, EndLSN: 1010, Position: 2,
	}
	evs, fails := r.Evaluate(c, nil)
	if len(evs) != 1 || len(fails) != 1 {
		t.Fatalf("events %v, failures %v", evs, fails)
	}
	f := fails[0]
	if f.EventType != "deal.big" || f.EventID != event.NewID(1000, 2, "deal.big") || string(f.Old) != `{"id":1}` {
		t.Fatalf("failure = %+v", f)
	}
	want := *c
	c.New["amount"] = int64(99) // the reader reusing its map must not change the failure
	if f.Change == c || !reflect.DeepEqual(f.Change.New, map[string]any{"id": int64(1), "amount": nil}) ||
		f.Change.CommitLSN != want.CommitLSN || f.Change.Position != 2 {
		t.Fatalf("change kept = %+v", f.Change)
	}

	// Replaying the stored change runs only the failed rule.
	evs, fails = r.EvaluateRule(c, "deal.big", nil)
	if len(fails) != 0 || len(evs) != 1 || evs[0].Type != "deal.big" || evs[0].ID != f.EventID {
		t.Fatalf("EvaluateRule: events %v, failures %v", evs, fails)
	}
	if evs, fails = r.EvaluateRule(c, "no.such", nil); len(evs)+len(fails) != 0 {
		t.Fatalf("an unknown rule made %v %v", evs, fails)
	}
}
