package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

// TestOutboxEventsForAPIWebhooks: with the outbox block's events list,
// `walhook webhooks create --events 'order.*' --tenant org_7` is accepted
// in polling mode and in outbox-by-slot mode, GET /v1/events lists the
// outbox events, and the webhook receives its tenant's outbox rows and
// not another tenant's; a row of an undeclared type is a failed
// evaluation.
func TestOutboxEventsForAPIWebhooks(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	t.Parallel()
	for _, polling := range []bool{true, false} {
		name := "slot"
		if polling {
			name = "polling"
		}
		t.Run(name, func(t *testing.T) { testOutboxEventsForAPIWebhooks(t, polling) })
	}
}

func testOutboxEventsForAPIWebhooks(t *testing.T, polling bool) {
	db, s, url := processTest(t, 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	const token = "outbox-catalogue-token-0123456789"
	slot := testenv.Name(t, "slot")
	mode := `mode = "outbox"`
	if !polling {
		mode = fmt.Sprintf("slot = %q\n  publication = %q", slot, slot)
	}
	cfg := filepath.Join(t.TempDir(), "walhook.hcl")
	src := fmt.Sprintf(`source "postgres" {
  url = %q
  %s
  outbox {
    table           = "public.webhook_outbox"
    poll_interval   = "200ms"
    events          = ["order.paid", "order.refunded"]
    delete_consumed = %t
  }
}
admin {
  listen         = %q
  token          = %q
  allow_networks = ["127.0.0.0/8"]
  allow_http     = true
}
delivery {
  shutdown_timeout = "10s"
}
`, db.URL, mode, !polling, addr, token)
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if code, _, errOut := walhook(ctx, "outbox", "init", "-c", cfg); code != 0 {
		t.Fatalf("outbox init: exit %d: %s", code, errOut)
	}
	d := startDaemon(t, cfg)
	if !polling {
		waitSlot(t, db, slot)
	}
	testkit.Eventually(t, "the admin API", func() bool {
		code, _, _ := walhook(ctx, "webhooks", "list", "-c", cfg)
		return code == 0
	})

	req, _ := http.NewRequest("GET", "http://"+addr+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var listed struct {
		Data []struct{ Name, Table, Source string }
	}
	err = json.NewDecoder(res.Body).Decode(&listed)
	res.Body.Close()
	if err != nil || len(listed.Data) != 2 || listed.Data[0].Name != "order.paid" || listed.Data[0].Source != "outbox" || listed.Data[0].Table != "public.webhook_outbox" {
		t.Errorf("GET /v1/events: %v %+v", err, listed)
	}

	code, _, errOut := walhook(ctx, "webhooks", "create", "-c", cfg, "--url", url+"/hook", "--events", "ship.*", "--secret", s.secret)
	if code == 0 || !strings.Contains(errOut, `event filter "ship.*" matches no event; known events: order.paid, order.refunded`) {
		t.Errorf("a filter matching no declared event: exit %d: %s", code, errOut)
	}
	code, out, errOut := walhook(ctx, "webhooks", "create", "-c", cfg, "--url", url+"/hook", "--events", "order.*", "--tenant", "org_7", "--secret", s.secret)
	if code != 0 || !strings.Contains(out, "created ep_") {
		t.Fatalf("webhooks create --events 'order.*' --tenant org_7: exit %d: %s%s", code, out, errOut)
	}

	// The relay loads the new webhook on a notification: until then, rows
	// have no subscriber. Probe until one arrives.
	insert := func(id int, tenant string) {
		db.Exec(t, `INSERT INTO webhook_outbox (event_type, key, tenant, payload) VALUES ('order.paid', $1::bigint::text, $2, jsonb_build_object('id', $1::bigint))`,
			id, tenant)
	}
	var probes []int64
	testkit.Eventually(t, "a probe row to reach the new webhook", func() bool {
		if len(s.missing(probes)) < len(probes) {
			return true // any probe: a later one may still be on its way
		}
		probe := 1001 + len(probes)
		probes = append(probes, int64(probe))
		insert(probe, "org_7")
		select {
		case <-s.arrived:
		case <-time.After(200 * time.Millisecond):
		}
		return false
	})
	insert(1, "org_8")
	insert(2, "org_7")
	// A type the outbox does not declare, though the webhook's filter
	// would match it: a failed evaluation naming why, not an event.
	db.Exec(t, `INSERT INTO webhook_outbox (event_type, key, tenant, payload) VALUES ('order.voided', '3', 'org_7', '{"id": 3}')`)
	waitDelivered(t, s, []int64{2})
	testkit.Eventually(t, "the undeclared type listed as a failed evaluation", func() bool {
		_, out, _ := walhook(ctx, "evaluations", "list", "-c", cfg, "--rule", "outbox")
		return strings.Contains(out, `event type "order.voided" is not declared`)
	})
	d.stop(t)
	if len(s.missing([]int64{3})) == 0 {
		t.Errorf("a row of an undeclared type was delivered")
	}
	if len(s.missing([]int64{1})) == 0 {
		t.Errorf("org_7's webhook received org_8's row")
	}
	s.checkOnce(t)
}
