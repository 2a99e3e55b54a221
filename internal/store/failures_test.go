package store

import (
	"errors"
	"testing"
	"time"
)

func failure(pos int, rule, table string, replay bool) FailedEvaluation {
	f := FailedEvaluation{Rule: rule, Table: table, Op: "update", XID: 9, CommitLSN: 0x5000, EndLSN: 0x5010, Position: pos,
		Error: "evaluating when: null", Row: []byte(`{"id": 1}`), Old: []byte(`{"id": 1, "amount": "2"}`),
		EventType: rule, EventID: "evt_" + rule}
	if replay {
		f.Replay = []byte(`{"v": 1}`)
	}
	return f
}

func TestListEvaluationsFiltersAndPages(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	var fs []FailedEvaluation
	for i := range 5 {
		fs = append(fs, failure(i, "deal.big", "public.deals", true))
	}
	fs = append(fs, failure(0, "contact.new", "public.contacts", false))
	if err := s.RecordFailures(ctx(t), append(fs, fs[0])); err != nil { // one change twice in a batch
		t.Fatal(err)
	}
	page, next, err := s.ListEvaluations(ctx(t), EvaluationFilter{Rule: "deal.big", Limit: 3})
	if err != nil || len(page) != 3 || next == "" {
		t.Fatalf("first page: %d, %q, %v", len(page), next, err)
	}
	rest, next2, err := s.ListEvaluations(ctx(t), EvaluationFilter{Rule: "deal.big", Limit: 3, Cursor: next})
	if err != nil || len(rest) != 2 || next2 != "" || rest[0].ID >= page[2].ID {
		t.Fatalf("second page: %+v, %q, %v", rest, next2, err)
	}
	f := page[0]
	if f.Position != 4 || f.Status != EvaluationFailed || !f.Replayable || string(f.Old) != `{"id": 1, "amount": "2"}` ||
		f.EndLSN != 0x5010 || f.EventID != "evt_deal.big" || f.Replay != nil {
		t.Fatalf("listed %+v", f)
	}
	byTable, _, err := s.ListEvaluations(ctx(t), EvaluationFilter{Table: "public.contacts"})
	if err != nil || len(byTable) != 1 || byTable[0].Replayable {
		t.Fatalf("by table: %+v, %v", byTable, err)
	}
	if _, _, err := s.ListEvaluations(ctx(t), EvaluationFilter{Cursor: "!!"}); !errors.Is(err, ErrBadCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
	if _, err := s.GetEvaluation(ctx(t), 999999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
}

func TestReplayClaimsAreExclusiveAndEndOnce(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	fs := []FailedEvaluation{failure(0, "deal.big", "public.deals", true), failure(1, "deal.big", "public.deals", true),
		failure(2, "deal.big", "public.deals", true), failure(3, "old.rule", "public.deals", false)}
	if err := s.RecordFailures(ctx(t), fs); err != nil {
		t.Fatal(err)
	}
	all, _, _ := s.ListEvaluations(ctx(t), EvaluationFilter{})
	ids := map[int]int64{}
	for _, f := range all {
		ids[f.Position] = f.ID
	}
	queued, err := s.RequestReplays(ctx(t), []int64{ids[0], ids[3], 424242})
	if err != nil || len(queued) != 1 || queued[0] != ids[0] {
		t.Fatalf("RequestReplays queued %v, %v (the one without a change and the unknown one are not)", queued, err)
	}
	if n, err := s.RequestReplaysWhere(ctx(t), EvaluationFilter{Rule: "deal.big"}); err != nil || n != 2 {
		t.Fatalf("RequestReplaysWhere: %d, %v", n, err)
	}

	a, err := s.ClaimReplays(ctx(t), "a", 2, time.Minute)
	if err != nil || len(a) != 2 || a[0].ID != ids[0] || string(a[0].Replay) != `{"v": 1}` {
		t.Fatalf("claim a: %+v, %v", a, err)
	}
	b, err := s.ClaimReplays(ctx(t), "b", 10, time.Minute)
	if err != nil || len(b) != 1 || b[0].ID != ids[2] {
		t.Fatalf("claim b took %+v, %v; want only the one a did not hold", b, err)
	}
	if again, _ := s.ClaimReplays(ctx(t), "c", 10, time.Minute); len(again) != 0 {
		t.Fatalf("claimed twice: %+v", again)
	}
	// A replay whose re-evaluation failed again is recorded by the failure
	// itself; finishing it afterwards does not mark it replayed.
	again := failure(1, "deal.big", "public.deals", true)
	again.Error = "still broken"
	if err := s.RecordFailures(ctx(t), []FailedEvaluation{again}); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishReplays(ctx(t), "a", []ReplayOutcome{{ID: ids[0], Events: 1}, {ID: ids[1], Events: 0}}); err != nil {
		t.Fatal(err)
	}
	// b's token cannot finish what it does not hold.
	if err := s.FinishReplays(ctx(t), "b", []ReplayOutcome{{ID: ids[0], Error: "x"}}); err != nil {
		t.Fatal(err)
	}
	got := func(id int64) FailedEvaluation {
		f, err := s.GetEvaluation(ctx(t), id)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	if f := got(ids[0]); f.Status != EvaluationReplayed || f.Replays != 1 || f.ReplayEvents == nil || *f.ReplayEvents != 1 || f.ReplayedAt == nil {
		t.Fatalf("replayed one: %+v", f)
	}
	// walhook status counts the failed evaluations not replayed.
	if open, err := s.ListFailedEvaluations(ctx(t), 10); err != nil || len(open) != 3 {
		t.Fatalf("not replayed: %d, %v", len(open), err)
	}
	if f := got(ids[1]); f.Status != EvaluationFailed || f.Error != "still broken" || f.Replays != 1 {
		t.Fatalf("failed again: %+v", f)
	}
	// A change read again after a crash does not undo a replay request.
	if _, err := s.RequestReplays(ctx(t), []int64{ids[1]}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordFailures(ctx(t), []FailedEvaluation{again}); err != nil {
		t.Fatal(err)
	}
	if f := got(ids[1]); f.Status != EvaluationReplayRequested {
		t.Fatalf("request undone: %+v", f)
	}

	// Released claims are requested again; an expired lease is claimed again.
	if err := s.ReleaseReplays(ctx(t), "b", []int64{ids[2]}); err != nil {
		t.Fatal(err)
	}
	short, err := s.ClaimReplays(ctx(t), "d", 10, time.Millisecond)
	if err != nil || len(short) != 2 {
		t.Fatalf("claim d: %+v, %v", short, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		e, err := s.ClaimReplays(ctx(t), "e", 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(e) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("expired leases not claimed again: %+v", e)
		}
		time.Sleep(10 * time.Millisecond) // polling the database clock
	}
	if err := s.FinishReplays(ctx(t), "d", []ReplayOutcome{{ID: ids[2], Events: 3}}); err != nil {
		t.Fatal(err)
	}
	if f := got(ids[2]); f.Status != EvaluationReplaying {
		t.Fatalf("an instance whose lease ran out finished a replay another holds: %+v", f)
	}
}
