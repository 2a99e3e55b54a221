package console_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"
	"github.com/walhook/walhook/cdc/outbox"
	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/relay"
	"github.com/walhook/walhook/testenv"
)

// TestOutboxEventsInBrowser: the console's Events page lists the events
// a polling walhook's outbox block declares, with the outbox table.
func TestOutboxEventsInBrowser(t *testing.T) {
	b := newBrowser(t)
	db := testenv.NewDB(t)
	sql, err := outbox.TableSQL("public.webhook_outbox")
	if err != nil {
		t.Fatal(err)
	}
	db.Exec(t, sql)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg, diags := config.Parse([]byte(fmt.Sprintf(`
source "postgres" {
  url  = %q
  mode = "outbox"
  outbox {
    table  = "public.webhook_outbox"
    events = ["order.paid", "order.refunded"]
  }
}
admin {
  listen = %q
  token  = %q
}
delivery {
  shutdown_timeout = "5s"
}
`, db.URL, addr, adminToken)), "outbox_console_test.hcl")
	if diags.HasErrors() {
		t.Fatalf("config: %v", diags)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	r, err := relay.New(ctx, cfg, log, relay.Options{})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("relay did not stop within 30s")
		}
	})
	base := "http://" + addr
	testkit.Eventually(t, "the admin listener", func() bool {
		res, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})

	b.run("opening the console", chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.run("logging in", chromedp.SetValue(chromedp.CSS("#token"), adminToken), chromedp.Click(chromedp.CSS("#login-form button")))
	b.run("opening the events", chromedp.Navigate(base+"/ui/#/events"), chromedp.WaitVisible(chromedp.CSS("#events-list")))
	b.waitText(`#events-list [data-event="order.paid"]`, "Outbox table")
	b.waitText(`#events-list [data-event="order.paid"]`, "public.webhook_outbox")
	b.waitText(`#events-list [data-event="order.refunded"]`, "Written by")
	b.waitText(`#events-list [data-event="order.paid"]`, "JSON Schema")
}
