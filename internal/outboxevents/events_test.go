package outboxevents

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/cdc/outbox"
	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/event"
	"github.com/walhook/walhook/internal/rules"
)

func TestEventID(t *testing.T) {
	o := outbox.Origin{System: 7301234567890123456, Database: 16384, Table: 16390}
	created := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	a := EventID(o, 42, created, "")
	if a != EventID(o, 42, created.In(time.FixedZone("x", 3600)), "") || !strings.HasPrefix(a, "evt_") || len(a) != 30 {
		t.Errorf("EventID is not a stable evt_ id: %q", a)
	}
	other := func(f func(o *outbox.Origin)) outbox.Origin { c := o; f(&c); return c }
	for name, id := range map[string]string{
		"row":        EventID(o, 43, created, ""),
		"cluster":    EventID(other(func(o *outbox.Origin) { o.System++ }), 42, created, ""),
		"database":   EventID(other(func(o *outbox.Origin) { o.Database++ }), 42, created, ""),
		"table":      EventID(other(func(o *outbox.Origin) { o.Table++ }), 42, created, ""),
		"created_at": EventID(o, 42, created.Add(time.Microsecond), ""),
		"rule":       EventID(o, 42, created, "contact.created"),
	} {
		if id == a {
			t.Errorf("another %s gives the same id %s", name, a)
		}
	}
}

// newTestSource is the Source of public.outbox under a config with one
// endpoint, reading the slot of origin.
func newTestSource(t *testing.T, opts Options, origin outbox.Origin) *Source {
	t.Helper()
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
	src, err := NewSource("public.outbox", r, opts)
	if err != nil {
		t.Fatal(err)
	}
	src.origin = outbox.Origin{System: origin.System, Database: origin.Database}
	return src
}

// TestSlotAndPollingAgree: an insert arriving through the slot and the
// same row claimed by polling make the same event, with the same id.
func TestSlotAndPollingAgree(t *testing.T) {
	origin := outbox.Origin{System: 7301234567890123456, Database: 16384, Table: 16390}
	src := newTestSource(t, Options{}, origin)
	created := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	var recorded []int64
	eval := src.Evaluate(func(_ cdc.LSN, id int64) { recorded = append(recorded, id) })
	slot, fs := eval(&cdc.Change{Schema: "public", Table: "outbox", Relation: origin.Table, Op: cdc.OpInsert, New: map[string]any{
		"id": int64(7), "event_type": "order.paid", "key": "42", "tenant": nil,
		"payload": json.RawMessage(`{"a": 1}`), "created_at": "2024-05-06T07:08:09.123456Z",
	}}, nil)
	if len(fs) > 0 || len(slot) != 1 {
		t.Fatalf("slot: %v, %v", slot, fs)
	}
	typ := "order.paid"
	polled, fs := src.Events([]outbox.Row{{ID: 7, EventType: &typ, Key: "42", Payload: json.RawMessage(`{"a": 1}`), CreatedAt: created, Origin: origin}}, nil)
	if len(fs) > 0 || len(polled) != 1 {
		t.Fatalf("polled: %v, %v", polled, fs)
	}
	a, b := slot[0], polled[0]
	if a.ID != b.ID || a.Type != b.Type || a.Key != b.Key || a.Tenant != b.Tenant || !a.Timestamp.Equal(b.Timestamp) || string(a.Data) != string(b.Data) {
		t.Errorf("slot event %+v differs from polled %+v", a, b)
	}
	if a.ID != EventID(origin, 7, created, "") {
		t.Errorf("id %s is not EventID of the row", a.ID)
	}
	if len(recorded) != 1 || recorded[0] != 7 {
		t.Errorf("consumed rows recorded: %v", recorded)
	}
	if evs, _ := eval(&cdc.Change{Schema: "public", Table: "outbox", Op: cdc.OpDelete, Old: map[string]any{"id": int64(7)}}, nil); len(evs) != 0 {
		t.Errorf("a delete from the outbox made events: %v", evs)
	}
}

// TestBadRowsFail: a row no event can be made of is a failed evaluation
// with its row id and the reason, on both paths, and the rows around it
// still make their events; the failure keeps the row for a replay.
func TestBadRowsFail(t *testing.T) {
	origin := outbox.Origin{System: 1, Database: 2, Table: 3}
	created := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	str := func(s string) *string { return &s }
	cases := []struct {
		name    string
		typ     *string
		payload any // json.RawMessage (json, jsonb), string (text) or nil
		created bool
		want    string
	}{
		{"null type", nil, json.RawMessage(`{}`), true, "event_type is NULL"},
		{"empty type", str(""), json.RawMessage(`{}`), true, "event_type is empty"},
		{"undeclared", str("order.lost"), json.RawMessage(`{}`), true, `event type "order.lost" is not declared`},
		{"text not json", str("order.paid"), "{not json}", true, "payload is not a JSON object or array: invalid character"},
		{"json string", str("order.paid"), json.RawMessage(`"x"`), true, "payload is not a JSON object or array: it is a JSON string"},
		{"json number", str("order.paid"), "12", true, "it is a JSON number"},
		{"json null", str("order.paid"), json.RawMessage(`null`), true, "it is JSON null"},
		{"null payload", str("order.paid"), nil, true, "payload is NULL"},
		{"null created_at", str("order.paid"), json.RawMessage(`[1]`), false, "created_at is NULL"},
	}
	src := newTestSource(t, Options{Events: []string{"order.paid"}}, origin)
	good := func(id int64) outbox.Row {
		return outbox.Row{ID: id, EventType: str("order.paid"), Payload: json.RawMessage(`{"ok": true}`), CreatedAt: created, Origin: origin}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bad := outbox.Row{ID: 5, EventType: c.typ, Origin: origin}
			slotRow := map[string]any{"id": int64(5), "event_type": nil, "key": nil, "tenant": nil, "payload": c.payload, "created_at": nil}
			if c.typ != nil {
				slotRow["event_type"] = *c.typ
			}
			switch p := c.payload.(type) {
			case json.RawMessage:
				bad.Payload = p
			case string:
				bad.Payload = json.RawMessage(p)
			}
			if c.created {
				bad.CreatedAt = created
				slotRow["created_at"] = created.Format(time.RFC3339Nano)
			}
			evs, fs := src.Events([]outbox.Row{good(4), bad, good(6)}, nil)
			if len(evs) != 2 || len(fs) != 1 {
				t.Fatalf("polling: %d events and %d failures, want 2 and 1: %+v", len(evs), len(fs), fs)
			}
			checkFailure(t, "polling", fs[0], c.want, EventID(origin, 5, bad.CreatedAt, ""))
			polled := fs[0]

			evs, fs = src.Evaluate(nil)(&cdc.Change{Schema: "public", Table: "outbox", Relation: origin.Table, Op: cdc.OpInsert, New: slotRow}, nil)
			if len(evs) != 0 || len(fs) != 1 {
				t.Fatalf("slot: %d events and %d failures, want 0 and 1", len(evs), len(fs))
			}
			checkFailure(t, "slot", fs[0], c.want, EventID(origin, 5, bad.CreatedAt, ""))

			// A replay of the kept row fails again, for the same reason,
			// under the same position (the store replaces the failure).
			for _, f := range []event.Failure{polled, fs[0]} {
				_, rfs := src.Replay(roundTrip(t, f), f.EventID)
				if len(rfs) != 1 || !strings.Contains(rfs[0].Error, c.want) || rfs[0].EventID != f.EventID ||
					rfs[0].CommitLSN != f.CommitLSN || rfs[0].Position != f.Position || rfs[0].Rule != f.Rule {
					t.Errorf("replay of %+v: %+v", f, rfs)
				}
			}
		})
	}
}

func checkFailure(t *testing.T, path string, f event.Failure, want, id string) {
	t.Helper()
	if f.Rule != "outbox" || f.Table != "public.outbox" || !strings.Contains(f.Error, "outbox row 5: ") || !strings.Contains(f.Error, want) {
		t.Errorf("%s: failure %q (rule %s, table %s), want row 5 and %q", path, f.Error, f.Rule, f.Table, want)
	}
	if f.EventID != id || !f.HasReplay() || f.Change.New["id"] != int64(5) {
		t.Errorf("%s: failure keeps id %s (want %s) and change %+v", path, f.EventID, id, f.Change)
	}
}

// roundTrip is the change of failure f as the state store keeps it.
func roundTrip(t *testing.T, f event.Failure) *cdc.Change {
	t.Helper()
	b, err := event.EncodeReplay(&f)
	if err != nil {
		t.Fatal(err)
	}
	r, err := event.DecodeReplay(b)
	if err != nil {
		t.Fatal(err)
	}
	return r.Change
}

// TestReplayAfterDeclaring: a row whose type was not declared is a failed
// evaluation; once the type is declared, its replay makes the event under
// the id the row would have had, from the row as the store kept it.
func TestReplayAfterDeclaring(t *testing.T) {
	origin := outbox.Origin{System: 1, Database: 2, Table: 3}
	created := time.Date(2024, 5, 6, 7, 8, 9, 5000, time.UTC)
	typ := "order.refunded"
	row := outbox.Row{ID: 9, EventType: &typ, Key: "k9", Tenant: "org_7", Payload: json.RawMessage(`{"n": 9}`), CreatedAt: created, Origin: origin}
	_, fs := newTestSource(t, Options{Events: []string{"order.paid"}}, origin).Events([]outbox.Row{row}, nil)
	if len(fs) != 1 {
		t.Fatalf("failures %+v", fs)
	}
	fixed := newTestSource(t, Options{Events: []string{"order.paid", "order.refunded"}}, origin)
	evs, rfs := fixed.Replay(roundTrip(t, fs[0]), fs[0].EventID)
	if len(rfs) != 0 || len(evs) != 1 {
		t.Fatalf("replay: %+v, %+v", evs, rfs)
	}
	ev := evs[0]
	if ev.ID != EventID(origin, 9, created, "") || ev.Type != typ || ev.Key != "k9" || ev.Tenant != "org_7" || string(ev.Data) != `{"n": 9}` || !ev.Timestamp.Equal(created) {
		t.Errorf("replayed event %+v", ev)
	}
	direct, _ := fixed.Events([]outbox.Row{row}, nil)
	if direct[0].ID != ev.ID {
		t.Errorf("replay id %s, row's own %s", ev.ID, direct[0].ID)
	}
}

// TestSkippedRows: an outbox event no endpoint wants is counted, and
// logged once per period; a rule's event is not a skipped row.
func TestSkippedRows(t *testing.T) {
	var reasons []string
	var logs bytes.Buffer
	src := newTestSource(t, Options{Skipped: func(r string) { reasons = append(reasons, r) }, Logger: zerolog.New(&logs)}, outbox.Origin{})
	src.Unrouted(&event.Event{Type: "order.paid", Table: "public.outbox"})
	src.Unrouted(&event.Event{Type: "contact.created", Table: "public.contacts", Op: cdc.OpInsert})
	src.Unrouted(&event.Event{Type: "x.y", Table: "public.outbox"})
	if len(reasons) != 2 || reasons[0] != SkipNoSubscriber {
		t.Errorf("skips counted: %v", reasons)
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 || !strings.Contains(logs.String(), `"last_type":"order.paid"`) {
		t.Errorf("%d log lines for 2 skips within a minute, want 1:\n%s", n, logs.String())
	}
}

// TestPolledFailuresOfAReusedRowID: after TRUNCATE ... RESTART IDENTITY a
// new row 1 fails under another position than the old row 1, so the state
// store keeps both failures.
func TestPolledFailuresOfAReusedRowID(t *testing.T) {
	origin := outbox.Origin{System: 1, Database: 2, Table: 3}
	src := newTestSource(t, Options{}, origin)
	created := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	before := outbox.Row{ID: 1, Payload: json.RawMessage(`{}`), CreatedAt: created, Origin: origin}
	after := before
	after.CreatedAt = created.Add(time.Hour)
	_, fs := src.Events([]outbox.Row{before, after}, nil)
	if len(fs) != 2 || fs[0].CommitLSN == fs[1].CommitLSN || fs[0].EventID == fs[1].EventID {
		t.Errorf("failures of two rows 1 share a position or id: %+v", fs)
	}
}
