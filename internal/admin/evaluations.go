package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/walhook/walhook/internal/store"
)

// Failed evaluations hold row data of any table and name the rules: admin
// tokens only (adminOnly); a tenant token is refused with 403.

// Replays is the running relay's replay loop, woken after a request so
// that it does not wait for its next poll.
type Replays interface{ Wake() }

// evaluationView is a failed evaluation as the API returns it.
type evaluationView struct {
	ID                int64           `json:"id"`
	Rule              string          `json:"rule"`
	Table             string          `json:"table"`
	Op                string          `json:"op,omitempty"`
	XID               uint32          `json:"xid"`
	CommitLSN         string          `json:"commit_lsn"`
	Position          int             `json:"position"`
	Error             string          `json:"error"`
	Row               json.RawMessage `json:"row"`
	Old               json.RawMessage `json:"old,omitempty"`
	EventType         string          `json:"event_type,omitempty"`
	EventID           string          `json:"event_id,omitempty"`
	EndpointID        string          `json:"endpoint_id,omitempty"`
	Status            string          `json:"status"`
	Replayable        bool            `json:"replayable"`
	Replays           int             `json:"replays"`
	ReplayEvents      *int            `json:"replay_events,omitempty"`
	ReplayRequestedAt *time.Time      `json:"replay_requested_at,omitempty"`
	ReplayedAt        *time.Time      `json:"replayed_at,omitempty"`
	CreatedAt         time.Time       `json:"created_at"`
	UpdatedAt         time.Time       `json:"updated_at"`
}

func viewEvaluation(f store.FailedEvaluation) evaluationView {
	row := json.RawMessage(f.Row)
	if len(row) == 0 {
		row = json.RawMessage("null")
	}
	return evaluationView{
		ID: f.ID, Rule: f.Rule, Table: f.Table, Op: f.Op, XID: f.XID, CommitLSN: pglogrepl.LSN(f.CommitLSN).String(),
		Position: f.Position, Error: f.Error, Row: row, Old: json.RawMessage(f.Old), EventType: f.EventType,
		EventID: f.EventID, EndpointID: f.Endpoint, Status: f.Status, Replayable: f.Replayable, Replays: f.Replays,
		ReplayEvents: f.ReplayEvents, ReplayRequestedAt: f.ReplayRequestedAt, ReplayedAt: f.ReplayedAt,
		CreatedAt: f.CreatedAt, UpdatedAt: f.UpdatedAt,
	}
}

// evaluationStatuses are the values of ?status=.
var evaluationStatuses = map[string]bool{
	store.EvaluationFailed: true, store.EvaluationReplayRequested: true,
	store.EvaluationReplaying: true, store.EvaluationReplayed: true,
}

// listEvaluations answers GET /v1/evaluations?rule=&table=&status=&limit=
// &cursor=: failed evaluations, newest first.
func (s *server) listEvaluations(w http.ResponseWriter, r *http.Request) *apiError {
	q := r.URL.Query()
	f := store.EvaluationFilter{Rule: q.Get("rule"), Table: q.Get("table"), Status: q.Get("status"), Cursor: q.Get("cursor")}
	if f.Status != "" && !evaluationStatuses[f.Status] {
		return errorf(http.StatusBadRequest, CodeInvalidRequest,
			`status must be "failed", "replay_requested", "replaying" or "replayed" (got %q)`, f.Status)
	}
	limit, e := parseLimit(q)
	if e != nil {
		return e
	}
	f.Limit = limit
	fs, next, err := s.opts.Store.ListEvaluations(r.Context(), f)
	if errors.Is(err, store.ErrBadCursor) {
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "cursor is not one this API returned")
	}
	if err != nil {
		return s.internal(r, "listing failed evaluations", err)
	}
	out := make([]evaluationView, len(fs))
	for i, f := range fs {
		out[i] = viewEvaluation(f)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out, "next_cursor": next})
	return nil
}

// evaluation reads the route's failed evaluation.
func (s *server) evaluation(r *http.Request) (store.FailedEvaluation, *apiError) {
	raw := r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return store.FailedEvaluation{}, notFound("failed evaluation", raw)
	}
	f, err := s.opts.Store.GetEvaluation(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return f, notFound("failed evaluation", raw)
	}
	if err != nil {
		return f, s.internal(r, "reading the failed evaluation", err)
	}
	return f, nil
}

// getEvaluation answers GET /v1/evaluations/{id}.
func (s *server) getEvaluation(w http.ResponseWriter, r *http.Request) *apiError {
	f, e := s.evaluation(r)
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, viewEvaluation(f))
	return nil
}

// replayEvaluation answers POST /v1/evaluations/{id}/replay: the failed
// evaluation is queued for a replay by a running walhook (202).
func (s *server) replayEvaluation(w http.ResponseWriter, r *http.Request) *apiError {
	if e := decodeBody(w, r, &struct{}{}, true); e != nil {
		return e
	}
	f, e := s.evaluation(r)
	if e != nil {
		return e
	}
	if !f.Replayable {
		return errorf(http.StatusConflict, CodeNotReplayable,
			"failed evaluation %d cannot be replayed: it was recorded without its change (before replays existed, or an outbox row that is not an event)", f.ID)
	}
	queued, err := s.opts.Store.RequestReplays(r.Context(), []int64{f.ID})
	if err != nil {
		return s.internal(r, "requesting the replay", err)
	}
	if len(queued) == 0 {
		return errorf(http.StatusConflict, CodeNotReplayable, "failed evaluation %d is being replayed now", f.ID)
	}
	s.wakeReplays()
	if f, e = s.evaluation(r); e != nil {
		return e
	}
	s.log.Info().Int64("evaluation", f.ID).Str("rule", f.Rule).Msg("failed evaluation queued for replay")
	writeJSON(w, http.StatusAccepted, viewEvaluation(f))
	return nil
}

// replayInput is the body of POST /v1/evaluations/replay: ids, or a
// filter (rule, table, status; all for every failed one).
type replayInput struct {
	IDs    []int64 `json:"ids"`
	All    bool    `json:"all"`
	Rule   string  `json:"rule"`
	Table  string  `json:"table"`
	Status string  `json:"status"`
}

// replayEvaluations answers POST /v1/evaluations/replay: many failed
// evaluations queued for a replay at once (202 {"requested": n}).
func (s *server) replayEvaluations(w http.ResponseWriter, r *http.Request) *apiError {
	var in replayInput
	if e := decodeBody(w, r, &in, false); e != nil {
		return e
	}
	filtered := in.All || in.Rule != "" || in.Table != "" || in.Status != ""
	switch {
	case len(in.IDs) > 0 && filtered:
		return invalid("ids", "give either ids or a filter (all, rule, table, status), not both")
	case len(in.IDs) == 0 && !filtered:
		return invalid("ids", `give ids, or a filter: "all": true, "rule", "table" or "status"`)
	case len(in.IDs) > store.MaxListLimit:
		return invalid("ids", "at most %d ids per request", store.MaxListLimit)
	case in.Status != "" && (!evaluationStatuses[in.Status] || in.Status == store.EvaluationReplaying):
		return invalid("status", `status must be "failed", "replay_requested" or "replayed" (got %q)`, in.Status)
	}
	var n int64
	var queued []int64
	if len(in.IDs) > 0 {
		var err error
		if queued, err = s.opts.Store.RequestReplays(r.Context(), in.IDs); err != nil {
			return s.internal(r, "requesting replays", err)
		}
		n = int64(len(queued))
	} else {
		var err error
		n, err = s.opts.Store.RequestReplaysWhere(r.Context(), store.EvaluationFilter{Rule: in.Rule, Table: in.Table, Status: in.Status})
		if err != nil {
			return s.internal(r, "requesting replays", err)
		}
	}
	if n > 0 {
		s.wakeReplays()
	}
	s.log.Info().Int64("requested", n).Str("rule", in.Rule).Str("table", in.Table).Msg("failed evaluations queued for replay")
	out := map[string]any{"requested": n}
	if len(in.IDs) > 0 {
		out["ids"] = queued
	}
	writeJSON(w, http.StatusAccepted, out)
	return nil
}

func (s *server) wakeReplays() {
	if s.opts.Replays != nil {
		s.opts.Replays.Wake()
	}
}
