package store

import (
	"slices"
	"testing"
	"time"
)

// TestPublishLimitsPausesClaims: a pause one instance publishes keeps
// every instance's claims off the endpoint's deliveries until it ends
// (a shorter one does not shorten it), and every Health read carries it
// and the published limits, marked as the reader's own or a peer's; the
// endpoint's failure streak is left alone.
func TestPublishLimitsPausesClaims(t *testing.T) {
	t.Parallel()
	s1, db := setup(t)
	s2 := secondStore(t, db)
	s1.SetInstance("ins_a")
	s2.SetInstance("ins_b")
	mustPersist(t, s1, delivery(1, "cfg:a", ""), delivery(2, "cfg:a", ""), delivery(3, "cfg:b", ""), delivery(4, "cfg:c", ""))
	if _, err := s1.RecordHealth(ctx(t), "cfg:a", false, 2, time.Now()); err != nil {
		t.Fatal(err)
	}

	if err := s1.PublishLimits(ctx(t), "cfg:a", LimitsUpdate{Pause: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := s1.PublishLimits(ctx(t), "cfg:a", LimitsUpdate{Pause: time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := s1.PublishLimits(ctx(t), "cfg:c", LimitsUpdate{Pause: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	got := claimIDs(t, s2, 10, time.Hour)
	if want := []string{delivery(3, "cfg:b", "").ID}; !slices.Equal(got, want) {
		t.Fatalf("claimed %v during the pauses of cfg:a and cfg:c, want only cfg:b's %v", got, want)
	}
	h, err := s2.Health(ctx(t), "cfg:a")
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(h.Limits.PausedUntil); left < 59*time.Minute || left > time.Hour {
		t.Errorf("pause of cfg:a ends in %s, want about an hour (a shorter pause does not shorten it)", left)
	}
	if h.Limits.PausedBy != "ins_a" || h.ConsecutiveFailures != 2 || h.Limits.Published != nil {
		t.Errorf("health of cfg:a %+v: want paused by ins_a, 2 failures, no limits", h)
	}

	if err := s2.PublishLimits(ctx(t), "cfg:a", LimitsUpdate{Concurrency: 30, Rate: 120}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Store{s1, s2} {
		h, err := s.Health(ctx(t), "cfg:a")
		if err != nil {
			t.Fatal(err)
		}
		l := h.Limits
		if l.Concurrency != 30 || l.Rate != 120 || l.LimitedBy != "ins_b" || l.Published == nil ||
			time.Since(l.LimitedAt) > time.Minute || l.Own != (s == s2) || time.Until(l.PausedUntil) < 59*time.Minute {
			t.Errorf("health of cfg:a as read by %s: %+v", s.instanceID(), l)
		}
	}

	// The short pause ends, and cfg:c's delivery is claimed.
	want := delivery(4, "cfg:c", "").ID
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if got := claimIDs(t, s1, 10, time.Hour); slices.Equal(got, []string{want}) {
			break
		} else if len(got) > 0 || time.Now().After(deadline) {
			t.Fatalf("claimed %v after cfg:c's pause, want %s", got, want)
		}
	}
}
