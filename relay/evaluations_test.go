package relay_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/event"
	"github.com/walhook/walhook/internal/receiver"
	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/store"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

// TestReplayAfterTheRuleIsFixed: a rule fails on a column value (an
// insert and an update); a replay with the same broken rule fails again
// and says so; after walhook restarts with the rule fixed, a replay
// delivers both events to a real receiver under the ids the original
// evaluation would have given them, and they are marked replayed.
func TestReplayAfterTheRuleIsFixed(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	secret := signing.GenerateSecret()
	rec := receiver.New(receiver.Options{Secrets: []string{secret}})
	srv := serve(t, rec)
	slot := testenv.Name(t, "slot")
	config := func(when string) string {
		return fmt.Sprintf(`
source "postgres" {
  url         = %q
  slot        = %q
  publication = %q
}
event "contact.numbered" {
  table = "contacts"
  on    = ["insert", "update"]
  when  = %s
}
%s
delivery {
  shutdown_timeout = "10s"
}`, db.URL, slot, slot, when, endpoint("app", srv.URL, secret, ""))
	}
	broken := runConfig(t, db, config(`tonumber(new.first_name) > 0`))
	broken.waitStreaming(t)
	st := broken.stateStore(t)

	db.Exec(t, `INSERT INTO contacts (organization_id, first_name) VALUES (1, '42'), (1, 'Ada')`)
	db.Exec(t, `UPDATE contacts SET first_name = 'Bob' WHERE first_name = 'Ada'`)
	end := currentLSN(t, db)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := rec.WaitFor(ctx, 1); err != nil {
		t.Fatal(err)
	}
	var fs []store.FailedEvaluation
	testkit.EventuallyWithin(t, 20*time.Second, "two failed evaluations", func() bool {
		var err error
		fs, _, err = st.ListEvaluations(ctx, store.EvaluationFilter{Rule: "contact.numbered"})
		return err == nil && len(fs) == 2
	})
	update, insert := fs[0], fs[1]
	if insert.Op != "insert" || update.Op != "update" || !update.Replayable || !insert.Replayable ||
		!strings.Contains(string(update.Old), `"id"`) || !strings.Contains(string(update.Row), `"Bob"`) {
		t.Fatalf("failed evaluations: %+v", fs)
	}

	// Replayed with the rule still broken: failed again, with its error.
	if q, err := st.RequestReplays(ctx, []int64{insert.ID}); err != nil || len(q) != 1 {
		t.Fatalf("RequestReplays: %v, %v", q, err)
	}
	broken.relay.WakeReplays()
	testkit.EventuallyWithin(t, 20*time.Second, "the replay to fail again", func() bool {
		f, err := st.GetEvaluation(ctx, insert.ID)
		return err == nil && f.Status == store.EvaluationFailed && f.Replays == 1 && strings.Contains(f.Error, "number")
	})
	testkit.EventuallyWithin(t, 20*time.Second, "the slot to pass the transactions", func() bool { return confirmedPast(t, db, slot, end) })
	if err := broken.stop(); err != nil {
		t.Fatal(err)
	}

	fixed := runConfig(t, db, config(`try(tonumber(new.first_name) > 0, true)`))
	fixed.waitStreaming(t)
	if n, err := fixed.stateStore(t).RequestReplaysWhere(ctx, store.EvaluationFilter{Rule: "contact.numbered"}); err != nil || n != 2 {
		t.Fatalf("RequestReplaysWhere: %d, %v", n, err)
	}
	fixed.relay.WakeReplays()
	if err := rec.WaitFor(ctx, 3); err != nil {
		t.Fatalf("received %d: %v", len(rec.Received()), err)
	}
	want := map[string]string{
		event.NewID(cdc.LSN(insert.CommitLSN), insert.Position, "contact.numbered"): `"Ada"`,
		event.NewID(cdc.LSN(update.CommitLSN), update.Position, "contact.numbered"): `"Bob"`,
	}
	for _, r := range rec.Received()[1:] {
		if !r.Verified || !strings.Contains(string(r.Body), want[r.ID]) || want[r.ID] == "" {
			t.Errorf("replayed delivery %s (verified %t): %s; want one of %v", r.ID, r.Verified, r.Body, want)
		}
		delete(want, r.ID)
	}
	testkit.EventuallyWithin(t, 20*time.Second, "both marked replayed", func() bool {
		fs, _, err := fixed.stateStore(t).ListEvaluations(ctx, store.EvaluationFilter{Status: store.EvaluationReplayed})
		return err == nil && len(fs) == 2 && *fs[0].ReplayEvents == 1 && fs[1].Replays == 2
	})
}

// TestReplayAfterTheBodyIsFixed: an endpoint body that cannot be rendered
// for one event is a failed evaluation; the other endpoint gets the event.
// After a restart with the body fixed, the replay sends that event to the
// fixed endpoint only, under its id.
func TestReplayAfterTheBodyIsFixed(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	secret := signing.GenerateSecret()
	shaped := receiver.New(receiver.Options{Secrets: []string{secret}})
	plain := receiver.New(receiver.Options{Secrets: []string{secret}})
	shapedSrv, plainSrv := serve(t, shaped), serve(t, plain)
	slot := testenv.Name(t, "slot")
	config := func(body string) string {
		return fmt.Sprintf(`
source "postgres" {
  url         = %q
  slot        = %q
  publication = %q
}
event "contact.created" {
  table = "contacts"
  on    = ["insert"]
}
%s
%s
delivery {
  shutdown_timeout = "10s"
}`, db.URL, slot, slot, endpoint("shaped", shapedSrv.URL, secret, "body = "+body), endpoint("plain", plainSrv.URL, secret, ""))
	}
	broken := runConfig(t, db, config(`{ name = upper(event.data.last_name) }`))
	broken.waitStreaming(t)
	db.Exec(t, `INSERT INTO contacts (organization_id, first_name) VALUES (1, 'Ada')`)
	end := currentLSN(t, db)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := plain.WaitFor(ctx, 1); err != nil {
		t.Fatal(err)
	}
	var fs []store.FailedEvaluation
	testkit.EventuallyWithin(t, 20*time.Second, "the body failure", func() bool {
		var err error
		fs, _, err = broken.stateStore(t).ListEvaluations(ctx, store.EvaluationFilter{Rule: "endpoint shaped body"})
		return err == nil && len(fs) == 1
	})
	want := plain.Received()[0].ID
	if f := fs[0]; f.EventID != want || f.Endpoint != "cfg:shaped" || !f.Replayable {
		t.Fatalf("body failure %+v, want event %s", f, want)
	}
	testkit.EventuallyWithin(t, 20*time.Second, "the slot to pass the transaction", func() bool { return confirmedPast(t, db, slot, end) })
	if err := broken.stop(); err != nil {
		t.Fatal(err)
	}

	fixed := runConfig(t, db, config(`{ name = upper(coalesce(event.data.last_name, event.data.first_name)) }`))
	fixed.waitStreaming(t)
	if q, err := fixed.stateStore(t).RequestReplays(ctx, []int64{fs[0].ID}); err != nil || len(q) != 1 {
		t.Fatalf("RequestReplays: %v, %v", q, err)
	}
	fixed.relay.WakeReplays()
	if err := shaped.WaitFor(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got := shaped.Received()[0]; got.ID != want || !got.Verified || string(got.Body) != `{"name":"ADA"}` {
		t.Fatalf("replayed %s (verified %t): %s", got.ID, got.Verified, got.Body)
	}
	testkit.EventuallyWithin(t, 20*time.Second, "the failure marked replayed", func() bool {
		f, err := fixed.stateStore(t).GetEvaluation(ctx, fs[0].ID)
		return err == nil && f.Status == store.EvaluationReplayed
	})
	if n := len(plain.Received()); n != 1 {
		t.Fatalf("the endpoint that had the event got %d deliveries", n)
	}
}
