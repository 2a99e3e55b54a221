package store

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestListDeliveries(t *testing.T) {
	t.Parallel()
	s, db := setup(t)
	var ds []Delivery
	for i := range 25 {
		d := delivery(i, []string{"cfg:a", "cfg:b"}[i%2], "")
		if i%5 == 0 {
			d.Status = StatusFailed
			d.EventType = "deal.lost"
		}
		ds = append(ds, d)
	}
	// Three batches: created_at ties within a batch are broken by id.
	mustPersist(t, s, ds[:10]...)
	mustPersist(t, s, ds[10:20]...)
	mustPersist(t, s, ds[20:]...)
	base := time.Now().Add(-time.Hour)
	for i, d := range ds {
		db.Exec(t, `UPDATE `+s.quoted+`.deliveries SET created_at = $1 WHERE id = $2`, base.Add(time.Duration(i/10)*time.Minute), d.ID)
	}

	page := func(f DeliveryFilter) []Delivery {
		t.Helper()
		var all []Delivery
		seen := map[string]bool{}
		for n := 0; ; n++ {
			got, next, err := s.ListDeliveries(ctx(t), f)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range got {
				if seen[d.ID] {
					t.Fatalf("delivery %s on two pages", d.ID)
				}
				seen[d.ID] = true
			}
			all = append(all, got...)
			if next == "" {
				return all
			}
			if n > 100 {
				t.Fatal("pagination does not end")
			}
			f.Cursor = next
		}
	}
	all := page(DeliveryFilter{Limit: 7})
	if len(all) != 25 {
		t.Fatalf("listed %d, want 25", len(all))
	}
	for i := 1; i < len(all); i++ {
		a, b := all[i-1], all[i]
		if a.CreatedAt.Before(b.CreatedAt) || (a.CreatedAt.Equal(b.CreatedAt) && a.ID < b.ID) {
			t.Fatalf("not newest first at %d: %v %s then %v %s", i, a.CreatedAt, a.ID, b.CreatedAt, b.ID)
		}
	}
	for _, c := range []struct {
		f    DeliveryFilter
		want int
	}{
		{DeliveryFilter{EndpointID: "cfg:a", Limit: 4}, 13},
		{DeliveryFilter{EndpointID: "cfg:b", Status: "failed"}, 2},
		{DeliveryFilter{Status: "failed", Limit: 1}, 5},
		{DeliveryFilter{EventType: "deal.lost", EndpointID: "cfg:a", Limit: 2}, 3},
		{DeliveryFilter{Since: base.Add(90 * time.Second), Limit: 3}, 5},
		{DeliveryFilter{EndpointID: "cfg:none"}, 0},
	} {
		got := page(c.f)
		if len(got) != c.want {
			t.Errorf("%+v: listed %d, want %d", c.f, len(got), c.want)
		}
		for _, d := range got {
			if (c.f.EndpointID != "" && d.EndpointID != c.f.EndpointID) || (c.f.Status != "" && string(d.Status) != c.f.Status) ||
				(c.f.EventType != "" && d.EventType != c.f.EventType) || d.CreatedAt.Before(c.f.Since) {
				t.Errorf("%+v: listed %+v", c.f, d)
			}
		}
	}
	if _, _, err := s.ListDeliveries(ctx(t), DeliveryFilter{Cursor: "not a cursor!"}); !errors.Is(err, ErrBadCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
	if got, _, err := s.ListDeliveries(ctx(t), DeliveryFilter{}); err != nil || len(got) != 25 {
		t.Fatalf("default limit listed %d, %v", len(got), err)
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	st, err := s.Stats(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 0 || st.Due != 0 || st.Failed != 0 || st.OldestDue != nil || len(st.ByEndpoint) != 0 {
		t.Fatalf("empty stats: %+v", st)
	}
	oldest := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	var ds []Delivery
	for i := range 10 {
		d := delivery(i, fmt.Sprintf("cfg:%d", i%2), "")
		switch {
		case i == 0:
			d.NextAttemptAt = oldest
		case i < 4:
			d.NextAttemptAt = time.Now().Add(-time.Minute)
		case i < 7:
			d.NextAttemptAt = time.Now().Add(time.Hour)
		case i < 9:
			d.Status = StatusFailed
		default:
			d.Status = StatusDelivered
		}
		ds = append(ds, d)
	}
	mustPersist(t, s, ds...)
	st, err = s.Stats(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 7 || st.Due != 4 || st.Failed != 2 || st.OldestDue == nil || !st.OldestDue.Equal(oldest) {
		t.Fatalf("stats: %+v", st)
	}
	want := map[string]EndpointQueue{"cfg:0": {Pending: 4, Due: 2, Failed: 1}, "cfg:1": {Pending: 3, Due: 2, Failed: 1}}
	if len(st.ByEndpoint) != 2 || st.ByEndpoint["cfg:0"] != want["cfg:0"] || st.ByEndpoint["cfg:1"] != want["cfg:1"] {
		t.Fatalf("by endpoint: %+v, want %+v", st.ByEndpoint, want)
	}
}

func TestFailedEvaluations(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	fs := []FailedEvaluation{
		{Rule: "deal.won", Table: "public.deals", Op: "UPDATE", XID: 4000000000, CommitLSN: 0x16B3748, Position: 0,
			Error: "division by zero", Row: []byte(`{"id": 1, "amount": "12.50"}`)},
		{Rule: "deal.won", Table: "public.deals", Op: "UPDATE", XID: 7, CommitLSN: 0x16B3748, Position: 1,
			Error: "bad", Row: []byte(`not json`)},
		{Rule: "contact.created", Table: "public.contacts", Op: "INSERT", CommitLSN: 0x16B3748, Position: 1, Error: "no row"},
	}
	if err := s.RecordFailures(ctx(t), fs); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordFailures(ctx(t), fs[:2]); err != nil { // replayed
		t.Fatal(err)
	}
	got, err := s.ListFailedEvaluations(ctx(t), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("listed %d, want 3: %+v", len(got), got)
	}
	if got[0].Rule != "contact.created" || got[0].Row != nil || got[2].Rule != "deal.won" {
		t.Fatalf("not newest first: %+v", got)
	}
	f := got[2]
	if f.Table != "public.deals" || f.Op != "UPDATE" || f.XID != 4000000000 || f.CommitLSN != 0x16B3748 ||
		f.Position != 0 || f.Error != "division by zero" || string(f.Row) != `{"id": 1, "amount": "12.50"}` || f.CreatedAt.IsZero() {
		t.Fatalf("stored failure: %+v", f)
	}
	if string(got[1].Row) != `"not json"` {
		t.Fatalf("invalid JSON row stored as %s", got[1].Row)
	}
	if got, err := s.ListFailedEvaluations(ctx(t), 1); err != nil || len(got) != 1 {
		t.Fatalf("limit 1: %d, %v", len(got), err)
	}
}
