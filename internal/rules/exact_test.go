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

// TestExactNumbersThroughFunctions runs every function rules may call on
// rows holding exact numerics (which carry a cty mark): none may fail or
// lose the value because of the mark.
func TestExactNumbersThroughFunctions(t *testing.T) {
	t.Parallel()
	exprs := map[string]string{
		"format":       `format("%.2f|%s|%v", new.amount, new.amount, new.amount)`,
		"formatlist":   `formatlist("%s", [new.amount, new.other])`,
		"join":         `join(",", [new.amount, new.other])`,
		"jsonencode":   `jsonencode(new)`,
		"tostring":     `tostring(new.amount)`,
		"tonumber":     `tonumber(new.amount)`,
		"template":     `"${new.amount} and ${new.other}"`,
		"max":          `max(new.amount, new.other)`,
		"min":          `min(new.amount, new.other)`,
		"abs":          `abs(new.amount)`,
		"ceil":         `ceil(new.amount)`,
		"floor":        `floor(new.amount)`,
		"signum":       `signum(new.amount)`,
		"pow":          `pow(new.amount, 2)`,
		"log":          `log(new.amount, 10)`,
		"int":          `int(new.amount)`,
		"parseint":     `parseint("12", 10) + new.amount`,
		"lookup":       `lookup(new, "amount", 0)`,
		"element":      `element([new.amount, new.other], 1)`,
		"index":        `index([new.amount, new.other], 1)`,
		"concat":       `concat([new.amount], [new.other])`,
		"sort":         `sort([tostring(new.amount), tostring(new.other)])`,
		"distinct":     `distinct([new.amount, new.amount, new.other])`,
		"contains":     `contains([new.amount], new.amount)`,
		"coalescelist": `coalescelist([], [new.amount])`,
		"compact":      `compact([tostring(new.amount), ""])`,
		"flatten":      `flatten([[new.amount], [new.other]])`,
		"slice":        `slice([new.amount, new.other], 0, 1)`,
		"reverse":      `reverse([new.amount, new.other])`,
		"values":       `values({ a = new.amount, b = new.other })`,
		"keys":         `keys(new)`,
		"zipmap":       `zipmap(["a", "b"], [new.amount, new.other])`,
		"merge":        `merge(new, { x = new.amount })`,
		"tolist":       `tolist([new.amount, new.other])`,
		"toset":        `toset([new.amount, new.other])`,
		"tomap":        `tomap({ a = new.amount, b = new.other })`,
		"length":       `length([new.amount, new.metadata])`,
		"range":        `range(new.amount)`,
		"can":          `can(new.amount + 1)`,
		"try":          `try(new.missing, new.amount)`,
		"coalesce":     `coalesce(null, new.amount)`,
		"for list":     `[for v in [new.amount, new.other] : v * 2]`,
		"for object":   `{ for k, v in new : k => v if k != "metadata" }`,
		"splat":        `[{ a = new.amount }][*].a`,
		"conditional":  `new.amount > new.other ? new.amount : new.other`,
		"compare":      `new.amount == new.other || new.amount != 1 && !(new.amount < 0)`,
		"index expr":   `new.metadata.prices[0]`,
		"jsondecode":   `jsondecode(jsonencode(new.metadata)).prices`,
		"regex":        `regex("[0-9]+", tostring(new.amount))`,
	}
	for name, expr := range exprs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, fast := range []bool{true, false} {
				r := compileEvent(t, `event "deal.updated" {
  table = "deals"
  on    = ["update"]
  when  = (`+expr+`) != null
  key   = jsonencode(`+expr+`)
  data  = { v = `+expr+` }
}`, fast)
				row := map[string]any{"amount": json.Number("12.50"), "other": json.Number("0.10"), "metadata": json.RawMessage(`{"prices":[1.50,2.00]}`)}
				c := &cdc.Change{Schema: "public", Table: "deals", Op: cdc.OpUpdate, New: row, Columns: []string{"amount", "other", "metadata"}, CommitTime: commitTime}
				evs, failures := r.Evaluate(c, nil)
				if len(failures) > 0 || len(evs) != 1 {
					t.Fatalf("%s: events %d, failures %v", expr, len(evs), failures)
				}
				if !json.Valid(evs[0].Data) {
					t.Errorf("%s: data is not JSON: %s", expr, evs[0].Data)
				}
			}
		})
	}
}
