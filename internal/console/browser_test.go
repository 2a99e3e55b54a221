package console_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write the console screenshots to docs/console/")

// chromium finds a Chromium to drive, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("browser test skipped: no chromium on PATH (apt-get install chromium; .ci/run installs it)")
	return ""
}

// browser is a headless Chromium page that records every URL it requests.
type browser struct {
	t    *testing.T
	ctx  context.Context
	mu   sync.Mutex
	urls []string
}

func newBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx}
	// Listen starts the browser; chromedp enables the Network domain.
	err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			b.mu.Lock()
			b.urls = append(b.urls, e.Request.URL)
			b.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return b
}

// run runs actions with a deadline, failing the test with what was being done.
func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(what, err)
	}
}

// fail ends the test with the page's text, for the reader of the log.
func (b *browser) fail(what string, err error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
	defer cancel()
	body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	b.t.Fatalf("%s: %v\npage text:\n%s", what, err, body)
}

// value runs an action that returns a value.
func value[T any](b *browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.fail(what, err)
	}
	return v
}

// text returns an element's text.
func (b *browser) text(sel string) string {
	b.t.Helper()
	return value(b, "reading "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// poll waits until a JavaScript expression is true.
func poll(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond))(ctx, t)
		return err
	})
}

// waitText waits until sel's text contains want.
func (b *browser) waitText(sel, want string) {
	b.t.Helper()
	b.run(fmt.Sprintf("waiting for %s to show %q", sel, want),
		poll(fmt.Sprintf(`(() => { const n = document.querySelector(%q); return !!n && n.textContent.includes(%q); })()`, sel, want)))
}

// screenshot captures the page; with -update-screenshots it is written to
// docs/console/<name>.png.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	b.run("letting the page settle", chromedp.Sleep(150*time.Millisecond))
	png := value(b, "screenshot "+name, chromedp.CaptureScreenshot())
	if len(png) < 1000 {
		b.t.Fatalf("screenshot %s is empty", name)
	}
	if *updateScreenshots {
		path := filepath.Join("..", "..", "docs", "console", name+".png")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			b.t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
}

// fetchStatus runs fetch in the page and returns the status.
func (b *browser) fetchStatus(method, path string, headers map[string]string) int {
	b.t.Helper()
	h := "{"
	for k, v := range headers {
		h += fmt.Sprintf("%q: %q,", k, v)
	}
	h += "}"
	return value(b, "fetch "+path, chromedp.Evaluate[int](fmt.Sprintf(`fetch(%q, {method: %q, headers: %s}).then(r => r.status)`, path, method, h), chromedp.EvalAwaitPromise))
}

// externalRequests are the requests that left 127.0.0.1.
func (b *browser) externalRequests(allowed string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, u := range b.urls {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "data" && pu.Host != allowed) {
			out = append(out, u)
		}
	}
	return out
}

// TestConsoleInBrowser drives the console in headless Chromium against a
// real relay and Postgres: login and overview, a failing endpoint's
// delivery with its response body, retry after the fix, secret rotation,
// the live tail, the events catalogue, a tenant's scoped view, CSRF
// refusal, and no request to any other host.
func TestConsoleInBrowser(t *testing.T) {
	b := newBrowser(t)
	e := startConsoleEnv(t)
	acme := e.webhook(t, "acme", "Acme CRM sync")
	globex := e.webhook(t, "globex", "Globex billing")
	_, acmeToken := e.tenantToken(t, "acme")
	host := strings.TrimPrefix(e.base, "http://")

	// Some traffic for the chart and the lists.
	e.db.Exec(t, `INSERT INTO contacts (organization_id, first_name, email) VALUES (1, 'Ada', 'ada@acme.test'), (2, 'Grace', 'grace@globex.test')`)

	// Log in: a wrong token is refused, the admin token opens the overview.
	b.run("opening the console", chromedp.Navigate(e.base+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.run("a wrong token", chromedp.SendKeys(chromedp.CSS("#token"), "not-the-token"), chromedp.Click(chromedp.CSS("#login-form button")))
	b.waitText("#login-message", "wrong token")
	b.screenshot("login")
	b.run("logging in", chromedp.SetValue(chromedp.CSS("#token"), adminToken), chromedp.Click(chromedp.CSS("#login-form button")))
	b.waitText("#card-source", "streaming")
	b.waitText("#overview-endpoints", "Acme CRM sync")
	b.waitText("#card-rate", "deliveries/s")

	t.Run("failing endpoint and retry", func(t *testing.T) {
		e.failing.Store(true)
		e.db.Exec(t, `INSERT INTO contacts (organization_id, first_name) VALUES (1, 'Failing')`)
		// The crm endpoint's schedule is one retry 200ms later; then the
		// delivery is failed. The list is reloaded until it shows.
		b.run("finding the failed delivery", chromedp.Navigate(e.base+"/ui/#/deliveries?endpoint_id=cfg:crm&status=failed"),
			poll(`(() => { if (document.querySelector('#deliveries-body tr[data-id]')) return true;
				if (!window.__reloading) { window.__reloading = setInterval(() => dispatchEvent(new HashChangeEvent('hashchange')), 300); } return false; })()`),
			poll(`(clearInterval(window.__reloading), true)`))
		b.screenshot("deliveries")
		b.run("opening it", chromedp.Click(chromedp.CSS("#deliveries-body tr[data-id]")))
		b.waitText("#attempts", "database is down: connection refused")
		// The headers as sent: the signature itself, the config file's
		// header masked.
		b.waitText("#attempts", "Webhook-Signature")
		b.waitText("#attempts", "v1,")
		b.waitText("#attempts", "(set in the config file)")
		if value(b, "reading the attempts", chromedp.Evaluate[bool](`document.querySelector('#attempts').textContent.includes('sk_live_console_test')`)) {
			t.Fatal("a config endpoint's header value is in the attempts")
		}
		b.waitText("#delivery-status", "failed")
		b.screenshot("delivery-failed")

		e.failing.Store(false)
		b.run("pressing retry", chromedp.Click(chromedp.CSS("#btn-retry")))
		b.waitText("#delivery-status", "delivered")
		b.waitText("#attempts", "204")
		b.screenshot("delivery-retried")
	})

	t.Run("rotate secret", func(t *testing.T) {
		b.run("opening the endpoints", chromedp.Navigate(e.base+"/ui/#/endpoints"), chromedp.WaitVisible(chromedp.CSS("#endpoints-table")))
		b.screenshot("endpoints")
		b.run("opening acme's endpoint", chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-id=%q]`, acme))), chromedp.WaitVisible(chromedp.CSS("#btn-rotate")))
		before := b.text("#secret-hint")
		b.run("rotating", chromedp.Click(chromedp.CSS("#btn-rotate")), chromedp.WaitVisible(chromedp.CSS("#new-secret-value")))
		secret := b.text("#new-secret-value")
		if !strings.HasPrefix(secret, "whsec_") {
			t.Fatalf("new secret %q", secret)
		}
		var hook struct{ Secret string }
		e.call(t, adminToken, "GET", "/v1/webhooks/"+acme, "", &hook)
		if hook.Secret == before || !strings.HasSuffix(hook.Secret, secret[len(secret)-4:]) {
			t.Fatalf("after rotation the API shows %q (before %q, new %q)", hook.Secret, before, secret)
		}
		b.screenshot("endpoint-rotated")
		b.run("sending a test event", chromedp.Click(chromedp.CSS("#btn-test")))
		b.waitText("#test-result", "thanks")
	})

	t.Run("live tail", func(t *testing.T) {
		b.run("opening the tail", chromedp.Navigate(e.base+"/ui/#/tail"), chromedp.WaitVisible(chromedp.CSS("#tail-dot.live")))
		e.db.Exec(t, `INSERT INTO contacts (organization_id, first_name) VALUES (1, 'Live'), (2, 'Tail')`)
		b.waitText("#tail-body", "contact.created")
		b.waitText("#tail-body", "Acme CRM sync")
		b.screenshot("tail")
		// The filter and "failures only" apply to the rows already shown.
		visible := `document.querySelectorAll('#tail-body tr[data-delivery]:not([hidden])').length`
		b.run("filtering the shown rows", chromedp.SendKeys(chromedp.CSS("#tail-filter"), "no-such-event"), poll(visible+` === 0`))
		b.run("clearing the filter",
			poll(`(() => { const f = document.querySelector('#tail-filter'); f.value = ''; f.dispatchEvent(new Event('input')); return true; })()`),
			poll(visible+` > 0`))
		b.run("failures only", chromedp.Click(chromedp.CSS("#tail-failures")), poll(visible+` === 0`))
		b.run("all again", chromedp.Click(chromedp.CSS("#tail-failures")), poll(visible+` > 0`))
	})

	t.Run("events", func(t *testing.T) {
		b.run("opening the events", chromedp.Navigate(e.base+"/ui/#/events"), chromedp.WaitVisible(chromedp.CSS("#events-list")))
		b.waitText("#events-list", "old.stage != new.stage")
		b.waitText("#events-list", "public.contacts")
		b.screenshot("events")
	})

	t.Run("failed evaluations and replay", func(t *testing.T) {
		// deal.closed reads closed_at, null here: the rule fails on the row.
		e.db.Exec(t, `INSERT INTO deals (organization_id, title) VALUES (1, 'No close date')`)
		b.run("finding the failed evaluation", chromedp.Navigate(e.base+"/ui/#/evaluations?rule=deal.closed"),
			poll(`(() => { if (document.querySelector('#evaluations-body tr[data-id]')) return true;
				if (!window.__evalReload) { window.__evalReload = setInterval(() => dispatchEvent(new HashChangeEvent('hashchange')), 300); } return false; })()`),
			poll(`(clearInterval(window.__evalReload), window.__evalReload = 0, true)`))
		b.waitText("#evaluations-body", "public.deals")
		b.waitText("#evaluations-body", "No close date") // the row, as text
		b.waitText("#evaluations-body", "failed")
		b.screenshot("evaluations")
		b.run("pressing replay", chromedp.Click(chromedp.CSS("#evaluations-body tr[data-id] button.replay")))
		b.waitText("#evaluations-notice", "queued for replay")
		// The running config still has the broken rule: the replay fails
		// again, and the list says so once reloaded.
		b.run("waiting for the replay to end",
			poll(`(() => { if (document.querySelector('#evaluations-body tr[data-id] button.replay')) return true;
				if (!window.__evalReload) { window.__evalReload = setInterval(() => dispatchEvent(new HashChangeEvent('hashchange')), 300); } return false; })()`),
			poll(`(clearInterval(window.__evalReload), window.__evalReload = 0, true)`))
		b.waitText("#evaluations-body", "failed")
	})

	t.Run("overview after traffic", func(t *testing.T) {
		// A backfill of one contact a second, paused at once: it is in
		// progress for as long as the test looks.
		var bf struct{ ID string }
		if code := e.call(t, adminToken, "POST", "/v1/backfills", `{"table": "contacts", "rate": 1}`, &bf); code != http.StatusCreated {
			t.Fatalf("POST /v1/backfills = %d", code)
		}
		if code := e.call(t, adminToken, "POST", "/v1/backfills/"+bf.ID+"/pause", "", nil); code != http.StatusOK {
			t.Fatalf("pausing the backfill = %d", code)
		}
		b.run("opening the overview", chromedp.Navigate(e.base+"/ui/#/overview"), chromedp.WaitVisible(chromedp.CSS("#overview-chart polyline")))
		b.waitText("#overview-endpoints", "Globex billing")
		b.waitText("#backfills-table", "public.contacts")
		b.waitText("#backfills-table", "paused")
		b.waitText("#instances-table", "leader")
		b.waitText("#instances-table", "alive")
		b.screenshot("overview")
		if code := e.call(t, adminToken, "DELETE", "/v1/backfills/"+bf.ID, "", nil); code != http.StatusOK {
			t.Fatalf("cancelling the backfill = %d", code)
		}
		b.run("reopening the overview", chromedp.Reload())
		b.waitText("#overview-backfills", "No backfill in progress.")
	})

	t.Run("refused without session or CSRF token", func(t *testing.T) {
		if s := b.fetchStatus("POST", "/v1/webhooks/"+acme+"/enable", nil); s != http.StatusForbidden {
			t.Fatalf("POST from the page without the CSRF header = %d, want 403", s)
		}
		if s := b.fetchStatus("POST", "/ui/api/logout", map[string]string{"X-CSRF-Token": "guess"}); s != http.StatusForbidden {
			t.Fatalf("logout with a wrong CSRF token = %d, want 403", s)
		}
	})

	t.Run("tenant view", func(t *testing.T) {
		b.run("logging out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#token")))
		if s := b.fetchStatus("GET", "/v1/webhooks", nil); s != http.StatusUnauthorized {
			t.Fatalf("after logout GET /v1/webhooks = %d, want 401", s)
		}
		b.run("opening acme's URL", chromedp.Navigate(e.base+"/ui/t/acme/"), chromedp.WaitVisible(chromedp.CSS("#token")),
			chromedp.SetValue(chromedp.CSS("#token"), acmeToken), chromedp.Click(chromedp.CSS("#login-form button")),
			chromedp.WaitVisible(chromedp.CSS("#endpoints-table")))
		table := b.text("#endpoints-table")
		if !strings.Contains(table, "Acme CRM sync") || strings.Contains(table, "Globex") || strings.Contains(table, "crm") && strings.Contains(table, "config") {
			t.Fatalf("acme's endpoints show:\n%s", table)
		}
		if b.text("#who-tenant") != "acme" {
			t.Fatalf("tenant badge %q", b.text("#who-tenant"))
		}
		b.screenshot("tenant-endpoints")
		b.run("acme's deliveries", chromedp.Navigate(e.base+"/ui/t/acme/#/deliveries"), chromedp.WaitVisible(chromedp.CSS("#deliveries-body tr[data-id]")))
		rows := b.text("#deliveries-body")
		if strings.Contains(rows, "Globex") || strings.Contains(rows, "globex") || strings.Contains(rows, "crm") {
			t.Fatalf("acme's deliveries show another tenant's:\n%s", rows)
		}
		b.screenshot("tenant-deliveries")
		if s := b.fetchStatus("GET", "/v1/webhooks/"+globex, nil); s != http.StatusNotFound {
			t.Fatalf("acme reading globex's webhook = %d, want 404", s)
		}
		if s := b.fetchStatus("GET", "/v1/webhooks/cfg:crm", nil); s != http.StatusNotFound {
			t.Fatalf("acme reading the config endpoint = %d, want 404", s)
		}
		if s := b.fetchStatus("GET", "/v1/evaluations", nil); s != http.StatusForbidden {
			t.Fatalf("acme listing failed evaluations = %d, want 403", s)
		}
		if value(b, "looking for the evaluations link", chromedp.Evaluate[bool](`!!document.querySelector('#nav-evaluations')`)) {
			t.Fatal("a tenant sees the failed evaluations page in the menu")
		}
		if s := b.fetchStatus("GET", "/v1/tokens", nil); s != http.StatusForbidden {
			t.Fatalf("acme listing tokens = %d, want 403", s)
		}
		// The tenant's events: names, descriptions and body schemas, never
		// tables, rule conditions or config endpoints.
		b.run("acme's events", chromedp.Navigate(e.base+"/ui/t/acme/#/events"), chromedp.WaitVisible(chromedp.CSS("#events-list")))
		b.waitText("#events-list", "A contact was added to the CRM")
		events := b.text("main")
		for _, leak := range []string{"contacts", "deals", "old.stage", "crm", "Operations"} {
			if strings.Contains(strings.ReplaceAll(events, "CRM", ""), leak) {
				t.Fatalf("acme's events page shows %q:\n%s", leak, events)
			}
		}
		if !strings.Contains(events, "your webhooks can subscribe to") {
			t.Fatalf("acme's events page is worded for an operator:\n%s", events)
		}
		b.screenshot("tenant-events")
	})

	if ext := b.externalRequests(host); len(ext) > 0 {
		t.Fatalf("the console requested other hosts: %v", ext)
	}
}
