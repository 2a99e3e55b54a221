package store

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestWebhooksCRUD(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	v0, err := s.WebhooksVersion(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(24 * time.Hour).Truncate(time.Microsecond).UTC()
	in := Webhook{
		URL: "https://example.com/hooks", Description: "CRM sync", Events: []string{"deal.created", "deal.won"},
		Tenant: "acme", Active: true, Headers: map[string]string{"X-Team": "sales"}, Signing: "standard-webhooks",
		Secrets: []Secret{{Value: "whsec_new", CreatedAt: time.Now().Truncate(time.Microsecond).UTC()},
			{Value: "whsec_old", CreatedAt: time.Now().Add(-time.Hour).Truncate(time.Microsecond).UTC(), ExpiresAt: &exp}},
	}
	w, err := s.CreateWebhook(ctx(t), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.ID) != 29 || w.ID[:3] != "ep_" || w.CreatedAt.IsZero() || w.UpdatedAt.IsZero() {
		t.Fatalf("created: %+v", w)
	}
	got, err := s.GetWebhook(ctx(t), w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.URL != in.URL || got.Description != in.Description || !slices.Equal(got.Events, in.Events) || got.Tenant != "acme" ||
		!got.Active || got.Headers["X-Team"] != "sales" || got.Signing != in.Signing || len(got.Secrets) != 2 ||
		got.Secrets[0].Value != "whsec_new" || got.Secrets[0].ExpiresAt != nil || !got.Secrets[0].CreatedAt.Equal(in.Secrets[0].CreatedAt) ||
		got.Secrets[1].ExpiresAt == nil || !got.Secrets[1].ExpiresAt.Equal(exp) {
		t.Fatalf("read back %+v, want %+v", got, in)
	}

	got.URL, got.Active, got.Events, got.Headers, got.Secrets = "https://example.com/v2", false, nil, nil, nil
	up, err := s.UpdateWebhook(ctx(t), got)
	if err != nil {
		t.Fatal(err)
	}
	if up.URL != "https://example.com/v2" || up.Active || len(up.Events) != 0 || len(up.Headers) != 0 || len(up.Secrets) != 0 ||
		!up.CreatedAt.Equal(w.CreatedAt) || up.UpdatedAt.Before(w.UpdatedAt) {
		t.Fatalf("updated: %+v", up)
	}

	// Pending deliveries fail and health goes when the webhook is deleted.
	d := delivery(1, w.ID, "")
	mustPersist(t, s, d)
	if _, err := s.Complete(ctx(t), delivery(2, w.ID, ""), Attempt{StatusCode: 500}, Outcome{Status: StatusPending}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteWebhook(ctx(t), w.ID); err != nil {
		t.Fatal(err)
	}
	if g := mustGet(t, s, d.ID); g.Status != StatusFailed || g.LastError != "endpoint deleted" {
		t.Fatalf("delivery of a deleted webhook: %+v", g)
	}
	if h, err := s.Health(ctx(t), w.ID); err != nil || h.ConsecutiveFailures != 0 {
		t.Fatalf("health of a deleted webhook: %+v, %v", h, err)
	}
	for name, err := range map[string]error{
		"get":    func() error { _, err := s.GetWebhook(ctx(t), w.ID); return err }(),
		"update": func() error { _, err := s.UpdateWebhook(ctx(t), w); return err }(),
		"delete": s.DeleteWebhook(ctx(t), w.ID),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s of a deleted webhook: %v, want ErrNotFound", name, err)
		}
	}
	v1, err := s.WebhooksVersion(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if v1 < v0+3 {
		t.Fatalf("version went from %d to %d over create, update, delete", v0, v1)
	}
	// An explicit id is kept; a duplicate is an error.
	if _, err := s.CreateWebhook(ctx(t), Webhook{ID: "ep_fixed", URL: "https://x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateWebhook(ctx(t), Webhook{ID: "ep_fixed", URL: "https://x"}); err == nil {
		t.Fatal("duplicate id accepted")
	}
}

func TestListWebhooks(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	var ids []string
	for i := range 12 {
		w, err := s.CreateWebhook(ctx(t), Webhook{URL: fmt.Sprintf("https://example.com/%d", i), Tenant: []string{"acme", "globex", ""}[i%3], Active: true})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, w.ID)
	}
	list := func(tenant string, limit int) []string {
		var out []string
		cursor := ""
		for range 20 {
			ws, next, err := s.ListWebhooks(ctx(t), tenant, limit, cursor)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range ws {
				if tenant != "" && w.Tenant != tenant {
					t.Fatalf("tenant %q listed %+v", tenant, w)
				}
				out = append(out, w.ID)
			}
			if next == "" {
				return out
			}
			cursor = next
		}
		t.Fatal("pagination does not end")
		return nil
	}
	if got := list("", 5); !slices.Equal(got, ids) {
		t.Fatalf("all, paged: %v, want creation order %v", got, ids)
	}
	if got := list("acme", 2); len(got) != 4 || got[0] != ids[0] || got[3] != ids[9] {
		t.Fatalf("acme: %v", got)
	}
	if got := list("nobody", 0); len(got) != 0 {
		t.Fatalf("nobody: %v", got)
	}
	all, err := s.AllWebhooks(ctx(t))
	if err != nil || len(all) != 12 || all[0].ID != ids[0] {
		t.Fatalf("AllWebhooks = %d, %v", len(all), err)
	}
	if _, _, err := s.ListWebhooks(ctx(t), "", 5, "@@"); !errors.Is(err, ErrBadCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
}

// TestWebhookBatch: a webhook's batch is stored, read back, changed and
// removed; without one it reads back nil.
func TestWebhookBatch(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	b := &WebhookBatch{MaxEvents: 100, MaxBytes: 1 << 20, MaxWait: 50 * time.Millisecond}
	w, err := s.CreateWebhook(ctx(t), Webhook{URL: "https://example.com/hooks", Events: []string{"*"}, Active: true, Batch: b})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetWebhook(ctx(t), w.ID); err != nil || got.Batch == nil || *got.Batch != *b {
		t.Fatalf("read back batch %+v (%v), want %+v", got.Batch, err, b)
	}
	w.Batch = &WebhookBatch{MaxEvents: 10, MaxBytes: 2048, MaxWait: 0}
	up, err := s.UpdateWebhook(ctx(t), w)
	if err != nil || up.Batch == nil || *up.Batch != *w.Batch {
		t.Fatalf("updated batch %+v (%v)", up.Batch, err)
	}
	w = up
	w.Batch = nil
	if up, err := s.UpdateWebhook(ctx(t), w); err != nil || up.Batch != nil {
		t.Fatalf("removed batch reads %+v (%v)", up.Batch, err)
	}
	plain, err := s.CreateWebhook(ctx(t), Webhook{URL: "https://example.com/plain", Events: []string{"*"}, Active: true})
	if err != nil || plain.Batch != nil {
		t.Fatalf("webhook without batch: %+v (%v)", plain.Batch, err)
	}
}
