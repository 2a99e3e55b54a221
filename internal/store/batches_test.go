package store

import (
	"slices"
	"testing"
	"time"
)

// TestClaimBatchMates: a claim of some deliveries of a stored batch
// brings the batch's other due deliveries with it, leased, in seq order;
// a mate leased by another claim stays with it, and a second write of the
// batch keeps the id.
func TestClaimBatchMates(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	past := time.Now().Add(-time.Minute)
	var ds []Delivery
	for i := range 5 {
		d := delivery(i, "cfg:a", "")
		d.BatchID, d.NextAttemptAt = "bat_one", past
		ds = append(ds, d)
	}
	loose := delivery(9, "cfg:a", "")
	loose.NextAttemptAt = past.Add(30 * time.Second) // due, after the batch
	mustPersist(t, s, append(ds, loose)...)
	again := slices.Clone(ds)
	again[0].BatchID = "bat_other"
	mustPersist(t, s, again...) // written again: rows and batch ids kept

	first, err := s.ClaimDue(ctx(t), 1, time.Hour, nil)
	if err != nil || len(first) != 1 {
		t.Fatalf("claim: %v %v", first, err)
	}
	// One more member is claimed by someone else first.
	other, err := s.ClaimDue(ctx(t), 1, time.Hour, nil)
	if err != nil || len(other) != 1 {
		t.Fatalf("second claim: %v %v", other, err)
	}
	batchOf, mates, err := s.ClaimBatchMates(ctx(t), []string{first[0].ID, loose.ID}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if first[0].ID == loose.ID {
		t.Fatalf("the loose delivery was claimed first; the claim order is by due time")
	}
	if batchOf[first[0].ID] != "bat_one" || len(batchOf) != 1 {
		t.Errorf("batch of the claimed = %v, want only %s in bat_one", batchOf, first[0].ID)
	}
	if len(mates) != 3 {
		t.Fatalf("%d mates claimed, want 3 (5 in the batch, one claimed by the caller, one by another claim)", len(mates))
	}
	for i, m := range mates {
		if m.BatchID != "bat_one" || m.ID == first[0].ID || m.ID == other[0].ID || m.ID == loose.ID || len(m.Body) == 0 {
			t.Errorf("mate %+v", m)
		}
		if i > 0 && mates[i-1].Seq > m.Seq {
			t.Errorf("mates not in seq order")
		}
	}
	if _, again, err := s.ClaimBatchMates(ctx(t), []string{first[0].ID}, time.Hour); err != nil || len(again) != 0 {
		t.Errorf("mates claimed again while leased: %d, %v", len(again), err)
	}
}
