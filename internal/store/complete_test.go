package store

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestCompleteAllMatchesOneByOne completes a mix of outcomes (two
// endpoints, successes and failures out of time order, a keyed delivery
// whose successor is parked, a delivery never stored, and one completion
// given twice) in one CompleteAll, and the same one by one in attempt
// order on a second store: deliveries, attempt logs, woken successors and
// endpoint health come out the same.
func TestCompleteAllMatchesOneByOne(t *testing.T) {
	t.Parallel()
	t0 := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	later := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	build := func() ([]Delivery, []Completion) {
		var ds []Delivery
		for i := 1; i <= 6; i++ {
			ds = append(ds, delivery(i, []string{"cfg:a", "cfg:b"}[i%2], ""))
		}
		head, next := delivery(7, "cfg:a", "k"), delivery(8, "cfg:a", "k")
		next.NextAttemptAt = later // parked behind its head
		ds = append(ds, head, next)
		fresh := delivery(9, "cfg:b", "") // not stored: inserted by its completion
		fail := func(n int) Outcome {
			return Outcome{Status: StatusPending, NextAttemptAt: t0.Add(time.Duration(n) * time.Hour)}
		}
		ok := Outcome{Status: StatusDelivered}
		at := func(d Delivery, sec, code int, errText string) Attempt {
			return Attempt{DeliveryID: d.ID, EventID: d.EventID, EventType: d.EventType, EndpointID: d.EndpointID,
				Number: 1, AttemptedAt: t0.Add(time.Duration(sec) * time.Second), StatusCode: code, Error: errText,
				Duration: time.Duration(sec) * time.Millisecond, Response: fmt.Sprintf("r%d", sec),
				RequestHeaders: map[string]string{"Webhook-Id": d.EventID}}
		}
		cs := []Completion{
			// cfg:a, in attempt order: success (0, the keyed head, below),
			// success (1), fail (3), fail (5): two failures since 3.
			{Delivery: ds[1], Attempt: at(ds[1], 3, 500, "HTTP 500"), Outcome: fail(1)},
			{Delivery: ds[3], Attempt: at(ds[3], 1, 200, ""), Outcome: ok},
			{Delivery: ds[5], Attempt: at(ds[5], 5, 503, "HTTP 503"), Outcome: fail(2)},
			// cfg:b: only failures, one of them a 410 (failed for good).
			{Delivery: ds[0], Attempt: at(ds[0], 2, 500, "HTTP 500"), Outcome: fail(3)},
			{Delivery: ds[2], Attempt: at(ds[2], 4, 410, "HTTP 410"), Outcome: Outcome{Status: StatusFailed}},
			{Delivery: fresh, Attempt: at(fresh, 6, 500, "HTTP 500"), Outcome: fail(4)},
			// The keyed head is delivered: its successor is woken.
			{Delivery: head, Attempt: at(head, 0, 204, ""), Outcome: ok},
		}
		cs = append(cs, cs[0]) // a repeat changes nothing
		return ds, cs
	}

	batch, _ := setup(t)
	single, _ := setup(t)
	ds, cs := build()
	mustPersist(t, batch, ds...)
	mustPersist(t, single, ds...)

	hs, err := batch.CompleteAll(ctx(t), cs)
	if err != nil {
		t.Fatal(err)
	}
	var last = map[string]Health{}
	// One by one without the repeat: the batch must count it once.
	order := append([]Completion(nil), cs[:len(cs)-1]...)
	sortByAttemptTime(order)
	for _, c := range order {
		h, err := single.Complete(ctx(t), c.Delivery, c.Attempt, c.Outcome)
		if err != nil {
			t.Fatal(err)
		}
		last[h.EndpointID] = h
	}
	if len(hs) != 2 {
		t.Fatalf("CompleteAll returned the health of %d endpoints, want 2: %+v", len(hs), hs)
	}
	for id, want := range last {
		if got := hs[id]; !sameHealth(got, want) {
			t.Errorf("health of %s: CompleteAll %s, one by one %s", id, healthString(got), healthString(want))
		}
	}
	if h := hs["cfg:a"]; h.ConsecutiveFailures != 2 || h.FailingSince == nil || !h.FailingSince.Equal(t0.Add(3*time.Second)) {
		t.Errorf("cfg:a after success, fail, fail: %s", healthString(h))
	}
	if h := hs["cfg:b"]; h.ConsecutiveFailures != 3 || h.LastSuccessAt != nil {
		t.Errorf("cfg:b after three failures: %s", healthString(h))
	}

	_, all := build()
	for _, c := range all {
		id := completionID(&c)
		g, w := mustGet(t, batch, id), mustGet(t, single, id)
		if g.Status != w.Status || g.Attempts != w.Attempts || g.LastStatus != w.LastStatus || g.LastError != w.LastError ||
			(g.Status == StatusPending && !g.NextAttemptAt.Equal(w.NextAttemptAt)) {
			t.Errorf("delivery %s: CompleteAll %+v, one by one %+v", id, brief(g), brief(w))
		}
		if g.Attempts != 1 {
			t.Errorf("delivery %s has %d attempts, want 1 (a repeated completion counts once)", id, g.Attempts)
		}
		la, err := batch.ListAttempts(ctx(t), []string{id})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(la[id]); n != 1 || la[id][0].Response != c.Attempt.Response || la[id][0].RequestHeaders["Webhook-Id"] != c.Delivery.EventID {
			t.Errorf("delivery %s: %d attempts logged (%+v), want 1 with its response and headers", id, n, la[id])
		}
	}
	next := mustGet(t, batch, ds[7].ID)
	if next.NextAttemptAt.After(time.Now()) {
		t.Errorf("the next delivery of key k is due at %s, want now: its head was delivered", next.NextAttemptAt)
	}
}

func sortByAttemptTime(cs []Completion) {
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && cs[j].Attempt.AttemptedAt.Before(cs[j-1].Attempt.AttemptedAt); j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}

func sameHealth(a, b Health) bool {
	eq := func(x, y *time.Time) bool { return (x == nil) == (y == nil) && (x == nil || x.Equal(*y)) }
	return a.EndpointID == b.EndpointID && a.ConsecutiveFailures == b.ConsecutiveFailures &&
		eq(a.FailingSince, b.FailingSince) && eq(a.LastSuccessAt, b.LastSuccessAt) && eq(a.LastFailureAt, b.LastFailureAt)
}

func healthString(h Health) string {
	f := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.Format("15:04:05.000000")
	}
	return fmt.Sprintf("{%s failures=%d since=%s ok=%s failed=%s}", h.EndpointID, h.ConsecutiveFailures,
		f(h.FailingSince), f(h.LastSuccessAt), f(h.LastFailureAt))
}

func brief(d Delivery) string {
	return fmt.Sprintf("{%s attempts=%d last=%d %q next=%s}", d.Status, d.Attempts, d.LastStatus, d.LastError, d.NextAttemptAt.Format(time.StampMicro))
}

// TestCompleteUnlogged: a successful first attempt completed unlogged
// leaves no attempts row; a stored keyless delivery is removed (as one sent
// from memory leaves none), a keyed one stays delivered, and a repeat
// changes nothing. A failed one is logged whatever the flag says.
func TestCompleteUnlogged(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ok, keyed, failed := delivery(1, "cfg:a", ""), delivery(3, "cfg:a", "k1"), delivery(2, "cfg:a", "")
	mustPersist(t, s, ok, keyed, failed)
	ok, keyed, failed = mustGet(t, s, ok.ID), mustGet(t, s, keyed.ID), mustGet(t, s, failed.ID)
	now := time.Now()
	success := func(d Delivery) Completion {
		return Completion{Delivery: d, Attempt: Attempt{Number: 1, StatusCode: 204, AttemptedAt: now}, Outcome: Outcome{Status: StatusDelivered}, Unlogged: true}
	}
	cs := []Completion{
		success(ok), success(keyed),
		{Delivery: failed, Attempt: Attempt{Number: 1, StatusCode: 500, Error: "HTTP 500", AttemptedAt: now},
			Outcome: Outcome{Status: StatusPending, NextAttemptAt: now.Add(time.Hour)}, Unlogged: true},
	}
	for range 2 { // the second time a repeat
		if _, err := s.CompleteAll(ctx(t), cs[:2]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CompleteAll(ctx(t), cs[2:]); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetDelivery(ctx(t), ok.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("unlogged success of a keyless delivery left %+v (%v), want it removed", got, err)
	}
	if got := mustGet(t, s, keyed.ID); got.Status != StatusDelivered || got.Attempts != 1 || got.LastStatus != 204 {
		t.Errorf("unlogged success of a keyed delivery left %+v, want delivered after 1 attempt", got)
	}
	if got := mustGet(t, s, failed.ID); got.Status != StatusPending || got.Attempts != 1 {
		t.Errorf("failed attempt left %+v, want pending after 1 attempt", got)
	}
	logged, err := s.ListAttempts(ctx(t), []string{ok.ID, keyed.ID, failed.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(logged[ok.ID]) != 0 || len(logged[keyed.ID]) != 0 || len(logged[failed.ID]) != 1 {
		t.Errorf("attempts logged: %d and %d of the successes, %d of the failure; want 0, 0 and 1",
			len(logged[ok.ID]), len(logged[keyed.ID]), len(logged[failed.ID]))
	}
	// The health of the endpoint counts the successes, then the failure.
	h, err := s.Health(ctx(t), "cfg:a")
	if err != nil {
		t.Fatal(err)
	}
	if h.ConsecutiveFailures != 1 || h.LastSuccessAt == nil {
		t.Errorf("health %+v, want 1 failure after a success", h)
	}
}

// TestWriteBatchClaims: deliveries written with Claim are stored leased to
// the writer (no claim takes them before the lease ends) and returned with
// their seq; written again, they are not returned (already stored).
func TestWriteBatchClaims(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	s.SetInstance("inst_writer")
	lease := time.Now().Add(time.Hour)
	mine, free := delivery(1, "cfg:a", ""), delivery(2, "cfg:a", "")
	mine.Claim, mine.NextAttemptAt = true, lease
	b := Batch{Deliveries: []Delivery{mine, free}}
	claimed, err := s.WriteBatch(ctx(t), b)
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 1 || claimed[0].ID != mine.ID || claimed[0].Seq == 0 {
		t.Fatalf("claimed %+v, want %s with its seq", claimed, mine.ID)
	}
	due, err := s.ClaimDue(ctx(t), 10, time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].ID != free.ID {
		t.Errorf("ClaimDue took %d deliveries (%+v), want only %s", len(due), due, free.ID)
	}
	again, err := s.WriteBatch(ctx(t), b)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 0 {
		t.Errorf("a repeated write returned %d claimed deliveries, want 0", len(again))
	}
	// A claim made with the write is the writer's: leaving hands it back.
	if err := s.LeaveInstance(ctx(t), "inst_writer"); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, mine.ID); got.NextAttemptAt.After(time.Now()) {
		t.Errorf("after the writer left, the delivery is due at %s, want now", got.NextAttemptAt)
	}
}
