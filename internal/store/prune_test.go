package store

import (
	"errors"
	"testing"
	"time"
)

func TestPruneKeepsPendingAndFailed(t *testing.T) {
	t.Parallel()
	s, db := setup(t)
	delivered, pending, failed := delivery(1, "cfg:a", ""), delivery(2, "cfg:a", ""), delivery(3, "cfg:a", "")
	delivered.Status, failed.Status = StatusDelivered, StatusFailed
	mustPersist(t, s, delivered, pending, failed)
	if err := s.LogAttempts(ctx(t), nil, []Attempt{
		{DeliveryID: delivered.ID, EventID: delivered.EventID, EndpointID: "cfg:a", Number: 1, StatusCode: 200},
		{DeliveryID: "dlv_test", EventID: "evt_test_x", EndpointID: "cfg:a", Number: 1, StatusCode: 200},
		{DeliveryID: pending.ID, EventID: pending.EventID, EndpointID: "cfg:a", Number: 1, StatusCode: 500},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordFailures(ctx(t), []FailedEvaluation{{Rule: "r", Table: "public.t", CommitLSN: 1, Position: 0, Error: "x"}}); err != nil {
		t.Fatal(err)
	}
	// Nothing is old enough yet.
	if n, err := s.Prune(ctx(t), time.Now().Add(-time.Hour), 100); err != nil || n != 0 {
		t.Fatalf("Prune of nothing old = %d, %v", n, err)
	}
	n, err := s.Prune(ctx(t), time.Now().Add(time.Minute), 100)
	if err != nil {
		t.Fatal(err)
	}
	// The delivered delivery, its attempt, the test attempt, the failed evaluation.
	if n != 4 {
		t.Fatalf("pruned %d rows, want 4", n)
	}
	if _, err := s.GetDelivery(ctx(t), delivered.ID); err == nil {
		t.Error("delivered delivery survived")
	}
	for _, id := range []string{pending.ID, failed.ID} {
		if _, err := s.GetDelivery(ctx(t), id); err != nil {
			t.Errorf("delivery %s pruned: %v", id, err)
		}
	}
	as, err := s.ListAttempts(ctx(t), []string{pending.ID})
	if err != nil || len(as[pending.ID]) != 1 {
		t.Errorf("the pending delivery's attempt was pruned: %v %v", as, err)
	}
	_ = db
}

func TestUpdateWebhookDetectsConcurrentChange(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	w, err := s.CreateWebhook(ctx(t), Webhook{URL: "https://example.com/a", Events: []string{"*"}, Active: true,
		Secrets: []Secret{{Value: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", CreatedAt: time.Now()}}})
	if err != nil {
		t.Fatal(err)
	}
	first, second := w, w
	first.Description, second.Description = "first", "second"
	if _, err := s.UpdateWebhook(ctx(t), first); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateWebhook(ctx(t), second); !errors.Is(err, ErrConflict) {
		t.Fatalf("second update from the same read: %v, want ErrConflict", err)
	}
	if got, _ := s.GetWebhook(ctx(t), w.ID); got.Description != "first" {
		t.Fatalf("description = %q, want the first update kept", got.Description)
	}
	gone := w
	gone.ID = "ep_missing"
	if _, err := s.UpdateWebhook(ctx(t), gone); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of a missing webhook: %v, want ErrNotFound", err)
	}
}
