package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/walhook/walhook/internal/backfill"
	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/rules"
	"github.com/walhook/walhook/internal/store"
)

// backfillBackend is where `walhook backfill` submits, follows and cancels
// backfills: the admin API of a running walhook, or, for a config without
// an admin block, the state schema itself, where the running walhook's
// runner picks new backfills up (it looks every couple of seconds).
type backfillBackend interface {
	submit(ctx context.Context, req backfill.Request) (backfillStatus, error)
	get(ctx context.Context, id string) (backfillStatus, error)
	cancel(ctx context.Context, id string) (backfillStatus, error)
	close()
}

// apiBackfills goes through the admin API.
type apiBackfills struct{ c *apiClient }

func (b apiBackfills) submit(ctx context.Context, req backfill.Request) (backfillStatus, error) {
	var st backfillStatus
	err := b.c.do(ctx, "POST", "/v1/backfills", req, &st)
	return st, err
}

func (b apiBackfills) get(ctx context.Context, id string) (backfillStatus, error) {
	var st backfillStatus
	err := b.c.do(ctx, "GET", "/v1/backfills/"+url.PathEscape(id), nil, &st)
	return st, err
}

func (b apiBackfills) cancel(ctx context.Context, id string) (backfillStatus, error) {
	var st backfillStatus
	err := b.c.do(ctx, "DELETE", "/v1/backfills/"+url.PathEscape(id), nil, &st)
	return st, err
}

func (apiBackfills) close() {}

// stateBackfills writes to the state schema directly, checking a request
// as the API would (the same backfill.Submitter).
type stateBackfills struct {
	store *store.Store
	pool  *pgxpool.Pool
	sub   *backfill.Submitter
}

// newStateBackfills opens the state schema of cfg for backfills; the
// subscribers a backfill may target are the config's endpoints and the
// active API webhooks.
func newStateBackfills(ctx context.Context, cfg *config.Config) (*stateBackfills, error) {
	if cfg.Source.Mode == config.ModeOutbox {
		return nil, errors.New("backfills read tables beside the replication slot; a config in outbox mode has none")
	}
	rs, err := rules.Compile(cfg)
	if err != nil {
		return nil, fmt.Errorf("compiling rules: %w", err)
	}
	st, pool, err := openState(ctx, cfg)
	if errors.Is(err, store.ErrNoSchema) {
		return nil, fmt.Errorf("the state schema %q does not exist: start `walhook run` with this config first; it runs the backfill", cfg.State.Schema)
	}
	if err != nil {
		return nil, err
	}
	b := &stateBackfills{store: st, pool: pool}
	hooks, err := st.AllWebhooks(ctx)
	if err != nil {
		pool.Close()
		return nil, err
	}
	var subs []backfill.Subscriber
	for _, ep := range cfg.Endpoints {
		subs = append(subs, backfill.Subscriber{ID: "cfg:" + ep.Name, Name: ep.Name, Events: ep.Events})
	}
	for _, w := range hooks {
		if w.Active {
			subs = append(subs, backfill.Subscriber{ID: w.ID, Events: w.Events})
		}
	}
	b.sub = &backfill.Submitter{
		URL:         cfg.Source.URL,
		Store:       st,
		Events:      rs.Catalogue(),
		Subscribers: func() []backfill.Subscriber { return subs },
	}
	return b, nil
}

func (b *stateBackfills) submit(ctx context.Context, req backfill.Request) (backfillStatus, error) {
	bf, err := b.sub.Submit(ctx, req)
	if err != nil {
		return backfillStatus{}, err
	}
	return statusOf(bf), nil
}

func (b *stateBackfills) get(ctx context.Context, id string) (backfillStatus, error) {
	bf, err := b.store.GetBackfill(ctx, id)
	if err != nil {
		return backfillStatus{}, err
	}
	return statusOf(bf), nil
}

func (b *stateBackfills) cancel(ctx context.Context, id string) (backfillStatus, error) {
	bf, err := b.store.SetBackfillStatus(ctx, id, store.BackfillCancelled, "cancelled",
		store.BackfillPending, store.BackfillRunning, store.BackfillPaused)
	if err != nil {
		return backfillStatus{}, err
	}
	return statusOf(bf), nil
}

func (b *stateBackfills) close() { b.pool.Close() }

func statusOf(b store.Backfill) backfillStatus {
	return backfillStatus{ID: b.ID, Table: b.Table, Status: string(b.Status), RowsTotal: b.RowsTotal,
		RowsDone: b.RowsDone, RowsSent: b.RowsSent, LastError: b.LastError}
}

// requestTimeout bounds one call to a backfill backend.
const requestTimeout = 60 * time.Second
