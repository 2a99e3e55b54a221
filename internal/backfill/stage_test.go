package backfill

import (
	"testing"
	"time"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/event"
)

// TestStageAppliesWindowAndTargets: the stage hands the high watermark's
// transaction on with the chunk's rows, tells the runner only after, and
// its evaluator gives read rows their backfill's ids, event and endpoint.
func TestStageAppliesWindowAndTargets(t *testing.T) {
	t.Parallel()
	s := NewStage()
	outcome := s.openWindow(&window{token: "t", schema: "public", table: "contacts", key: []string{"id"}})
	var got []cdc.Transaction
	// apply is the slot source's step: intercept, hand on, then tell.
	apply := func(tx cdc.Transaction) {
		tx, handedOver := s.Intercept(tx)
		got = append(got, tx)
		select {
		case c := <-outcome:
			t.Errorf("the runner heard of the chunk (%+v) before it was handed on", c)
		default:
		}
		handedOver()
	}
	apply(watermarkTx(10, mark("low", "t", 0)))
	r1, r2 := row(1, "a"), row(2, "b")
	r1.Backfill, r2.Backfill = "bf_1", "bf_1"
	if err := s.setRows("t", []cdc.Change{r1, r2}, snapshot{}); err != nil {
		t.Fatal(err)
	}
	apply(watermarkTx(20, mark("high", "t", 0)))
	if c := <-outcome; c.emitted != 2 || c.endLSN != 20 {
		t.Fatalf("outcome %+v", c)
	}
	if len(got) != 2 || len(got[1].Changes) != 2 {
		t.Fatalf("handed on %+v", got)
	}

	s.setTarget("bf_1", Target{IDSeed: "seed", Event: "contact.synced", EndpointID: "cfg:crm"}, true)
	evaluate := s.Evaluate(func(c *cdc.Change, out []event.Event) ([]event.Event, []event.Failure) {
		return append(out, event.Event{Type: "contact.synced", ID: "stream-id"}, event.Event{Type: "contact.other"}),
			[]event.Failure{{Rule: "contact.other"}}
	})
	evs, fails := evaluate(&got[1].Changes[0], nil)
	want := event.NewReadID("seed", []byte(`[1]`), "contact.synced")
	if len(evs) != 1 || evs[0].ID != want || evs[0].Endpoint != "cfg:crm" || len(fails) != 0 {
		t.Fatalf("events %+v failures %+v; want one contact.synced with id %s for cfg:crm", evs, fails, want)
	}
	// A failure of the backfill's event keeps the id and endpoint a replay
	// sends its event under.
	failing := s.Evaluate(func(c *cdc.Change, out []event.Event) ([]event.Event, []event.Failure) {
		return out, []event.Failure{{Rule: "contact.synced", EventType: "contact.synced", EventID: "stream-id"}}
	})
	if _, fails := failing(&got[1].Changes[0], nil); len(fails) != 1 || fails[0].EventID != want || fails[0].Endpoint != "cfg:crm" {
		t.Fatalf("failures %+v; want id %s for cfg:crm", fails, want)
	}
	// A live change keeps the stream's ids and every target.
	live := live(cdc.OpInsert, "contacts", map[string]any{"id": int64(1)}, nil)
	if evs, _ := evaluate(&live, nil); len(evs) != 2 || evs[0].ID != "stream-id" || evs[0].Endpoint != "" {
		t.Fatalf("live change: %+v", evs)
	}
}

func TestStageSettled(t *testing.T) {
	t.Parallel()
	s := NewStage()
	w := s.watch(30)
	s.Settled(20)
	if w.settled() {
		t.Fatal("settled at 20 released a wait for 30")
	}
	before := time.Now()
	s.Settled(30)
	<-w.done
	if w.at.Before(before) {
		t.Errorf("settled at %v, before Settled(30) was called at %v", w.at, before)
	}
	if !s.watch(25).settled() || s.watch(31).settled() {
		t.Error("watch disagrees with Settled(30)")
	}
	<-s.watch(10).done // already settled: closed at once
}
