package store

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestPersistIdempotent(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	a, b, c := delivery(1, "cfg:a", "k"), delivery(2, "cfg:a", "k"), delivery(3, "cfg:b", "")
	b.Status, b.Attempts, b.LastStatus, b.LastError = StatusPending, 1, 503, "503 Service Unavailable"
	b.NextAttemptAt = time.Now().Add(5 * time.Second).Truncate(time.Microsecond)
	c.Status, c.LastError = StatusFailed, "endpoint disabled"
	c.ID = "" // filled with DeliveryID
	mustPersist(t, s, a, b, c)

	ga, gb := mustGet(t, s, a.ID), mustGet(t, s, b.ID)
	gc := mustGet(t, s, DeliveryID(c.EventID, c.EndpointID))
	if ga.Status != StatusPending || ga.Attempts != 0 || time.Since(ga.NextAttemptAt) > time.Minute || time.Until(ga.NextAttemptAt) > 0 {
		t.Fatalf("never-tried row: %+v", ga)
	}
	if gb.Attempts != 1 || gb.LastStatus != 503 || gb.LastError != b.LastError || !gb.NextAttemptAt.Equal(b.NextAttemptAt) {
		t.Fatalf("failed-once row: %+v", gb)
	}
	if gc.Status != StatusFailed || gc.LastError != "endpoint disabled" {
		t.Fatalf("failed row: %+v", gc)
	}
	if !(ga.Seq < gb.Seq && gb.Seq < gc.Seq) {
		t.Fatalf("seq does not follow slice order: %d %d %d", ga.Seq, gb.Seq, gc.Seq)
	}
	if string(gb.Body) != string(b.Body) || gb.CommitLSN != b.CommitLSN || gb.Key != "k" || gb.Tenant != "acme" ||
		!gb.EventTime.Equal(b.EventTime) || gb.EventType != b.EventType {
		t.Fatalf("row %+v does not keep %+v", gb, b)
	}

	// A replay after a crash (here with other values) changes nothing.
	a2 := a
	a2.Status, a2.Attempts, a2.Body = StatusFailed, 7, []byte(`{}`)
	mustPersist(t, s, a2, b, c, b)
	if got := mustGet(t, s, a.ID); got.Status != StatusPending || got.Attempts != 0 || got.Seq != ga.Seq || string(got.Body) != string(a.Body) {
		t.Fatalf("replayed Persist changed the row: %+v", got)
	}
	ds, _, err := s.ListDeliveries(ctx(t), DeliveryFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3 {
		t.Fatalf("%d rows after replay, want 3", len(ds))
	}
	if err := s.Persist(ctx(t), nil); err != nil {
		t.Fatalf("Persist(nil): %v", err)
	}
}

func TestCompleteTransitionsAndHealth(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	d := delivery(1, "cfg:a", "")
	mustPersist(t, s, d)
	if h, err := s.Health(ctx(t), "cfg:a"); err != nil || h != (Health{EndpointID: "cfg:a"}) {
		t.Fatalf("Health of a new endpoint = %+v, %v", h, err)
	}

	t0 := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	next := time.Now().Add(5 * time.Second).Truncate(time.Microsecond)
	sent := map[string]string{"Webhook-Id": d.EventID, "Webhook-Signature": "v1,abc=", "X-Api-Key": "(set in the config file)"}
	h, err := s.Complete(ctx(t), d, Attempt{Number: 1, AttemptedAt: t0, Duration: 1500 * time.Millisecond,
		StatusCode: 500, Error: "500 Internal Server Error", Response: "boom", RequestHeaders: sent}, Outcome{Status: StatusPending, NextAttemptAt: next})
	if err != nil {
		t.Fatal(err)
	}
	if h.ConsecutiveFailures != 1 || h.FailingSince == nil || !h.FailingSince.Equal(t0) || h.LastFailureAt == nil || h.LastSuccessAt != nil {
		t.Fatalf("health after a failure: %+v", h)
	}
	got := mustGet(t, s, d.ID)
	if got.Status != StatusPending || got.Attempts != 1 || got.LastStatus != 500 || got.LastError != "500 Internal Server Error" || !got.NextAttemptAt.Equal(next) {
		t.Fatalf("delivery after a failure: %+v", got)
	}

	t1 := t0.Add(10 * time.Second)
	h, err = s.Complete(ctx(t), got, Attempt{AttemptedAt: t1, Error: "connection refused"}, Outcome{Status: StatusPending})
	if err != nil {
		t.Fatal(err)
	}
	if h.ConsecutiveFailures != 2 || !h.FailingSince.Equal(t0) || !h.LastFailureAt.Equal(t1) {
		t.Fatalf("health after a second failure: %+v", h)
	}

	t2 := t1.Add(10 * time.Second)
	h, err = s.Complete(ctx(t), got, Attempt{AttemptedAt: t2, StatusCode: 204, Duration: 3 * time.Millisecond}, Outcome{Status: StatusDelivered})
	if err != nil {
		t.Fatal(err)
	}
	if h.ConsecutiveFailures != 0 || h.FailingSince != nil || h.LastSuccessAt == nil || !h.LastSuccessAt.Equal(t2) || !h.LastFailureAt.Equal(t1) {
		t.Fatalf("health after a success: %+v", h)
	}
	got = mustGet(t, s, d.ID)
	if got.Status != StatusDelivered || got.Attempts != 3 || got.LastStatus != 204 || got.LastError != "" {
		t.Fatalf("delivery after a success: %+v", got)
	}

	// A stale worker's late failure never moves a delivered row back; its attempt is still logged.
	if _, err := s.Complete(ctx(t), got, Attempt{AttemptedAt: t2.Add(time.Second), Error: "timeout"},
		Outcome{Status: StatusPending, NextAttemptAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if g := mustGet(t, s, d.ID); g.Status != StatusDelivered || g.Attempts != 3 {
		t.Fatalf("late failure changed a delivered row: %+v", g)
	}

	as, err := s.ListAttempts(ctx(t), []string{d.ID, "dlv_missing"})
	if err != nil {
		t.Fatal(err)
	}
	log := as[d.ID]
	if len(log) != 4 || len(as) != 1 {
		t.Fatalf("attempts = %+v", as)
	}
	if log[0].Error != "timeout" || log[1].StatusCode != 204 || log[3].StatusCode != 500 {
		t.Fatalf("attempts not newest first: %+v", log)
	}
	first := log[3]
	if first.Number != 1 || log[2].Number != 2 || log[1].Number != 3 || !first.AttemptedAt.Equal(t0) ||
		first.Duration != 1500*time.Millisecond || first.Response != "boom" || first.EventID != d.EventID ||
		first.EventType != d.EventType || first.EndpointID != "cfg:a" || first.ID == 0 {
		t.Fatalf("attempt rows: %+v", log)
	}
	// Request headers are kept as sent; an attempt that recorded none reads nil.
	if !reflect.DeepEqual(first.RequestHeaders, sent) || log[1].RequestHeaders != nil || log[2].RequestHeaders != nil {
		t.Fatalf("request headers: first %v, second %v, third %v", first.RequestHeaders, log[2].RequestHeaders, log[1].RequestHeaders)
	}
	// Through the batch path (first attempts logged by the persister) too.
	logged := map[string]string{"Webhook-Attempt": "1", "Content-Type": "application/json"}
	other := delivery(2, "cfg:a", "")
	if _, err := s.WriteBatch(ctx(t), Batch{Deliveries: []Delivery{other}, Attempts: []Attempt{{DeliveryID: other.ID, EventID: other.EventID,
		EventType: other.EventType, EndpointID: "cfg:a", Number: 1, AttemptedAt: t0, StatusCode: 503, Error: "503", RequestHeaders: logged}}}); err != nil {
		t.Fatal(err)
	}
	if as, err := s.ListAttempts(ctx(t), []string{other.ID}); err != nil || len(as[other.ID]) != 1 || !reflect.DeepEqual(as[other.ID][0].RequestHeaders, logged) {
		t.Fatalf("attempts logged by WriteBatch: %+v, %v", as, err)
	}

	// Exhausted: failed. Complete also stores a delivery it has not seen.
	e := delivery(2, "cfg:a", "")
	if _, err := s.Complete(ctx(t), e, Attempt{StatusCode: 410}, Outcome{Status: StatusFailed}); err != nil {
		t.Fatal(err)
	}
	if g := mustGet(t, s, e.ID); g.Status != StatusFailed || g.Attempts != 1 || g.LastStatus != 410 {
		t.Fatalf("failed delivery: %+v", g)
	}
	if _, err := s.Complete(ctx(t), e, Attempt{}, Outcome{}); err == nil {
		t.Fatal("Complete without an outcome status succeeded")
	}
}

func TestHealthDisableEnable(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	d := delivery(1, "cfg:a", "")
	for range 3 {
		if _, err := s.Complete(ctx(t), d, Attempt{StatusCode: 500}, Outcome{Status: StatusPending}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Disable(ctx(t), "cfg:a", "410 Gone"); err != nil {
		t.Fatal(err)
	}
	if err := s.Disable(ctx(t), "cfg:new", "failing for 5 days"); err != nil {
		t.Fatal(err)
	}
	h, err := s.Health(ctx(t), "cfg:a")
	if err != nil {
		t.Fatal(err)
	}
	if !h.Disabled || h.DisabledAt == nil || h.DisabledReason != "410 Gone" || h.ConsecutiveFailures != 3 {
		t.Fatalf("disabled health: %+v", h)
	}
	all, err := s.AllHealth(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].EndpointID != "cfg:a" || all[1].EndpointID != "cfg:new" || !all[1].Disabled {
		t.Fatalf("AllHealth = %+v", all)
	}
	if err := s.Enable(ctx(t), "cfg:a"); err != nil {
		t.Fatal(err)
	}
	h, err = s.Health(ctx(t), "cfg:a")
	if err != nil {
		t.Fatal(err)
	}
	if h.Disabled || h.DisabledAt != nil || h.DisabledReason != "" || h.ConsecutiveFailures != 0 || h.FailingSince != nil || h.LastFailureAt == nil {
		t.Fatalf("enabled health: %+v", h)
	}
	if err := s.Enable(ctx(t), "cfg:unknown"); err != nil {
		t.Fatalf("Enable of an unknown endpoint: %v", err)
	}
}

func TestLogAttempts(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	var ds []Delivery
	var as []Attempt
	for i := range 3 {
		d := delivery(i, "cfg:a", "")
		d.Status, d.LastStatus = "", 200
		ds = append(ds, d)
		as = append(as, Attempt{DeliveryID: d.ID, EventID: d.EventID, EventType: d.EventType, EndpointID: d.EndpointID,
			AttemptedAt: time.Now(), Duration: 2 * time.Millisecond, StatusCode: 200, Response: "ok"})
	}
	if err := s.LogAttempts(ctx(t), ds, as); err != nil {
		t.Fatal(err)
	}
	// A replay (the same batch written again) keeps one delivery row and
	// one attempt each: attempts are logged once (migration 003).
	if err := s.LogAttempts(ctx(t), ds, as); err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		g := mustGet(t, s, d.ID)
		if g.Status != StatusDelivered || g.Attempts != 1 || g.LastStatus != 200 {
			t.Fatalf("logged delivery: %+v", g)
		}
	}
	log, err := s.ListAttempts(ctx(t), []string{ds[0].ID, ds[1].ID, ds[2].ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if a := log[d.ID]; len(a) != 1 || a[0].Number != 1 || a[0].StatusCode != 200 || a[0].Response != "ok" || a[0].Duration != 2*time.Millisecond {
			t.Fatalf("attempts of %s: %+v", d.ID, a)
		}
	}
	if got := claimIDs(t, s, 10, time.Hour); len(got) != 0 {
		t.Fatalf("logged deliveries are claimable: %v", got)
	}
	if err := s.LogAttempts(ctx(t), nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestRetryRecoverFailPending(t *testing.T) {
	t.Parallel()
	s, db := setup(t)
	var ds []Delivery
	for i := range 6 {
		ds = append(ds, delivery(i, "cfg:a", ""))
	}
	ds = append(ds, delivery(99, "cfg:b", ""))
	mustPersist(t, s, ds...)
	n, err := s.FailPending(ctx(t), "cfg:a", "endpoint disabled")
	if err != nil || n != 6 {
		t.Fatalf("FailPending = %d, %v; want 6", n, err)
	}
	if g := mustGet(t, s, ds[0].ID); g.Status != StatusFailed || g.LastError != "endpoint disabled" {
		t.Fatalf("after FailPending: %+v", g)
	}
	if g := mustGet(t, s, ds[6].ID); g.Status != StatusPending {
		t.Fatalf("other endpoint's delivery touched: %+v", g)
	}
	// Half of them were created long ago.
	old := time.Now().Add(-48 * time.Hour)
	db.Exec(t, `UPDATE `+s.quoted+`.deliveries SET created_at = $1 WHERE id = ANY($2)`, old, []string{ds[0].ID, ds[1].ID, ds[2].ID})
	n, err = s.Recover(ctx(t), "cfg:a", time.Now().Add(-24*time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("Recover = %d, %v; want 3", n, err)
	}
	if g := mustGet(t, s, ds[4].ID); g.Status != StatusPending || g.Attempts != 0 || time.Until(g.NextAttemptAt) > 0 {
		t.Fatalf("recovered: %+v", g)
	}
	if g := mustGet(t, s, ds[0].ID); g.Status != StatusFailed {
		t.Fatalf("recovered a delivery older than since: %+v", g)
	}
	// Retry works on any status and keeps the attempt count: the next
	// attempt continues the numbering.
	before := mustGet(t, s, ds[0].ID)
	r, err := s.Retry(ctx(t), ds[0].ID)
	if err != nil || r.Status != StatusPending || r.Attempts != before.Attempts || r.ID != ds[0].ID || time.Until(r.NextAttemptAt) > 0 {
		t.Fatalf("Retry = %+v, %v", r, err)
	}
	if _, err := s.Retry(ctx(t), "dlv_missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Retry of a missing delivery: %v", err)
	}
	if _, err := s.GetDelivery(ctx(t), "dlv_missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetDelivery of a missing delivery: %v", err)
	}
	if got := claimIDs(t, s, 100, time.Hour); len(got) != 5 {
		t.Fatalf("claimed %d after recover and retry, want 5 (3 recovered, 1 retried, 1 of cfg:b)", len(got))
	}
}

// TestWriteBatchIsAllOrNothingAndRepeatable: a batch's deliveries,
// attempts and failed evaluations commit together, and writing the same
// batch again changes nothing.
func TestWriteBatchIsAllOrNothingAndRepeatable(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	now := time.Now()
	d := Delivery{ID: "dlv_wb1", EventID: "evt_wb1", EventType: "x", EndpointID: "cfg:a", Body: []byte(`{}`),
		EventTime: now, CommitLSN: 10, Status: StatusPending, Attempts: 1, NextAttemptAt: now}
	a := Attempt{DeliveryID: d.ID, EventID: d.EventID, EventType: d.EventType, EndpointID: d.EndpointID, Number: 1,
		AttemptedAt: now, StatusCode: 500, Error: "HTTP 500"}
	f := FailedEvaluation{Rule: "r", Table: "public.t", Op: "insert", CommitLSN: 10, Position: 1, Error: "boom"}
	b := Batch{Deliveries: []Delivery{d}, Attempts: []Attempt{a}, Failures: []FailedEvaluation{f}}
	for range 2 {
		if _, err := s.WriteBatch(ctx(t), b); err != nil {
			t.Fatal(err)
		}
	}
	log, err := s.ListAttempts(ctx(t), []string{d.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(log[d.ID]) != 1 {
		t.Fatalf("%d attempts logged after writing the batch twice, want 1", len(log[d.ID]))
	}
	fs, err := s.ListFailedEvaluations(ctx(t), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 {
		t.Fatalf("%d failed evaluations after writing the batch twice, want 1", len(fs))
	}
	// A batch that fails part-way leaves nothing: its delivery is
	// written first, then its failed evaluation is refused (a NUL byte).
	bad := Batch{
		Deliveries: []Delivery{{ID: "dlv_wb2", EventID: "evt_wb2", EventType: "x", EndpointID: "cfg:a",
			Body: []byte(`{}`), EventTime: now, CommitLSN: 11}},
		Failures: []FailedEvaluation{{Rule: "r", Table: "public.t", Op: "insert", CommitLSN: 11, Error: "nul \x00 byte"}},
	}
	if _, err := s.WriteBatch(ctx(t), bad); err == nil {
		t.Fatal("a batch with an invalid failed evaluation was written")
	}
	if _, err := s.GetDelivery(ctx(t), "dlv_wb2"); err == nil {
		t.Fatal("a batch that did not commit left its delivery behind")
	}
}

// TestCompleteTwiceCountsOnce: a Complete repeated because its commit's
// outcome was unknown leaves the delivery as one Complete would.
func TestCompleteTwiceCountsOnce(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	d := delivery(1, "cfg:a", "")
	mustPersist(t, s, d)
	a := Attempt{DeliveryID: d.ID, EventID: d.EventID, EventType: d.EventType, EndpointID: d.EndpointID,
		Number: 1, AttemptedAt: time.Now(), StatusCode: 500, Error: "HTTP 500"}
	out := Outcome{Status: StatusPending, NextAttemptAt: time.Now().Add(time.Minute)}
	for range 2 {
		if _, err := s.Complete(ctx(t), d, a, out); err != nil {
			t.Fatal(err)
		}
	}
	if g := mustGet(t, s, d.ID); g.Attempts != 1 {
		t.Fatalf("attempts = %d after completing one attempt twice, want 1", g.Attempts)
	}
	log, err := s.ListAttempts(ctx(t), []string{d.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(log[d.ID]) != 1 {
		t.Fatalf("%d attempts logged, want 1", len(log[d.ID]))
	}
}
