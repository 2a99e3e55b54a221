package relay_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/receiver"
	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/store"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

// TestFailedEvaluationIsRecordedNotDropped: a rule that fails on one row
// is recorded with the rule, table and position; the other events of the
// same transaction are delivered, and the slot moves past it.
func TestFailedEvaluationIsRecordedNotDropped(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	secret := signing.GenerateSecret()
	rec := receiver.New(receiver.Options{Secrets: []string{secret}})
	srv := serve(t, rec)
	run := start(t, db, endpoint("app", srv.URL, secret, ""), `
event "contact.numbered" {
  table = "contacts"
  on    = ["insert"]
  when  = tonumber(new.first_name) > 0
}`)
	db.Exec(t, `INSERT INTO contacts (organization_id, first_name) VALUES (1, '42'), (1, 'Ada')`)
	end := currentLSN(t, db)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// contact.created twice, contact.numbered once (for '42').
	if err := rec.WaitFor(ctx, 3); err != nil {
		t.Fatalf("got %d deliveries: %v", len(rec.Received()), err)
	}
	var fs []store.FailedEvaluation
	testkit.EventuallyWithin(t, 10*time.Second, "the failed evaluation to be recorded", func() bool {
		var err error
		fs, err = run.stateStore(t).ListFailedEvaluations(context.Background(), 10)
		return err == nil && len(fs) == 1
	})
	f := fs[0]
	if f.Rule != "contact.numbered" || f.Table != "public.contacts" || f.Op != "insert" || f.Position != 1 || !strings.Contains(f.Error, "number") {
		t.Errorf("failed evaluation = %+v", f)
	}
	if !strings.Contains(string(f.Row), `"Ada"`) {
		t.Errorf("failed evaluation row = %s, want the row it failed on", f.Row)
	}
	testkit.EventuallyWithin(t, 10*time.Second, "the slot to pass the transaction", func() bool { return confirmedPast(t, db, run.slot, end) })
}

// TestLogAttemptsAll: with log_attempts = "all", successful first attempts
// are written to the delivery log too (batched).
func TestLogAttemptsAll(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	secret := signing.GenerateSecret()
	rec := receiver.New(receiver.Options{Secrets: []string{secret}})
	srv := serve(t, rec)
	run := start(t, db, endpoint("app", srv.URL, secret, ""), `
delivery {
  log_attempts     = "all"
  shutdown_timeout = "10s"
}`)
	for i := 0; i < 20; i++ {
		db.Exec(t, `INSERT INTO contacts (organization_id, first_name) VALUES (1, $1)`, fmt.Sprint("c", i))
	}
	testkit.EventuallyWithin(t, 20*time.Second, "20 delivered deliveries in the log", func() bool {
		ds := deliveries(t, run.stateStore(t), "cfg:app")
		n := 0
		for _, d := range ds {
			if d.Status == store.StatusDelivered && d.Attempts == 1 && d.LastStatus == 204 {
				n++
			}
		}
		return n == 20
	})
	ds := deliveries(t, run.stateStore(t), "cfg:app")
	ids := []string{ds[0].ID}
	as, err := run.stateStore(t).ListAttempts(context.Background(), ids)
	if err != nil || len(as[ds[0].ID]) != 1 || as[ds[0].ID][0].StatusCode != 204 {
		t.Fatalf("attempts of %s = %+v, %v", ds[0].ID, as[ds[0].ID], err)
	}
}
