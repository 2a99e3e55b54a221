package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/event"
)

// fuzzRows reads random rows from fuzz input.
type fuzzRows struct{ b []byte }

func (f *fuzzRows) byte() byte {
	if len(f.b) == 0 {
		return 0
	}
	c := f.b[0]
	f.b = f.b[1:]
	return c
}

func (f *fuzzRows) str() string {
	n := int(f.byte() % 12)
	if n > len(f.b) {
		n = len(f.b)
	}
	s := string(f.b[:n])
	f.b = f.b[n:]
	return s
}

// value is a random column value of any type cdc produces.
func (f *fuzzRows) value(depth int) any {
	switch f.byte() % 14 {
	case 0:
		return nil
	case 1, 2:
		return int64(int8(f.byte())) * int64(f.byte())
	case 3:
		return json.Number(fmt.Sprintf("%d.%02d", int8(f.byte()), f.byte()%100))
	case 4:
		return json.Number(strings.Repeat("9", int(f.byte()%40)+1))
	case 5:
		return float64(int8(f.byte())) / 4
	case 6, 7:
		return []string{"lead", "won", "paid", "open", "qualified", "Ünïcode", "e\u0301"}[f.byte()%7]
	case 8:
		return f.str()
	case 9:
		return f.byte()%2 == 0
	case 10:
		raw := []string{`{"plan": "pro", "seats": 12}`, `[1, 2.50, null]`, `"x"`, `{}`, `{"a": {"b": 12345678901234567.89}}`, `{bad`}[f.byte()%6]
		return json.RawMessage(raw)
	case 11:
		if depth > 1 {
			return nil
		}
		return []any{f.value(depth + 1), f.value(depth + 1)}
	case 12:
		return "2026-11-23T14:00:00Z"
	default:
		return json.Number("NaN")
	}
}

func (f *fuzzRows) row(cols []string) (row map[string]any, unchanged []string) {
	row = map[string]any{}
	for _, c := range cols {
		switch f.byte() % 8 {
		case 0:
			unchanged = append(unchanged, c) // TOASTed, not sent
		default:
			row[c] = f.value(0)
		}
	}
	return row, unchanged
}

func (f *fuzzRows) change() *cdc.Change {
	tables := []struct {
		name string
		cols []string
	}{
		{"contacts", contactColumns}, {"deals", dealColumns},
		{"invoices", []string{"id", "deal_id", "amount", "status", "paid_at"}},
	}
	t := tables[f.byte()%3]
	op := []cdc.Op{cdc.OpInsert, cdc.OpUpdate, cdc.OpDelete, cdc.OpTruncate}[f.byte()%4]
	c := &cdc.Change{Schema: "public", Table: t.name, Op: op, Columns: t.cols, Key: []string{"id"},
		XID: uint32(f.byte()), CommitTime: commitTime, CommitLSN: cdc.LSN(f.byte()), Position: int(f.byte())}
	if f.byte()%5 == 0 {
		c.Columns = nil
	}
	newRow, unchanged := f.row(t.cols)
	oldRow, _ := f.row(t.cols)
	if f.byte()%3 == 0 { // copy some old values so updates change little
		for k, v := range oldRow {
			if _, ok := newRow[k]; ok && f.byte()%2 == 0 {
				newRow[k] = v
			}
		}
	}
	switch op {
	case cdc.OpInsert:
		c.New = newRow
	case cdc.OpUpdate:
		c.New, c.Unchanged = newRow, unchanged
		switch f.byte() % 3 {
		case 0:
			c.Old, c.OldFull = oldRow, true
		case 1:
			c.Old = map[string]any{"id": oldRow["id"]}
		}
	case cdc.OpDelete:
		c.Old, c.OldFull = oldRow, f.byte()%2 == 0
	}
	return c
}

// FuzzEvaluate feeds random rows to the example rules and checks that
// nothing panics, every event is well formed, and the fast path agrees with
// HCL's evaluation.
func FuzzEvaluate(f *testing.F) {
	fast, cfg := exampleRules(f)
	slow, err := compileRules(cfg, false)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{1, 1, 7, 7, 7, 0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3})
	f.Add([]byte("deal stage changed from lead to won, closed"))
	f.Add(bytes.Repeat([]byte{1, 6, 2, 9, 10, 3}, 20))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := (&fuzzRows{b: data}).change()
		evs, fails := fast.Evaluate(c, nil)
		want, wantFails := slow.Evaluate(c, nil)
		if len(evs) != len(want) || len(fails) != len(wantFails) {
			t.Fatalf("fast path: %d events, %d failures; HCL: %d events, %d failures (%v / %v)", len(evs), len(fails), len(want), len(wantFails), fails, wantFails)
		}
		for i := range evs {
			checkEvent(t, c, &evs[i])
			if evs[i].ID != want[i].ID || evs[i].Key != want[i].Key || evs[i].Tenant != want[i].Tenant {
				t.Fatalf("fast %+v, HCL %+v", evs[i], want[i])
			}
			if !sameJSON(t, evs[i].Data, want[i].Data) {
				t.Fatalf("%s data: fast %s, HCL %s", evs[i].Type, evs[i].Data, want[i].Data)
			}
		}
		for i, fl := range fails {
			if fl.Rule != wantFails[i].Rule || fl.Error == "" || !json.Valid(fl.Row) {
				t.Fatalf("failure %+v, HCL %+v", fl, wantFails[i])
			}
		}
	})
}

func checkEvent(t *testing.T, c *cdc.Change, ev *event.Event) {
	t.Helper()
	if ev.ID != event.NewID(c.CommitLSN, c.Position, ev.Type) || !json.Valid(ev.Data) {
		t.Fatalf("bad event %+v", ev)
	}
	if body := DefaultBody(ev); !json.Valid(body) {
		t.Fatalf("invalid body %s", body)
	}
}

// sameJSON compares two JSON documents as values: numbers numerically,
// strings after NFC normalization (HCL normalizes strings it handles).
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	decode := func(raw []byte) any {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			t.Fatalf("invalid JSON %s: %v", raw, err)
		}
		return v
	}
	return equalJSON(decode(a), decode(b))
}

func equalJSON(a, b any) bool {
	switch x := a.(type) {
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		fx, _, err1 := big.ParseFloat(string(x), 10, 512, big.ToNearestEven)
		fy, _, err2 := big.ParseFloat(string(y), 10, 512, big.ToNearestEven)
		return err1 == nil && err2 == nil && fx.Cmp(fy) == 0
	case string:
		y, ok := b.(string)
		return ok && norm.NFC.String(x) == norm.NFC.String(y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if !equalJSON(v, y[k]) {
				return false
			}
		}
		return true
	}
	return a == b
}
