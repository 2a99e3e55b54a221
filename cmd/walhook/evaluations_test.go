package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/store"
	"github.com/walhook/walhook/testenv"
)

// TestEvaluationsCommands: walhook evaluations list shows the failed
// evaluations of the state database (filtered, as a table or JSON), and
// walhook evaluations replay queues them by id or by rule for the running
// walhook, saying which ids it could not queue.
func TestEvaluationsCommands(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := store.Open(ctx, db.Pool, "walhook")
	if err != nil {
		t.Fatal(err)
	}
	var fs []store.FailedEvaluation
	for i := range 2 {
		fs = append(fs, store.FailedEvaluation{Rule: "deal.big", Table: "public.deals", Op: "update", CommitLSN: 0x16B3748,
			Position: i, Error: "evaluating when: the result is null", Row: []byte(`{"id": 1}`), Replay: []byte(`{"v": 1}`)})
	}
	fs = append(fs, store.FailedEvaluation{Rule: "contact.new", Table: "public.contacts", Op: "insert", CommitLSN: 0x16B3748, Position: 5, Error: "x"})
	if err := st.RecordFailures(ctx, fs); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, db, testenv.Name(t, "slot"), "http://127.0.0.1:9/hook", signing.GenerateSecret(), "")

	code, out, errOut := walhook(ctx, "evaluations", "list", "-c", cfg, "--rule", "deal.big")
	if code != 0 || strings.Count(out, "deal.big") != 2 || !strings.Contains(out, "0/16B3748") || strings.Contains(out, "contact.new") {
		t.Fatalf("list: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = walhook(ctx, "evaluations", "list", "-c", cfg, "--table", "public.contacts", "--json")
	var line struct {
		ID         int64
		Rule       string
		Replayable bool
	}
	if code != 0 || json.Unmarshal([]byte(out), &line) != nil || line.Rule != "contact.new" || line.Replayable {
		t.Fatalf("list --json: exit %d\n%s%s", code, out, errOut)
	}

	code, out, errOut = walhook(ctx, "evaluations", "replay", "-c", cfg, "--rule", "deal.big")
	if code != 0 || !strings.Contains(out, "2 failed evaluations queued for replay") {
		t.Fatalf("replay --rule: exit %d\n%s%s", code, out, errOut)
	}
	// The one kept without its change is refused, and said so.
	code, out, errOut = walhook(ctx, "evaluations", "replay", "-c", cfg, fmt.Sprint(line.ID))
	if code != 1 || !strings.Contains(errOut, fmt.Sprintf("failed evaluation %d not queued", line.ID)) {
		t.Fatalf("replay %d: exit %d\n%s%s", line.ID, code, out, errOut)
	}
	code, out, errOut = walhook(ctx, "evaluations", "list", "-c", cfg, "--status", "replay_requested")
	if code != 0 || strings.Count(out, "replay_requested") != 2 {
		t.Fatalf("list --status: exit %d\n%s%s", code, out, errOut)
	}
	for _, c := range []struct{ args, want []string }{
		{[]string{"evaluations", "replay", "-c", cfg}, []string{"give evaluation ids, or --all, --rule or --table"}},
		{[]string{"evaluations", "replay", "-c", cfg, "7", "--all"}, []string{"give evaluation ids, or --all"}},
		{[]string{"evaluations", "replay", "-c", cfg, "x7"}, []string{`"x7" is not an evaluation id`}},
		{[]string{"evaluations", "list", "-c", cfg, "--status", "lost"}, []string{"--status must be"}},
	} {
		code, out, errOut := walhook(ctx, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want[0]) {
			t.Errorf("walhook %s: exit %d\n%s%s", strings.Join(c.args, " "), code, out, errOut)
		}
	}
}
