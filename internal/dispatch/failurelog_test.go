package dispatch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/event"
)

func TestFailureLogLimitsLinesPerRuleAndSumsUpTheRest(t *testing.T) {
	var buf bytes.Buffer
	l := newFailureLog(zerolog.New(&buf).Level(zerolog.InfoLevel), 3)
	var fs []event.Failure
	for i := range 1000 {
		fs = append(fs, event.Failure{Rule: "deal.big", Position: i, Error: "boom"})
	}
	l.record(fs[:10])
	l.record(fs[10:])
	l.record([]event.Failure{{Rule: "other", Error: "x"}})
	l.flush()
	lines := func() []map[string]any {
		var out []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			out = append(out, m)
		}
		return out
	}
	got := lines()
	if len(got) != 5 {
		t.Fatalf("%d lines, want 3 for deal.big, 1 for other and 1 summary:\n%s", len(got), buf.String())
	}
	sum := got[4]
	if sum["rule"] != "deal.big" || sum["count"] != float64(997) || !strings.Contains(fmt.Sprint(sum["message"]), "997 more") {
		t.Fatalf("summary = %v", sum)
	}
	// A new period logs the first few again; a period without failures
	// writes nothing.
	buf.Reset()
	l.flush()
	l.record(fs[:1])
	l.flush()
	if got := lines(); len(got) != 1 || got[0]["rule"] != "deal.big" || got[0]["count"] != nil {
		t.Fatalf("next periods logged %v", got)
	}
}
