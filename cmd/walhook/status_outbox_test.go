package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/testkit"
)

// TestOutboxBadRowsThroughTheBinary: the walhook binary polling a
// hand-made outbox table with a NULL event_type and a text payload that is
// not JSON delivers the good rows around them and consumes every row;
// `walhook status` then shows the outbox backlog and the two failed
// evaluations and no slot, and `walhook evaluations list --rule outbox`
// names the rows and why.
func TestOutboxBadRowsThroughTheBinary(t *testing.T) {
	db, s, url := processTest(t, 0)
	cfg := writeOutboxConfig(t, db, url, s.secret)
	db.Exec(t, `CREATE TABLE webhook_outbox (
		id bigserial PRIMARY KEY, event_type text, key text, tenant text, payload text,
		created_at timestamptz NOT NULL DEFAULT now())`)
	d := startDaemon(t, cfg)
	db.Exec(t, `INSERT INTO webhook_outbox (event_type, payload) VALUES
		('thing.created', '{"id": 1}'), (NULL, '{"id": 2}'), ('thing.created', '{not json}'), ('thing.created', '{"id": 4}')`)
	waitDelivered(t, s, []int64{1, 4})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var text string
	testkit.EventuallyWithin(t, 30*time.Second, "status to show an empty outbox and 2 failed evaluations", func() bool {
		code, out, errOut := walhook(ctx, "status", "-c", cfg)
		if code != 0 {
			t.Fatalf("status exit %d: %s", code, errOut)
		}
		text = out
		return strings.Contains(text, "0 rows waiting") && strings.Contains(text, "failed evaluations: 2\n")
	})
	if !strings.HasPrefix(text, "outbox public.webhook_outbox: 0 rows waiting\n") || strings.Contains(text, "slot ") || strings.Contains(text, "publication ") {
		t.Errorf("status in polling mode:\n%s", text)
	}
	code, out, errOut := walhook(ctx, "status", "-c", cfg, "--json")
	var rep map[string]json.RawMessage
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep["outbox"] == nil || rep["slot"] != nil {
		t.Errorf("status --json (exit %d, %s):\n%s", code, errOut, out)
	}
	code, out, errOut = walhook(ctx, "evaluations", "list", "-c", cfg, "--rule", "outbox")
	if code != 0 || !strings.Contains(out, "outbox row 2: event_type is NULL") ||
		!strings.Contains(out, "outbox row 3: payload is not a JSON object or array") {
		t.Errorf("evaluations list (exit %d, %s):\n%s", code, errOut, out)
	}
	d.stop(t)
}

// TestStatusOutboxBacklog: in polling mode, status reads the rows waiting
// and the age of the oldest, even before walhook ever ran.
func TestStatusOutboxBacklog(t *testing.T) {
	db, s, url := processTest(t, 0)
	cfg := writeOutboxConfig(t, db, url, s.secret)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if code, _, errOut := walhook(ctx, "outbox", "init", "-c", cfg); code != 0 {
		t.Fatalf("outbox init: %s", errOut)
	}
	db.Exec(t, `INSERT INTO webhook_outbox (event_type, payload, created_at)
		SELECT 'thing.created', '{}', now() - interval '2 minutes' FROM generate_series(1, 3)`)
	code, out, errOut := walhook(ctx, "status", "-c", cfg)
	if code != 0 || !strings.Contains(out, "outbox public.webhook_outbox: 3 rows waiting, oldest 2m0s\n") || strings.Contains(out, "slot ") {
		t.Errorf("status (exit %d, %s):\n%s", code, errOut, out)
	}
}
