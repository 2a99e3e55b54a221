package store

import (
	"slices"
	"testing"
	"time"
)

// TestKeyOrderFollowsCommitOrderNotStoreOrder: a delivery stored before an
// earlier-committed delivery of its key (the dispatcher's overflow path can
// do that) still waits behind it.
func TestKeyOrderFollowsCommitOrderNotStoreOrder(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	later := delivery(2, "cfg:a", "k")
	earlier := delivery(1, "cfg:a", "k")
	sameTxLater := delivery(3, "cfg:a", "k")
	sameTxLater.CommitLSN, sameTxLater.Position = earlier.CommitLSN, 5
	earlier.Position = 4
	mustPersist(t, s, later, sameTxLater) // stored first
	mustPersist(t, s, earlier)
	for _, want := range []string{earlier.ID, sameTxLater.ID, later.ID} {
		got := claimIDs(t, s, 10, time.Hour)
		if len(got) != 1 || got[0] != want {
			t.Fatalf("claimed %v, want only %s (commit order)", got, want)
		}
		d := mustGet(t, s, want)
		if _, err := s.Complete(ctx(t), d, Attempt{StatusCode: 200}, Outcome{Status: StatusDelivered}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestClaimDueExcludesEndpoints(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	mustPersist(t, s, delivery(1, "cfg:busy", ""), delivery(2, "cfg:free", ""))
	ds, err := s.ClaimDue(ctx(t), 10, time.Hour, []string{"cfg:busy"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].EndpointID != "cfg:free" {
		t.Fatalf("claimed %v, want only cfg:free's delivery", ds)
	}
}

func TestRecordHealthPendingKeysPostpone(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	at := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	h, err := s.RecordHealth(ctx(t), "cfg:a", false, 3, at)
	if err != nil || h.ConsecutiveFailures != 3 || h.FailingSince == nil || !h.FailingSince.Equal(at) {
		t.Fatalf("after 3 failures: %+v, %v", h, err)
	}
	h, _ = s.RecordHealth(ctx(t), "cfg:a", false, 2, time.Now())
	if h.ConsecutiveFailures != 5 || !h.FailingSince.Equal(at) {
		t.Fatalf("failing since moved or count wrong: %+v", h)
	}
	h, _ = s.RecordHealth(ctx(t), "cfg:a", true, 0, time.Now())
	if h.ConsecutiveFailures != 0 || h.FailingSince != nil || h.LastSuccessAt == nil {
		t.Fatalf("success did not reset: %+v", h)
	}

	mustPersist(t, s, delivery(1, "cfg:a", "k1"), delivery(2, "cfg:a", "k2"), delivery(3, "cfg:b", "k3"))
	keys, err := s.PendingKeys(ctx(t), "cfg:a", nil)
	slices.Sort(keys)
	if err != nil || !slices.Equal(keys, []string{"k1", "k2"}) {
		t.Fatalf("pending keys = %v, %v", keys, err)
	}
	keys, _ = s.PendingKeys(ctx(t), "cfg:a", []string{"k2", "k9"})
	if !slices.Equal(keys, []string{"k2"}) {
		t.Fatalf("pending keys among k2,k9 = %v", keys)
	}

	d := delivery(1, "cfg:a", "k1")
	if err := s.Postpone(ctx(t), d.ID, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, d.ID); time.Until(got.NextAttemptAt) < 59*time.Minute || got.Attempts != 0 {
		t.Fatalf("postponed delivery: %+v", got)
	}
}

// TestFirstOfKey: a delivery is first of its key while no pending delivery
// of the same endpoint and key comes before it in commit order.
func TestFirstOfKey(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	early, late, other := delivery(1, "cfg:a", "k"), delivery(2, "cfg:a", "k"), delivery(3, "cfg:b", "k")
	early.CommitLSN, late.CommitLSN, other.CommitLSN = 100, 200, 50
	mustPersist(t, s, late, other)
	got := mustGet(t, s, late.ID)
	if first, err := s.FirstOfKey(ctx(t), got); err != nil || !first {
		t.Fatalf("alone of its key (another endpoint's earlier one aside): first = %v, %v", first, err)
	}
	mustPersist(t, s, early) // stored after it, earlier in commit order
	if first, err := s.FirstOfKey(ctx(t), got); err != nil || first {
		t.Fatalf("with an earlier pending delivery of its key: first = %v, %v", first, err)
	}
	if _, err := s.Complete(ctx(t), mustGet(t, s, early.ID), Attempt{StatusCode: 204}, Outcome{Status: StatusDelivered}); err != nil {
		t.Fatal(err)
	}
	if first, err := s.FirstOfKey(ctx(t), got); err != nil || !first {
		t.Fatalf("once the earlier one is delivered: first = %v, %v", first, err)
	}
}
