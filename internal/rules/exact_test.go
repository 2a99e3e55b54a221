package rules

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/config"
)

// exactTexts are numeric texts whose scale or form a plain number loses.
var exactTexts = []string{
	"0.10", "12000.00", "-0.000001", "1e-20", "0.00000000000000000001",
	"1234567890123456789012345678901234567890", "12345678901234567890.12345678901234567890",
}

// TestExactNumbersThroughData checks a numeric passed through a custom data
// expression unchanged is written exactly as Postgres gave it, on the HCL
// path and the fast path, while arithmetic still works on it.
func TestExactNumbersThroughData(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, data string
		want       func(text string) string
	}{
		{"attribute", `{ amount = new.amount }`, func(x string) string { return `{"amount":` + x + `}` }},
		{"merge", `merge(new, { extra = 1 })`, func(x string) string {
			return `{"id":1,"amount":` + x + `,"metadata":{"n":3,"price":2.50},"extra":1}`
		}},
		{"list", `{ amounts = [new.amount, old.amount] }`, func(x string) string { return `{"amounts":[` + x + `,` + x + `]}` }},
		{"conditional", `{ amount = new.amount == null ? 0 : new.amount }`, func(x string) string { return `{"amount":` + x + `}` }},
		{"coalesce", `{ amount = coalesce(new.amount, 0) }`, func(x string) string { return `{"amount":` + x + `}` }},
		{"try", `{ amount = try(new.missing, new.amount) }`, func(x string) string { return `{"amount":` + x + `}` }},
		{"jsonb member", `{ price = new.metadata.price }`, func(string) string { return `{"price":2.50}` }},
		{"arithmetic", `{ amount = new.amount, next = new.amount + 1, zero = new.amount - new.amount }`, func(x string) string {
			return fmt.Sprintf(`{"amount":%s,"next":%s,"zero":0}`, x, plusOne[x])
		}},
	}
	for _, text := range exactTexts {
		for _, tc := range cases {
			for _, fast := range []bool{true, false} {
				t.Run(fmt.Sprintf("%s/%s/fast=%v", text, tc.name, fast), func(t *testing.T) {
					t.Parallel()
					r := compileEvent(t, `event "deal.updated" {
  table = "deals"
  on    = ["update"]
  key   = new.amount
  data  = `+tc.data+`
}`, fast)
					row := map[string]any{"id": int64(1), "amount": json.Number(text), "metadata": json.RawMessage(`{"n":3,"price":2.50}`)}
					c := &cdc.Change{
						Schema: "public", Table: "deals", Op: cdc.OpUpdate, New: row, Old: copyRow(row), OldFull: true,
						Columns: []string{"id", "amount", "metadata"}, Key: []string{"id"}, CommitTime: commitTime,
					}
					evs, failures := r.Evaluate(c, nil)
					if len(failures) > 0 || len(evs) != 1 {
						t.Fatalf("events %d, failures %v", len(evs), failures)
					}
					if got, want := string(evs[0].Data), tc.want(text); got != want {
						t.Errorf("data = %s\nwant   %s", got, want)
					}
					if evs[0].Key != text {
						t.Errorf("key = %q, want %q", evs[0].Key, text)
					}
				})
			}
		}
	}
}

// plusOne is each of exactTexts plus one, as a computed number is written.
var plusOne = map[string]string{
	"0.10": "1.1", "12000.00": "12001", "-0.000001": "0.999999", "1e-20": "1.00000000000000000001",
	"0.00000000000000000001":                    "1.00000000000000000001",
	"1234567890123456789012345678901234567890":  "1234567890123456789012345678901234567891",
	"12345678901234567890.12345678901234567890": "12345678901234567891.1234567890123456789",
}

// TestExactNumbersThroughBody checks an endpoint body expression passes the
// event's numbers through with their text, and computes with them.
func TestExactNumbersThroughBody(t *testing.T) {
	t.Parallel()
	src := `source "postgres" { url = "postgres://localhost/x" }
event "deal.updated" {
  table = "deals"
  on    = ["update"]
}
endpoint "crm" {
  url    = "https://example.com/hook"
  events = ["*"]
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
  body   = { event = event.type, amount = event.data.amount, cents = event.data.amount * 100, data = event.data }
}`
	cfg, diags := config.Parse([]byte(src), "test.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	ev := testEvent()
	ev.Data = json.RawMessage(`{"amount":12000.00,"rate":1e-20,"tiny":-0.000001}`)
	got, err := RenderBody(cfg.Endpoints[0], ev)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"event":"deal.stage.changed","data":{"amount":12000.00,"rate":1e-20,"tiny":-0.000001},"amount":12000.00,"cents":1200000}`
	if string(got) != want {
		t.Errorf("body =\n%s\nwant\n%s", got, want)
	}
}

// TestExactTextAmbiguous checks a value that two different texts fit is
// written as a plain number rather than with either text.
func TestExactTextAmbiguous(t *testing.T) {
	t.Parallel()
	r := compileEvent(t, `event "deal.updated" {
  table = "deals"
  on    = ["update"]
  data  = { pick = new.a + new.b - new.b, a = new.a, b = new.b }
}`, false)
	row := map[string]any{"a": json.Number("1.0"), "b": json.Number("1.00")}
	c := &cdc.Change{Schema: "public", Table: "deals", Op: cdc.OpUpdate, New: row, Columns: []string{"a", "b"}, CommitTime: commitTime}
	evs, failures := r.Evaluate(c, nil)
	if len(failures) > 0 || len(evs) != 1 {
		t.Fatalf("events %d, failures %v", len(evs), failures)
	}
	if got, want := string(evs[0].Data), `{"a":1.0,"b":1.00,"pick":1}`; got != want {
		t.Errorf("data = %s, want %s", got, want)
	}
}

// compileEvent compiles one event block, with or without the fast path.
func compileEvent(t *testing.T, block string, fast bool) *Rules {
	t.Helper()
	src := `source "postgres" { url = "postgres://localhost/x" }` + "\n" + block
	cfg, diags := config.Parse([]byte(src), "test.hcl")
	if diags.HasErrors() {
		t.Fatalf("parsing config: %s", diags.Error())
	}
	r, err := compileRules(cfg, fast)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
