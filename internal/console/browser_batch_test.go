package console_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/walhook/walhook/internal/console"
)

// warehouseBlock is an HCL endpoint that batches the deal events.
const warehouseBlock = `
endpoint "warehouse" {
  url    = "RECEIVER"
  events = ["deal.*"]
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
  batch {
    max_events = 200
    max_bytes  = "512KB"
    max_wait   = "250ms"
  }
}
`

// TestConsoleBatches drives the console in headless Chromium against a
// real relay: the endpoints list and an endpoint's page show each
// endpoint's batch (HCL and API), an API webhook's batch is changed from
// its page with the API's validation error shown as given, and the events
// page, for a batching endpoint, shows the batch body's sample and the
// same JSON Schema the API answers for that endpoint, to the admin and
// to the webhook's tenant.
func TestConsoleBatches(t *testing.T) {
	b := newBrowser(t)
	e := startConsoleEnvBlocks(t, "", warehouseBlock)
	var bulk struct{ ID string }
	body := fmt.Sprintf(`{"url": %q, "events": ["contact.*"], "tenant": "acme", "description": "Acme bulk sync",
		"batch": {"max_events": 50, "max_bytes": "256KB", "max_wait": "200ms"}}`, e.tenants.URL)
	if code := e.call(t, adminToken, "POST", "/v1/webhooks", body, &bulk); code != http.StatusCreated {
		t.Fatalf("creating the batched webhook: %d", code)
	}
	plain := e.webhook(t, "acme", "Acme one by one")

	b.run("logging in", chromedp.Navigate(e.base+"/ui/#/endpoints"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SetValue(chromedp.CSS("#token"), adminToken), chromedp.Click(chromedp.CSS("#login-form button")),
		chromedp.WaitVisible(chromedp.CSS("#endpoints-table")))
	row := func(id string) string { return fmt.Sprintf(`#endpoints-table tr[data-id=%q] td.batch`, id) }
	b.waitText(row(bulk.ID), "≤ 50 events · 256KB · 200ms")
	b.waitText(row("cfg:warehouse"), "≤ 200 events · 512KB · 250ms")
	b.waitText(row(plain), "one event per request")
	b.waitText(row("cfg:crm"), "one event per request")
	b.screenshot("endpoints-batch")

	t.Run("config endpoint", func(t *testing.T) {
		b.run("opening warehouse", chromedp.Navigate(e.base+"/ui/#/endpoints/cfg:warehouse"), chromedp.WaitVisible(chromedp.CSS("#batch-panel")))
		b.waitText("#endpoint-batch", "Batches of up to 200 events or 512KB, sent within 250ms")
		b.waitText("#batch-panel", "batch block in the config file")
		if value(b, "looking for a batch form", chromedp.Evaluate[bool](`!!document.querySelector('#batch-form')`)) {
			t.Fatal("a config endpoint's batch can be edited in the console")
		}
	})

	t.Run("edit an API webhook's batch", func(t *testing.T) {
		b.run("opening the batched webhook", chromedp.Navigate(e.base+"/ui/#/endpoints/"+bulk.ID), chromedp.WaitVisible(chromedp.CSS("#batch-form")))
		b.waitText("#endpoint-batch", "Batches of up to 50 events or 256KB, sent within 200ms")
		if got := value(b, "reading the form", chromedp.Evaluate[string](`['#batch-max-events', '#batch-max-bytes', '#batch-max-wait'].map((s) => document.querySelector(s).value).join(' ')`)); got != "50 256KB 200ms" {
			t.Fatalf("the form holds %q", got)
		}
		// Too many events: the API's message, word for word.
		var refused struct{ Error struct{ Message string } }
		if code := e.call(t, adminToken, "PATCH", "/v1/webhooks/"+bulk.ID, `{"batch": {"max_events": 5000, "max_bytes": "256KB", "max_wait": "200ms"}}`, &refused); code != http.StatusBadRequest {
			t.Fatalf("PATCH with max_events 5000 = %d", code)
		}
		b.run("saving 5000 events", chromedp.SetValue(chromedp.CSS("#batch-max-events"), "5000"), chromedp.Click(chromedp.CSS("#btn-batch-save")))
		b.waitText("#batch-message", refused.Error.Message)
		b.screenshot("endpoint-batch-refused")
		b.run("saving a bad wait", chromedp.SetValue(chromedp.CSS("#batch-max-events"), "20"), chromedp.SetValue(chromedp.CSS("#batch-max-wait"), "soon"),
			chromedp.Click(chromedp.CSS("#btn-batch-save")))
		b.waitText("#batch-message", `max_wait "soon" is not a duration`)
		// An empty field takes the default.
		b.run("saving 20 events within 1s", poll(`(document.querySelector('#batch-max-bytes').value = '', true)`), chromedp.SetValue(chromedp.CSS("#batch-max-wait"), "1s"),
			chromedp.Click(chromedp.CSS("#btn-batch-save")))
		b.waitText("#endpoint-notice", "Batching saved.")
		b.waitText("#endpoint-batch", "Batches of up to 20 events or 1MB, sent within 1s")
		var hook struct {
			Batch *struct {
				MaxEvents int    `json:"max_events"`
				MaxBytes  int    `json:"max_bytes"`
				MaxWait   string `json:"max_wait"`
			}
		}
		e.call(t, adminToken, "GET", "/v1/webhooks/"+bulk.ID, "", &hook)
		if hook.Batch == nil || hook.Batch.MaxEvents != 20 || hook.Batch.MaxBytes != 1<<20 || hook.Batch.MaxWait != "1s" {
			t.Fatalf("after saving, the API shows batch %+v", hook.Batch)
		}
		b.screenshot("endpoint-batch")

		b.run("opening the unbatched webhook", chromedp.Navigate(e.base+"/ui/#/endpoints/"+plain), chromedp.WaitVisible(chromedp.CSS("#batch-form")))
		b.waitText("#endpoint-batch", "One event per request")
		b.run("sending in batches with the defaults", chromedp.Click(chromedp.CSS("#btn-batch-save")))
		b.waitText("#endpoint-batch", "Batches of up to 100 events or 1MB, sent within 50ms")
		b.run("back to one event per request", chromedp.Click(chromedp.CSS("#btn-batch-off")))
		b.waitText("#endpoint-notice", "one event per request")
		b.waitText("#endpoint-batch", "One event per request")
	})

	// batchSchema reads the batch body schema an event panel shows.
	batchSchema := func(event string) any {
		t.Helper()
		sel := fmt.Sprintf(`[data-event=%q] pre.batch-schema`, event)
		text := value(b, "reading "+sel, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).textContent`, sel)))
		var v any
		if err := json.Unmarshal([]byte(text), &v); err != nil {
			t.Fatalf("%s is not JSON: %v\n%s", sel, err, text)
		}
		return v
	}
	apiSchema := func(event, endpoint string) any {
		t.Helper()
		var v any
		if code := e.call(t, adminToken, "GET", "/v1/events/"+event+"/schema?endpoint="+endpoint, "", &v); code != http.StatusOK {
			t.Fatalf("schema of %s for %s = %d", event, endpoint, code)
		}
		return v
	}

	t.Run("batch body of an API webhook", func(t *testing.T) {
		// The previous page (another webhook's) has the same link: wait
		// for this webhook's page before following it.
		b.run("opening the batched webhook", chromedp.Navigate(e.base+"/ui/#/endpoints/"+bulk.ID), chromedp.WaitVisible(chromedp.CSS("#endpoint-bodies")))
		b.waitText("#endpoint-batch", "Batches of up to 20 events or 1MB, sent within 1s")
		b.run("opening the bodies from the webhook's page", chromedp.Click(chromedp.CSS("#endpoint-bodies")),
			chromedp.WaitVisible(chromedp.CSS(`[data-event="contact.created"] pre.batch-sample`)))
		b.waitText("#events-endpoint-about", "Acme bulk sync — Batches of up to 20 events or 1MB, sent within 1s")
		sample := b.text(`[data-event="contact.created"] pre.batch-sample`)
		for _, want := range []string{`"type": "batch"`, `"id": "bat_`, `"data": [`, `"type": "contact.created"`} {
			if !strings.Contains(sample, want) {
				t.Errorf("the batch sample misses %s:\n%s", want, sample)
			}
		}
		if got, want := batchSchema("contact.created"), apiSchema("contact.created", bulk.ID); !reflect.DeepEqual(got, want) {
			t.Errorf("the console's batch schema is not the API's:\n got %v\nwant %v", got, want)
		}
		b.waitText(`[data-event="deal.stage.changed"]`, "does not subscribe to this event")
		b.run("scrolling to the top", poll(`(scrollTo(0, 0), true)`))
		b.screenshot("events-batch")
	})

	t.Run("batch body of a config endpoint", func(t *testing.T) {
		// Without an endpoint picked, the config endpoint's batch body is
		// listed under the event.
		b.run("no endpoint picked", chromedp.Navigate(e.base+"/ui/#/events"), chromedp.WaitVisible(chromedp.CSS(`[data-event="deal.stage.changed"] details.body`)))
		b.waitText(`[data-event="deal.stage.changed"] details.body summary`, "Batch body of warehouse")
		b.run("picking warehouse", chromedp.SetValue(chromedp.CSS("#events-endpoint"), "cfg:warehouse"),
			poll(`(document.querySelector('#events-endpoint').dispatchEvent(new Event('change')), true)`),
			chromedp.WaitVisible(chromedp.CSS("#events-endpoint-about")))
		b.waitText("#events-endpoint-about", "warehouse — Batches of up to 200 events or 512KB, sent within 250ms")
		b.waitText(`[data-event="deal.stage.changed"]`, "in batches of up to 200 events")
		if got, want := batchSchema("deal.stage.changed"), apiSchema("deal.stage.changed", "warehouse"); !reflect.DeepEqual(got, want) {
			t.Errorf("the console's batch schema is not the API's:\n got %v\nwant %v", got, want)
		}
		b.waitText(`[data-event="contact.created"]`, "does not subscribe to this event")
		b.run("an endpoint that does not exist", chromedp.Navigate(e.base+"/ui/#/events?endpoint=ep_nosuch"), chromedp.WaitVisible(chromedp.CSS(".flash.bad")))
		b.waitText("main", "There is no endpoint ep_nosuch to show bodies for.")
	})

	t.Run("tenant", func(t *testing.T) {
		_, token := e.tenantToken(t, "acme")
		b.run("logging in as acme", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#token")),
			chromedp.Navigate(e.base+"/ui/t/acme/#/events?endpoint="+bulk.ID), chromedp.WaitVisible(chromedp.CSS("#token")),
			chromedp.SetValue(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#login-form button")),
			chromedp.WaitVisible(chromedp.CSS(`[data-event="contact.created"] pre.batch-sample`)))
		var want any
		if code := e.call(t, token, "GET", "/v1/events/contact.created/schema?endpoint="+bulk.ID, "", &want); code != http.StatusOK {
			t.Fatalf("acme reading its webhook's schema = %d", code)
		}
		if got := batchSchema("contact.created"); !reflect.DeepEqual(got, want) {
			t.Errorf("acme's batch schema is not the API's:\n got %v\nwant %v", got, want)
		}
		picker := b.text("#events-endpoint")
		if !strings.Contains(picker, "Acme bulk sync (batches)") || strings.Contains(picker, "warehouse") || strings.Contains(picker, "crm") {
			t.Errorf("acme can pick: %q", picker)
		}
	})
}

// TestBatchText checks the console's batch wording and sizes (written as
// max_bytes is, so the form can send them back), in the browser that runs
// them; no relay is needed for the page's script.
func TestBatchText(t *testing.T) {
	b := newBrowser(t)
	srv := httptest.NewServer(console.New(console.Options{}))
	t.Cleanup(srv.Close)
	b.run("loading the console", chromedp.Navigate(srv.URL+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	for _, tc := range []struct{ expr, want string }{
		{`sizeText(1048576)`, "1MB"},
		{`sizeText(67108864)`, "64MB"},
		{`sizeText(524288)`, "512KB"},
		{`sizeText(1024)`, "1KB"},
		{`sizeText(1536)`, "1536B"},
		{`batchText(null)`, "One event per request"},
		{`batchText({max_events: 1, max_bytes: 1024, max_wait: '0s'})`, "Batches of up to 1 event or 1KB, sent within 0s"},
		{`batchText({max_events: 100, max_bytes: 1048576, max_wait: '50ms'})`, "Batches of up to 100 events or 1MB, sent within 50ms"},
		{`batchCell({max_events: 200, max_bytes: 524288, max_wait: '250ms'}).textContent`, "batch ≤ 200 events · 512KB · 250ms"},
		{`batchCell(undefined).textContent`, "one event per request"},
	} {
		if got := value(b, tc.expr, chromedp.Evaluate[string](tc.expr)); got != tc.want {
			t.Errorf("%s = %q, want %q", tc.expr, got, tc.want)
		}
	}
}
