package event_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/event"
)

func TestReplayRoundTripKeepsValueTypes(t *testing.T) {
	c := &cdc.Change{
		Schema: "public", Table: "deals", Op: cdc.OpUpdate,
		New: map[string]any{
			"id": int64(7), "amount": json.Number("12.30"), "ratio": 0.1, "big": uint64(1 << 63),
			"name": "Ada \"the\" \\ first\n\t\x01 ✓", `we"ird key`: "x", "ok": true, "neg": int64(-5), "note": nil, "doc": json.RawMessage(`{"b": 1,  "a": [1.50]}`),
			"tags": []any{"a", nil}, "scores": []any{json.Number("1.0"), "NaN"},
		},
		Old:     map[string]any{"id": int64(7)},
		Columns: []string{"id", "amount"}, Key: []string{"id"}, Unchanged: []string{"blob"},
		XID: 9, CommitTime: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), CommitLSN: 100, EndLSN: 120, Position: 3,
	}
	ev := &event.Event{ID: "evt_x", Type: "deal.updated", Key: "7", Data: json.RawMessage(`{"a": 1.50}`), CommitLSN: 100, Position: 3}
	b, err := event.EncodeReplay(&event.Failure{EventType: "deal.updated", EventID: "evt_x", Endpoint: "cfg:crm", Change: c, Event: ev})
	if err != nil {
		t.Fatal(err)
	}
	r, err := event.DecodeReplay(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.EventType != "deal.updated" || r.EventID != "evt_x" || r.Endpoint != "cfg:crm" {
		t.Fatalf("replay = %+v", r)
	}
	if !reflect.DeepEqual(r.Change, c) {
		t.Fatalf("change changed:\n got %#v\nwant %#v", r.Change, c)
	}
	if !reflect.DeepEqual(r.Event, ev) {
		t.Fatalf("event changed:\n got %#v\nwant %#v", r.Event, ev)
	}
	if b, _ := event.EncodeReplay(&event.Failure{Rule: "x"}); b != nil {
		t.Fatalf("a failure without a change encodes as %s", b)
	}
}

func BenchmarkEncodeReplay(b *testing.B) {
	c := &cdc.Change{
		Schema: "public", Table: "contacts", Op: cdc.OpInsert,
		New: map[string]any{"id": int64(7), "organization_id": int64(1), "first_name": "Ada", "last_name": nil,
			"email": "ada@example.com", "amount": json.Number("12.30"), "meta": json.RawMessage(`{"plan":"pro"}`)},
		Columns: []string{"id", "organization_id", "first_name", "last_name", "email", "amount", "meta"}, Key: []string{"id"},
		XID: 9, CommitTime: time.Now(), CommitLSN: 100, EndLSN: 120, Position: 3,
	}
	f := &event.Failure{EventType: "contact.created", EventID: "evt_x", Change: c}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := event.EncodeReplay(f); err != nil {
			b.Fatal(err)
		}
	}
}
