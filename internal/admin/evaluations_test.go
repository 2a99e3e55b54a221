package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/walhook/walhook/internal/admin"
	"github.com/walhook/walhook/internal/store"
)

type wakeCounter struct{ n atomic.Int32 }

func (w *wakeCounter) Wake() { w.n.Add(1) }

// TestEvaluations: an admin token lists failed evaluations (filtered by
// rule, paged) and queues replays, one or many, which wakes the relay; a
// failure kept without its change cannot be replayed; a tenant token sees
// and replays none of it.
func TestEvaluations(t *testing.T) {
	t.Parallel()
	wake := &wakeCounter{}
	e := setup(t, func(o *admin.Options) { o.Replays = wake })
	var fs []store.FailedEvaluation
	for i := range 3 {
		fs = append(fs, store.FailedEvaluation{Rule: "deal.big", Table: "public.deals", Op: "update", CommitLSN: 0x16B3748,
			Position: i, Error: "evaluating when: null", Row: []byte(`{"id": 1, "amount": null}`), Old: []byte(`{"id": 1}`),
			EventType: "deal.big", EventID: fmt.Sprintf("evt_%d", i), Replay: []byte(`{"v": 1}`)})
	}
	fs = append(fs, store.FailedEvaluation{Rule: "contact.new", Table: "public.contacts", Op: "insert", CommitLSN: 0x16B3748, Position: 9, Error: "x"})
	if err := e.store.RecordFailures(context.Background(), fs); err != nil {
		t.Fatal(err)
	}

	type view struct {
		ID         int64          `json:"id"`
		Rule       string         `json:"rule"`
		CommitLSN  string         `json:"commit_lsn"`
		Row        map[string]any `json:"row"`
		Old        map[string]any `json:"old"`
		EventID    string         `json:"event_id"`
		Status     string         `json:"status"`
		Replayable bool           `json:"replayable"`
	}
	var page struct {
		Data       []view `json:"data"`
		NextCursor string `json:"next_cursor"`
	}
	e.expect(e.do("GET", "/v1/evaluations?rule=deal.big&limit=2", nil), http.StatusOK).json(t, &page)
	if len(page.Data) != 2 || page.NextCursor == "" || page.Data[0].CommitLSN != "0/16B3748" || page.Data[0].EventID != "evt_2" ||
		page.Data[0].Old["id"] != float64(1) || page.Data[0].Status != "failed" || !page.Data[0].Replayable {
		t.Fatalf("first page: %+v", page)
	}
	last := page.Data[1].ID
	e.expect(e.do("GET", "/v1/evaluations?rule=deal.big&limit=2&cursor="+page.NextCursor, nil), http.StatusOK).json(t, &page)
	if len(page.Data) != 1 || page.NextCursor != "" || page.Data[0].ID >= last {
		t.Fatalf("second page: %+v", page)
	}
	first := page.Data[0].ID
	e.expect(e.do("GET", "/v1/evaluations?status=lost", nil), http.StatusBadRequest)
	e.expect(e.do("GET", "/v1/evaluations?cursor=zz", nil), http.StatusBadRequest)

	var one view
	e.expect(e.do("POST", fmt.Sprintf("/v1/evaluations/%d/replay", first), nil), http.StatusAccepted).json(t, &one)
	if one.ID != first || one.Status != store.EvaluationReplayRequested || wake.n.Load() != 1 {
		t.Fatalf("replayed %+v, wakes %d", one, wake.n.Load())
	}
	e.expect(e.do("POST", "/v1/evaluations/424242/replay", nil), http.StatusNotFound)
	e.expect(e.do("GET", "/v1/evaluations/abc", nil), http.StatusNotFound)
	var contact struct{ Data []view }
	e.expect(e.do("GET", "/v1/evaluations?table=public.contacts", nil), http.StatusOK).json(t, &contact)
	if len(contact.Data) != 1 || contact.Data[0].Replayable {
		t.Fatalf("contact failures: %+v", contact)
	}
	if code := e.expect(e.do("POST", fmt.Sprintf("/v1/evaluations/%d/replay", contact.Data[0].ID), nil), http.StatusConflict).apiError(t).Error.Code; code != admin.CodeNotReplayable {
		t.Fatalf("code %s", code)
	}

	var bulk struct{ Requested int64 }
	e.expect(e.do("POST", "/v1/evaluations/replay", map[string]any{"rule": "deal.big"}), http.StatusAccepted).json(t, &bulk)
	if bulk.Requested != 2 || wake.n.Load() != 2 {
		t.Fatalf("bulk replay requested %d (the third was requested already), wakes %d", bulk.Requested, wake.n.Load())
	}
	e.expect(e.do("POST", "/v1/evaluations/replay", map[string]any{}), http.StatusBadRequest)
	e.expect(e.do("POST", "/v1/evaluations/replay", map[string]any{"ids": []int64{first}, "all": true}), http.StatusBadRequest)
	e.expect(e.do("POST", "/v1/evaluations/replay", map[string]any{"ids": []int64{first}}), http.StatusAccepted).json(t, &bulk)
	if bulk.Requested != 1 {
		t.Fatalf("replay by ids requested %d", bulk.Requested)
	}

	// Tenants never see failed evaluations: they hold rows of any tenant.
	var tok struct{ Token string }
	e.expect(e.do("POST", "/v1/tokens", map[string]any{"tenant": "acme"}), http.StatusCreated).json(t, &tok)
	for _, req := range [][2]string{
		{"GET", "/v1/evaluations"}, {"GET", fmt.Sprintf("/v1/evaluations/%d", first)},
		{"POST", fmt.Sprintf("/v1/evaluations/%d/replay", first)}, {"POST", "/v1/evaluations/replay"},
	} {
		r := e.call(req[0], req[1], map[string]any{"all": true}, tok.Token)
		if req[0] == "GET" {
			r = e.call(req[0], req[1], nil, tok.Token)
		}
		e.expect(r, http.StatusForbidden)
		if strings.Contains(string(r.body), "amount") {
			t.Fatalf("a tenant saw row data: %s", r.body)
		}
	}
}
