package admin

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/walhook/walhook/internal/backfill"
	"github.com/walhook/walhook/internal/store"
)

// Backfills starts and follows backfills; the relay that owns the slot
// provides it (package backfill).
type Backfills interface {
	Submit(ctx context.Context, req backfill.Request) (store.Backfill, error)
	// Active is the running backfill's live progress, if any.
	Active() (backfill.Progress, bool)
	// Wake makes the runner look for work now.
	Wake()
}

// backfillView is a backfill as the API shows it.
type backfillView struct {
	ID         string `json:"id"`
	Table      string `json:"table"`
	Where      string `json:"where,omitempty"`
	Event      string `json:"event,omitempty"`
	EndpointID string `json:"endpoint_id,omitempty"`
	IDSeed     string `json:"id_seed"`
	Rate       int    `json:"rate,omitempty"`
	ChunkSize  int    `json:"chunk_size,omitempty"`
	Status     string `json:"status"`
	RowsTotal  *int64 `json:"rows_total"`
	TotalExact bool   `json:"rows_total_exact"`
	RowsDone   int64  `json:"rows_done"`
	RowsSent   int64  `json:"rows_sent"`
	// Active reports that this process is reading the backfill now.
	Active     bool       `json:"active"`
	LastError  string     `json:"last_error,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// viewBackfill shows b; while it runs here, rows_done and rows_sent
// include the chunks read but not yet settled, and active is true until the
// runner has stopped (after a pause or cancel, once its sent chunks are
// recorded).
func (s *server) viewBackfill(b store.Backfill) backfillView {
	v := backfillView{
		ID: b.ID, Table: b.Table, Where: b.Where, Event: b.Event, EndpointID: b.EndpointID, IDSeed: b.IDSeed,
		Rate: b.Rate, ChunkSize: b.ChunkSize, Status: string(b.Status), RowsTotal: b.RowsTotal, TotalExact: b.TotalExact,
		RowsDone: b.RowsDone, RowsSent: b.RowsSent, LastError: b.LastError, CreatedAt: b.CreatedAt,
		StartedAt: b.StartedAt, FinishedAt: b.FinishedAt,
	}
	if s.opts.Backfills == nil {
		return v
	}
	if p, ok := s.opts.Backfills.Active(); ok && p.ID == b.ID {
		v.Active = true
		if b.Status == store.BackfillRunning {
			v.RowsDone, v.RowsSent = max(v.RowsDone, p.RowsRead), max(v.RowsSent, p.RowsSent)
			if v.RowsTotal == nil && p.RowsTotal >= 0 {
				v.RowsTotal = &p.RowsTotal
			}
		}
	}
	return v
}

// createBackfill answers POST /v1/backfills.
func (s *server) createBackfill(w http.ResponseWriter, r *http.Request) *apiError {
	if s.opts.Backfills == nil {
		return errorf(http.StatusNotImplemented, CodeNotAvailable, "backfills run in the relay that reads the slot (source mode logical)")
	}
	var req backfill.Request
	if e := decodeBody(w, r, &req, false); e != nil {
		return e
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	b, err := s.opts.Backfills.Submit(ctx, req)
	var bad *backfill.InvalidError
	if errors.As(err, &bad) {
		return errorf(http.StatusBadRequest, CodeValidation, "%s", bad.Reason)
	}
	if err != nil {
		return s.internal(r, "starting a backfill", err)
	}
	s.log.Info().Str("backfill_id", b.ID).Str("table", b.Table).Msg("backfill submitted")
	writeJSON(w, http.StatusCreated, s.viewBackfill(b))
	return nil
}

// listBackfills answers GET /v1/backfills: the newest first, up to limit.
func (s *server) listBackfills(w http.ResponseWriter, r *http.Request) *apiError {
	limit, e := parseLimit(r.URL.Query())
	if e != nil {
		return e
	}
	bs, err := s.opts.Store.ListBackfills(r.Context(), limit)
	if err != nil {
		return s.internal(r, "listing backfills", err)
	}
	out := make([]backfillView, len(bs))
	for i, b := range bs {
		out[i] = s.viewBackfill(b)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out})
	return nil
}

// getBackfill answers GET /v1/backfills/{id}.
func (s *server) getBackfill(w http.ResponseWriter, r *http.Request) *apiError {
	b, err := s.opts.Store.GetBackfill(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		return notFound("backfill", r.PathValue("id"))
	}
	if err != nil {
		return s.internal(r, "reading a backfill", err)
	}
	writeJSON(w, http.StatusOK, s.viewBackfill(b))
	return nil
}

// cancelBackfill answers DELETE /v1/backfills/{id}: the backfill stops
// after the chunk it is reading; what was sent stays sent.
func (s *server) cancelBackfill(w http.ResponseWriter, r *http.Request) *apiError {
	return s.moveBackfill(w, r, store.BackfillCancelled, store.BackfillPending, store.BackfillRunning, store.BackfillPaused)
}

// pauseBackfill answers POST /v1/backfills/{id}/pause.
func (s *server) pauseBackfill(w http.ResponseWriter, r *http.Request) *apiError {
	return s.moveBackfill(w, r, store.BackfillPaused, store.BackfillPending, store.BackfillRunning)
}

// resumeBackfill answers POST /v1/backfills/{id}/resume: it continues
// after its last settled chunk.
func (s *server) resumeBackfill(w http.ResponseWriter, r *http.Request) *apiError {
	return s.moveBackfill(w, r, store.BackfillPending, store.BackfillPaused)
}

func (s *server) moveBackfill(w http.ResponseWriter, r *http.Request, to store.BackfillStatus, from ...store.BackfillStatus) *apiError {
	id := r.PathValue("id")
	b, err := s.opts.Store.SetBackfillStatus(r.Context(), id, to, "", from...)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound("backfill", id)
	case errors.Is(err, store.ErrBackfillState):
		return errorf(http.StatusConflict, "conflict", "backfill %s is %s and cannot become %s", id, b.Status, to)
	case err != nil:
		return s.internal(r, "changing a backfill", err)
	}
	if s.opts.Backfills != nil {
		s.opts.Backfills.Wake()
	}
	writeJSON(w, http.StatusOK, s.viewBackfill(b))
	return nil
}
