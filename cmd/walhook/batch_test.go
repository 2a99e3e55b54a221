package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

// TestAPIWebhookBatches: a webhook registered with `walhook webhooks
// create --batch-max-events 10` receives the rows' events in signed batches
// of at most 10, every row once.
func TestAPIWebhookBatches(t *testing.T) {
	db, s, url := processTest(t, 0)
	other := httptest.NewServer(newSink(signing.GenerateSecret(), 0)) // the config's own endpoint
	t.Cleanup(other.Close)
	addr := freeAddr(t)
	slot := testenv.Name(t, "slot")
	cfg := writeConfig(t, db, slot, other.URL, s.secret, fmt.Sprintf(`admin {
  listen         = %q
  token          = "batch-webhook-token-0123456789abc"
  allow_networks = ["127.0.0.0/8"]
  allow_http     = true
}
`, addr))
	d := startDaemon(t, cfg)
	waitSlot(t, db, slot)
	ctx := context.Background()
	testkit.Eventually(t, "the admin API", func() bool {
		code, _, _ := walhook(ctx, "webhooks", "list", "-c", cfg)
		return code == 0
	})
	code, out, errOut := walhook(ctx, "webhooks", "create", "-c", cfg, "--url", url+"/batched", "--events", "*", "--secret", s.secret,
		"--batch-max-events", "10", "--batch-max-wait", "200ms", "--json")
	if code != 0 || !strings.Contains(out, `"batch":{"max_events":10,"max_bytes":1048576,"max_wait":"200ms"}`) {
		t.Fatalf("webhooks create --batch-max-events 10: exit %d: %s%s", code, out, errOut)
	}
	insert := func(n int) []int64 {
		rows, err := db.Pool.Query(ctx, `INSERT INTO contacts (organization_id, first_name) SELECT 1, 'c' FROM generate_series(1, $1) RETURNING id`, n)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	// The relay loads the new webhook on a notification: until then, rows
	// have no subscriber. Probe until one arrives.
	var created struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal([]byte(out), &created)
	// A probe waits up to max_wait (200 ms) in its batch: any probe
	// arriving shows the webhook loaded, not only the newest one.
	var probes []int64
	for deadline := time.Now().Add(testkit.Timeout); ; {
		probes = append(probes, insert(1)...)
		select {
		case <-s.arrived:
		case <-time.After(200 * time.Millisecond):
		}
		if len(s.missing(probes)) < len(probes) {
			break
		}
		if time.Now().After(deadline) {
			// What walhook knows of the webhook and its deliveries, to
			// tell a webhook never loaded from deliveries never sent.
			_, hooks, _ := walhook(ctx, "webhooks", "list", "-c", cfg)
			_, dls, _ := walhook(ctx, "deliveries", "list", "-c", cfg, "--endpoint", created.ID, "--limit", "5")
			_, status, _ := walhook(ctx, "status", "-c", cfg)
			t.Fatalf("timed out after %s waiting for a probe row to reach the new webhook %s\nwebhooks:\n%s\nits deliveries:\n%s\nstatus:\n%s",
				testkit.Timeout, created.ID, hooks, dls, status)
		}
	}
	want := insert(95)
	waitDelivered(t, s, want)
	d.stop(t)
	s.checkOnce(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.batches == 0 || s.largest > 10 || s.largest < 2 {
		t.Errorf("%d batch requests, the largest with %d events; want batches of 2 to 10", s.batches, s.largest)
	}
}
