package rules

import (
	"encoding/json"
	"testing"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/config"
)

// BenchmarkEvaluateArithmetic evaluates a data expression computing with
// numeric columns and literals (the HCL path: the fast path has no
// arithmetic).
func BenchmarkEvaluateArithmetic(b *testing.B) {
	src := `source "postgres" { url = "postgres://localhost/x" }
event "deal.priced" {
  table = "deals"
  on    = ["update"]
  when  = new.amount > old.amount
  data  = { id = new.id, amount = new.amount, net = new.amount * 0.8, delta = new.amount - old.amount, big = new.id * 100000000000000000000 }
}`
	cfg, diags := config.Parse([]byte(src), "bench.hcl")
	if diags.HasErrors() {
		b.Fatal(diags.Error())
	}
	r, err := Compile(cfg)
	if err != nil {
		b.Fatal(err)
	}
	c := &cdc.Change{
		Schema: "public", Table: "deals", Op: cdc.OpUpdate, Columns: []string{"id", "amount"}, Key: []string{"id"},
		New: map[string]any{"id": int64(42), "amount": json.Number("12000.50")},
		Old: map[string]any{"id": int64(42), "amount": json.Number("11000.25")}, OldFull: true,
	}
	b.ReportAllocs()
	for b.Loop() {
		if evs, fails := r.Evaluate(c, nil); len(fails) > 0 || len(evs) != 1 {
			b.Fatal(fails)
		}
	}
}
