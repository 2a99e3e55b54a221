package store

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestClaimDueConcurrentExactlyOnce(t *testing.T) {
	t.Parallel()
	s1, db := setup(t)
	s2 := secondStore(t, db)
	const n = 2000
	ds := make([]Delivery, n)
	for i := range ds {
		// A mix of unkeyed rows and many small keys, over four endpoints.
		key := ""
		if i%3 == 0 {
			key = string(rune('a' + i%7))
		}
		ds[i] = delivery(i, []string{"cfg:a", "cfg:b", "cfg:c", "ep_d"}[i%4], key)
	}
	for i := 0; i < n; i += 500 {
		mustPersist(t, s1, ds[i:i+500]...)
	}

	// A lost wake-up (see claimRound) costs parkMax; keep it short here.
	s1.parkMax, s2.parkMax = time.Second, time.Second
	deadline := time.Now().Add(time.Minute)
	start := time.Now()
	var mu sync.Mutex
	claimed := map[string]int{}
	order := map[string][]int64{} // seqs of each endpoint/key in claim order
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		s := []*Store{s1, s2}[w%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := s.ClaimDue(ctx(t), 37, time.Hour, nil)
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					// Done when nothing is pending any more; rows may be
					// parked behind heads that other workers are completing.
					st, err := s.Stats(ctx(t))
					if err != nil {
						errs <- err
						return
					}
					if st.Pending == 0 {
						return
					}
					if time.Now().After(deadline) {
						errs <- fmt.Errorf("%d deliveries still pending at the deadline", st.Pending)
						return
					}
					time.Sleep(5 * time.Millisecond) // polling interval
					continue
				}
				mu.Lock()
				for _, d := range got {
					claimed[d.ID]++
					if d.Key != "" {
						k := d.EndpointID + "/" + d.Key
						order[k] = append(order[k], d.Seq)
					}
				}
				mu.Unlock()
				// Deliver them so the next of each key becomes claimable.
				for _, d := range got {
					if _, err := s.Complete(ctx(t), d, Attempt{StatusCode: 200}, Outcome{Status: StatusDelivered}); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d deliveries claimed and completed by 8 workers in %v", n, time.Since(start))
	if len(claimed) != n {
		t.Fatalf("claimed %d distinct deliveries, want %d", len(claimed), n)
	}
	for id, c := range claimed {
		if c != 1 {
			t.Fatalf("delivery %s claimed %d times", id, c)
		}
	}
	for k, seqs := range order {
		if !slices.IsSorted(seqs) {
			t.Fatalf("key %s claimed out of commit order: %v", k, seqs)
		}
	}
	if len(order) != 28 {
		t.Fatalf("%d keys, want 28", len(order))
	}
	st, err := s1.Stats(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 0 {
		t.Fatalf("%d still pending", st.Pending)
	}
}

func TestClaimDueKeyOrder(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	now := time.Now()
	k1 := delivery(1, "cfg:a", "deal-1")
	k1.NextAttemptAt = now.Add(time.Hour) // the head is backing off
	k2 := delivery(2, "cfg:a", "deal-1")
	k2.NextAttemptAt = now.Add(-time.Hour) // due earlier, but behind k1
	k3 := delivery(3, "cfg:a", "deal-1")
	k3.NextAttemptAt = now.Add(-2 * time.Hour)
	other := delivery(4, "cfg:b", "deal-1") // same key, other endpoint: independent
	other.NextAttemptAt = now.Add(-time.Minute)
	free := delivery(5, "cfg:a", "") // unkeyed
	mustPersist(t, s, k1, k2, k3, other, free)

	got := claimIDs(t, s, 10, time.Hour)
	slices.Sort(got)
	want := []string{other.ID, free.ID}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("claimed %v, want %v (only the other endpoint's and the unkeyed row)", got, want)
	}
	if ok, err := s.HasPending(ctx(t), "cfg:a", "deal-1"); err != nil || !ok {
		t.Fatalf("HasPending = %v, %v; want true", ok, err)
	}
	// The rows held back were parked: until their head's next attempt, at most parkMax ahead.
	if g := mustGet(t, s, k3.ID); time.Until(g.NextAttemptAt) < s.parkMax/2 || time.Until(g.NextAttemptAt) > s.parkMax ||
		g.Status != StatusPending || g.Attempts != 0 {
		t.Fatalf("held-back row not parked for %v: %+v", s.parkMax, g)
	}

	// The head becomes due: it alone is claimed.
	if _, err := s.Retry(ctx(t), k1.ID); err != nil {
		t.Fatal(err)
	}
	if got := claimIDs(t, s, 10, time.Hour); !slices.Equal(got, []string{k1.ID}) {
		t.Fatalf("claimed %v, want the head %s", got, k1.ID)
	}
	// Leased head: still nothing for the key.
	if got := claimIDs(t, s, 10, time.Hour); len(got) != 0 {
		t.Fatalf("claimed %v while the head is leased", got)
	}
	// The head fails again and backs off: the key still waits.
	if _, err := s.Complete(ctx(t), mustGet(t, s, k1.ID), Attempt{StatusCode: 500, Error: "500"},
		Outcome{Status: StatusPending, NextAttemptAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if got := claimIDs(t, s, 10, time.Hour); len(got) != 0 {
		t.Fatalf("claimed %v while the head backs off", got)
	}
	// The head is delivered: k2 next, then k3 once k2 ends (failed counts as ended).
	if _, err := s.Retry(ctx(t), k1.ID); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		want    Delivery
		outcome Status
	}{{k1, StatusDelivered}, {k2, StatusFailed}, {k3, StatusDelivered}} {
		got, err := s.ClaimDue(ctx(t), 10, time.Hour, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ID != step.want.ID {
			t.Fatalf("claimed %v, want only %s", got, step.want.ID)
		}
		if _, err := s.Complete(ctx(t), got[0], Attempt{StatusCode: 200}, Outcome{Status: step.outcome}); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := s.HasPending(ctx(t), "cfg:a", "deal-1"); err != nil || ok {
		t.Fatalf("HasPending = %v, %v; want false", ok, err)
	}
}

func TestClaimDueLeaseExpiry(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	d := delivery(1, "cfg:a", "k")
	mustPersist(t, s, d)
	if got := claimIDs(t, s, 10, 300*time.Millisecond); len(got) != 1 {
		t.Fatalf("first claim got %v", got)
	}
	if got := claimIDs(t, s, 10, time.Hour); len(got) != 0 {
		t.Fatalf("claimed %v during the lease", got)
	}
	// The worker "died": the row comes back when its lease ends.
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := claimIDs(t, s, 10, time.Hour)
		if len(got) == 1 && got[0] == d.ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("row not claimable again after its lease ended")
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
	if got := mustGet(t, s, d.ID); got.Status != StatusPending || got.Attempts != 0 {
		t.Fatalf("after reclaim: %+v", got)
	}
}

func TestClaimDueEdgeCases(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	if got, err := s.ClaimDue(ctx(t), 0, time.Hour, nil); err != nil || got != nil {
		t.Fatalf("ClaimDue(0) = %v, %v", got, err)
	}
	future := delivery(1, "cfg:a", "")
	future.NextAttemptAt = time.Now().Add(time.Hour)
	failed := delivery(2, "cfg:a", "")
	failed.Status = StatusFailed
	mustPersist(t, s, future, failed)
	if got := claimIDs(t, s, 10, time.Hour); len(got) != 0 {
		t.Fatalf("claimed %v: neither is due", got)
	}
	// Oldest due first, limit respected.
	var ds []Delivery
	for i := range 5 {
		d := delivery(10+i, "cfg:b", "")
		d.NextAttemptAt = time.Now().Add(-time.Duration(i+1) * time.Minute)
		ds = append(ds, d)
	}
	mustPersist(t, s, ds...)
	got, err := s.ClaimDue(ctx(t), 2, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{got[0].ID, got[1].ID}
	slices.Sort(ids)
	want := []string{ds[3].ID, ds[4].ID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("claimed %v, want the two oldest due %v", ids, want)
	}
	// Full rows come back, with the lease as their next attempt.
	c, p := got[0], ds[3]
	if c.ID != p.ID {
		p = ds[4]
	}
	if string(c.Body) != string(p.Body) || c.CommitLSN != p.CommitLSN || !c.EventTime.Equal(p.EventTime) ||
		c.EventID != p.EventID || c.EventType != p.EventType || c.Tenant != p.Tenant || c.Status != StatusPending ||
		c.Seq == 0 || c.CreatedAt.IsZero() || time.Until(c.NextAttemptAt) < 50*time.Minute {
		t.Fatalf("claimed row %+v does not match persisted %+v", c, p)
	}
}
