package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

const webhookColumns = `id, url, description, events, tenant, active, headers, signing, secrets, rate_limit, batch, created_at, updated_at`

func scanWebhook(row pgx.Row) (Webhook, error) {
	var w Webhook
	err := row.Scan(&w.ID, &w.URL, &w.Description, &w.Events, &w.Tenant, &w.Active, &w.Headers, &w.Signing,
		&w.Secrets, &w.RateLimit, &w.Batch, &w.CreatedAt, &w.UpdatedAt)
	return w, err
}

func collectWebhooks(rows pgx.Rows) ([]Webhook, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Webhook, error) { return scanWebhook(r) })
}

// webhookArgs are w's mutable fields, never NULL.
func webhookArgs(w Webhook) []any {
	events, headers, secrets := w.Events, w.Headers, w.Secrets
	if events == nil {
		events = []string{}
	}
	if headers == nil {
		headers = map[string]string{}
	}
	if secrets == nil {
		secrets = []Secret{}
	}
	return []any{w.URL, w.Description, events, w.Tenant, w.Active, headers, w.Signing, secrets, w.RateLimit, w.Batch}
}

// CreateWebhook stores a new webhook, with a generated id when w.ID is
// empty, and returns it with its timestamps.
func (s *Store) CreateWebhook(ctx context.Context, w Webhook) (Webhook, error) {
	if w.ID == "" {
		w.ID = NewWebhookID()
	}
	args := append([]any{w.ID}, webhookArgs(w)...)
	out, err := scanWebhook(s.pool.QueryRow(ctx, s.sql(`INSERT INTO {s}.webhooks
		(id, url, description, events, tenant, active, headers, signing, secrets, rate_limit, batch)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING `+webhookColumns), args...))
	if err != nil {
		return Webhook{}, fmt.Errorf("creating webhook %s: %w", w.ID, err)
	}
	return out, nil
}

// GetWebhook returns one webhook, or ErrNotFound.
func (s *Store) GetWebhook(ctx context.Context, id string) (Webhook, error) {
	w, err := scanWebhook(s.pool.QueryRow(ctx, s.sql(`SELECT `+webhookColumns+` FROM {s}.webhooks WHERE id = $1`), id))
	if err != nil {
		return Webhook{}, fmt.Errorf("reading webhook %s: %w", id, notFound(err))
	}
	return w, nil
}

// ListWebhooks returns webhooks oldest first, of one tenant or (tenant "")
// of all, and the cursor of the next page (empty on the last page).
func (s *Store) ListWebhooks(ctx context.Context, tenant string, limit int, cursor string) ([]Webhook, string, error) {
	limit = listLimit(limit)
	q := `SELECT ` + webhookColumns + ` FROM {s}.webhooks WHERE ($1 = '' OR tenant = $1)`
	args := []any{tenant, limit + 1}
	if cursor != "" {
		at, id, err := decodeCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		q += ` AND (created_at, id) > ($3, $4)`
		args = append(args, at, id)
	}
	q += ` ORDER BY created_at, id LIMIT $2`
	rows, err := s.pool.Query(ctx, s.sql(q), args...)
	if err != nil {
		return nil, "", fmt.Errorf("listing webhooks: %w", err)
	}
	ws, err := collectWebhooks(rows)
	if err != nil {
		return nil, "", fmt.Errorf("listing webhooks: %w", err)
	}
	next := ""
	if len(ws) > limit {
		ws = ws[:limit]
		last := ws[limit-1]
		next = encodeCursor(last.CreatedAt, last.ID)
	}
	return ws, next, nil
}

// UpdateWebhook replaces a webhook's mutable fields (all but id and
// created_at) and returns it, or ErrNotFound. When w.UpdatedAt is set (as
// read), the update applies only if nobody changed the webhook since, and
// ErrConflict says somebody did: two rotations at once cannot lose one.
func (s *Store) UpdateWebhook(ctx context.Context, w Webhook) (Webhook, error) {
	args := append([]any{w.ID}, webhookArgs(w)...)
	args = append(args, timestamptz(w.UpdatedAt))
	out, err := scanWebhook(s.pool.QueryRow(ctx, s.sql(`UPDATE {s}.webhooks SET url = $2, description = $3,
		events = $4, tenant = $5, active = $6, headers = $7, signing = $8, secrets = $9, rate_limit = $10,
		batch = $11, updated_at = now() WHERE id = $1 AND ($12::timestamptz IS NULL OR updated_at = $12) RETURNING `+webhookColumns), args...))
	if errors.Is(err, pgx.ErrNoRows) && !w.UpdatedAt.IsZero() {
		if _, gerr := s.GetWebhook(ctx, w.ID); gerr == nil {
			return Webhook{}, fmt.Errorf("updating webhook %s: %w", w.ID, ErrConflict)
		}
	}
	if err != nil {
		return Webhook{}, fmt.Errorf("updating webhook %s: %w", w.ID, notFound(err))
	}
	return out, nil
}

// DeleteWebhook removes a webhook and its health; its pending deliveries
// become failed with the reason "endpoint deleted". ErrNotFound when there
// is no such webhook.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, s.sql(`DELETE FROM {s}.webhooks WHERE id = $1`), id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		// Deliveries before health: the lock order Complete uses.
		if _, err := tx.Exec(ctx, s.sql(failPending), id, "endpoint deleted"); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, s.sql(`DELETE FROM {s}.endpoint_health WHERE endpoint_id = $1`), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("deleting webhook %s: %w", id, err)
	}
	return nil
}

// AllWebhooks returns every webhook, oldest first.
func (s *Store) AllWebhooks(ctx context.Context) ([]Webhook, error) {
	rows, err := s.pool.Query(ctx, s.sql(`SELECT `+webhookColumns+` FROM {s}.webhooks ORDER BY created_at, id`))
	if err != nil {
		return nil, fmt.Errorf("reading webhooks: %w", err)
	}
	ws, err := collectWebhooks(rows)
	if err != nil {
		return nil, fmt.Errorf("reading webhooks: %w", err)
	}
	return ws, nil
}

// WebhooksVersion is a counter that grows with every change to the
// webhooks table (bumped by a trigger, in the changing transaction).
func (s *Store) WebhooksVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.pool.QueryRow(ctx, s.sql(`SELECT value FROM {s}.meta WHERE key = 'webhooks_version'`)).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("reading webhooks version: %w", err)
	}
	return v, nil
}
