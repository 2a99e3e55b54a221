package outboxevents

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/cdc/outbox"
	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/rules"
)

func TestEventID(t *testing.T) {
	a := EventID("public.outbox", 42, "")
	if a != EventID("public.outbox", 42, "") || !strings.HasPrefix(a, "evt_") || len(a) != 30 {
		t.Errorf("EventID is not a stable evt_ id: %q", a)
	}
	for _, other := range []string{EventID("public.outbox", 43, ""), EventID("app.outbox", 42, ""), EventID("public.outbox", 42, "contact.created")} {
		if other == a {
			t.Errorf("different rows share id %s", a)
		}
	}
}

// TestSlotAndPollingAgree: an insert arriving through the slot and the
// same row claimed by polling make the same event.
func TestSlotAndPollingAgree(t *testing.T) {
	cfg, diags := config.Parse([]byte(`
source "postgres" {
  url = "postgres://localhost/x"
  outbox {
    table = "public.outbox"
  }
}
endpoint "app" {
  url    = "http://127.0.0.1:1/"
  events = ["*"]
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
}
`), "t.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	r, err := rules.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewSource("public.outbox", r)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	var recorded []int64
	eval := src.Evaluate(func(_ cdc.LSN, id int64) { recorded = append(recorded, id) })
	slot, fs := eval(&cdc.Change{Schema: "public", Table: "outbox", Op: cdc.OpInsert, New: map[string]any{
		"id": int64(7), "event_type": "order.paid", "key": "42", "tenant": nil,
		"payload": json.RawMessage(`{"a": 1}`), "created_at": "2024-05-06T07:08:09.123456Z",
	}}, nil)
	if len(fs) > 0 || len(slot) != 1 {
		t.Fatalf("slot: %v, %v", slot, fs)
	}
	polled, fs := src.Events([]outbox.Row{{ID: 7, EventType: "order.paid", Key: "42", Payload: json.RawMessage(`{"a": 1}`), CreatedAt: created}}, nil)
	if len(fs) > 0 || len(polled) != 1 {
		t.Fatalf("polled: %v, %v", polled, fs)
	}
	a, b := slot[0], polled[0]
	if a.ID != b.ID || a.Type != b.Type || a.Key != b.Key || a.Tenant != b.Tenant || !a.Timestamp.Equal(b.Timestamp) || string(a.Data) != string(b.Data) {
		t.Errorf("slot event %+v differs from polled %+v", a, b)
	}
	if len(recorded) != 1 || recorded[0] != 7 {
		t.Errorf("consumed rows recorded: %v", recorded)
	}
	if evs, _ := eval(&cdc.Change{Schema: "public", Table: "outbox", Op: cdc.OpDelete, Old: map[string]any{"id": int64(7)}}, nil); len(evs) != 0 {
		t.Errorf("a delete from the outbox made events: %v", evs)
	}
}
