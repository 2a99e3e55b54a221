package rules

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/event"
)

// benchChanges is a realistic mix for the example rules: contacts inserted
// and updated (some updates change nothing), deals moving stage and closing.
func benchChanges() []*cdc.Change {
	var out []*cdc.Change
	for i := int64(0); i < 64; i++ {
		email := fmt.Sprintf("user%d@example.com", i)
		out = append(out, change("contacts", cdc.OpInsert, contactRow(i, email), nil))
		upd := contactRow(i, "new-"+email)
		upd["updated_at"] = "2026-11-23T14:00:00Z"
		out = append(out, change("contacts", cdc.OpUpdate, upd, contactRow(i, email)))
		if i%4 == 0 {
			out = append(out, change("contacts", cdc.OpUpdate, contactRow(i, email), contactRow(i, email)))
		}
		out = append(out, change("deals", cdc.OpUpdate, dealRow(i, "qualified", nil), dealRow(i, "lead", nil)))
		if i%3 == 0 {
			out = append(out, change("deals", cdc.OpUpdate, dealRow(i, "won", "2026-11-23T14:00:00Z"), dealRow(i, "qualified", nil)))
		}
	}
	return out
}

func BenchmarkEvaluate(b *testing.B) {
	r, _ := exampleRules(b)
	changes := benchChanges()
	out := make([]event.Event, 0, 8)
	events := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var fails []event.Failure
		out, fails = r.Evaluate(changes[i%len(changes)], out[:0])
		if len(fails) > 0 {
			b.Fatal(fails[0].Error)
		}
		events += len(out)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "changes/s")
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkEvaluateHCL is BenchmarkEvaluate with every expression evaluated
// by HCL (no fast path): the cost of rules the fast path does not cover.
func BenchmarkEvaluateHCL(b *testing.B) {
	_, cfg := exampleRules(b)
	r, err := compileRules(cfg, false)
	if err != nil {
		b.Fatal(err)
	}
	changes := benchChanges()
	out := make([]event.Event, 0, 8)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, _ = r.Evaluate(changes[i%len(changes)], out[:0])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "changes/s")
}

// BenchmarkEvaluateDefaults measures a rule with the default key and data
// on a wide row (13 columns: text, numeric, jsonb and timestamptz set, the
// rest null), inserted one at a time: the one-event path of a table
// published as it is:
//
//	go test -run '^$' -bench EvaluateDefaults ./internal/rules/
func BenchmarkEvaluateDefaults(b *testing.B) {
	r, _ := compileSrc(b, `
event "wide.created" {
  table = "wide"
  on    = ["insert"]
}`)
	columns := []string{"id", "name", "amount", "doc", "happened_at", "day", "tags", "blob", "ref", "flag", "note", "extra", "other"}
	row := map[string]any{
		"id": int64(123456), "name": "a somewhat longer text value of a wide row", "amount": json.Number("12345.67"),
		"doc":         json.RawMessage(`{"plan": "pro", "seats": 12, "tags": ["a", "b"]}`),
		"happened_at": "2026-11-23T13:00:00.123456Z",
		"day":         nil, "tags": nil, "blob": nil, "ref": nil, "flag": nil, "note": nil, "extra": nil, "other": nil,
	}
	c := &cdc.Change{Schema: "public", Table: "wide", Op: cdc.OpInsert, New: row, Columns: columns, Key: []string{"id"},
		XID: 4242, CommitTime: commitTime, CommitLSN: 0x16B3748, EndLSN: 0x16B3780, Position: 2}
	out := make([]event.Event, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		var fails []event.Failure
		out, fails = r.Evaluate(c, out[:0])
		if len(fails) > 0 || len(out) != 1 {
			b.Fatalf("%d events, failures %v", len(out), fails)
		}
		_ = DefaultBody(&out[0])
	}
}
