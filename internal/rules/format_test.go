package rules

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/walhook/walhook/cdc"
)

// TestFormatRoundsExactly checks format's float verbs round the exact
// decimal half to even, whatever its binary error, and leave everything
// else (flags, width, argument indexes, other verbs, errors) to cty.
func TestFormatRoundsExactly(t *testing.T) {
	t.Parallel()
	cases := []struct{ expr, want string }{
		{`format("%.2f", 0.135)`, `"0.14"`},
		{`format("%.2f", 0.145)`, `"0.14"`},
		{`format("%.2f", 0.125)`, `"0.12"`},
		{`format("%.2f", 2.675)`, `"2.68"`},
		{`format("%.2f", 1.005)`, `"1.00"`},
		{`format("%.2f", 1.0051)`, `"1.01"`},
		{`format("%.2f", -2.675)`, `"-2.68"`},
		{`format("%.0f", 2.5)`, `"2"`},
		{`format("%.0f", 3.5)`, `"4"`},
		{`format("%f", 0.0000005)`, `"0.000000"`},
		{`format("%f", 0.0000015)`, `"0.000002"`},
		{`format("%.2f", new.amount * 1.1)`, `"13.48"`},
		{`format("%08.2f|%-8.1f|%+.3f", 2.675, 0.25, 1.0005)`, `"00002.68|0.2     |+1.000"`},
		{`format("%.2f %.3[1]f %[1]s", 1.2345)`, `"1.23 1.234 1.2345"`},
		{`format("%.1e", 125000)`, `"1.2e+05"`},
		{`format("%.2g", 0.0135)`, `"0.014"`},
		{`format("%g", 0.07 * 0.2)`, `"0.014"`},
		{`format("%d%% of %s", 12, "x")`, `"12% of x"`},
		{`format("%.2f", 100000000000000000000.125)`, `"100000000000000000000.12"`},
	}
	for _, tc := range cases {
		r := compileEvent(t, `event "x" {
  table = "deals"
  on    = ["insert"]
  data  = { v = `+tc.expr+` }
}`, false)
		c := &cdc.Change{Schema: "public", Table: "deals", Op: cdc.OpInsert, New: map[string]any{"amount": json.Number("12.25")}, Columns: []string{"amount"}, CommitTime: commitTime}
		evs, failures := r.Evaluate(c, nil)
		if len(failures) > 0 || len(evs) != 1 {
			t.Errorf("%s: events %d, failures %v", tc.expr, len(evs), failures)
			continue
		}
		if got, want := string(evs[0].Data), `{"v":`+tc.want+`}`; got != want {
			t.Errorf("%s: got %s, want %s", tc.expr, got, want)
		}
	}
	// cty's own errors stay: an unused argument, a missing one.
	for _, expr := range []string{`format("%.2f", new.amount, 2)`, `format("%.2f %f", new.amount)`} {
		r := compileEvent(t, `event "x" {
  table = "deals"
  on    = ["insert"]
  data  = { v = `+expr+` }
}`, false)
		c := &cdc.Change{Schema: "public", Table: "deals", Op: cdc.OpInsert, New: map[string]any{"amount": json.Number("12.25")}, Columns: []string{"amount"}, CommitTime: commitTime}
		if _, failures := r.Evaluate(c, nil); len(failures) != 1 || !strings.Contains(failures[0].Error, "argument") {
			t.Errorf("%s: failures %v, want cty's argument error", expr, failures)
		}
	}
}
