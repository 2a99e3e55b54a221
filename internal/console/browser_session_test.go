package console_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestConsoleBehindProxyInBrowser drives the console in headless Chromium
// through a TLS-terminating reverse proxy the test starts in front of a
// real relay (admin.trusted_proxies = loopback): the login succeeds and
// its cookie is Secure; an open live tail stops when the session is
// logged out and when a tenant session's token is revoked; a delivery's
// page shows the body's numbers exactly as sent.
func TestConsoleBehindProxyInBrowser(t *testing.T) {
	b := newBrowser(t, chromedp.Flag("ignore-certificate-errors", true))
	e := startConsoleEnvWith(t, `  trusted_proxies = ["127.0.0.0/8"]`)
	proxy := tlsProxy(t, e.base)
	e.webhook(t, "acme", "Acme CRM sync")
	acmeTokenID, acmeToken := e.tenantToken(t, "acme")

	login := func(path, token string) {
		b.run("logging in at "+path, chromedp.Navigate(proxy.URL+path), chromedp.WaitVisible(chromedp.CSS("#token")),
			chromedp.SetValue(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS("#login-form button")),
			chromedp.WaitVisible(chromedp.CSS("#logout")))
	}

	t.Run("login through the proxy", func(t *testing.T) {
		if !strings.HasPrefix(proxy.URL, "https://") {
			t.Fatalf("the proxy is not TLS: %s", proxy.URL)
		}
		login("/ui/", adminToken)
		b.waitText("#overview-endpoints", "Acme CRM sync")
		cookies := value(b, "reading the cookies", chromedp.Action[[]*network.Cookie](func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
			r, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{proxy.URL + "/ui/"}})
			return r.Cookies, err
		}))
		var session *network.Cookie
		for _, c := range cookies {
			if c.Name == "walhook_session" {
				session = c
			}
		}
		if session == nil || !session.Secure || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict {
			t.Fatalf("session cookie through the TLS proxy: %+v, want Secure, HttpOnly, SameSite=Strict", session)
		}
		b.screenshot("proxy-overview")
	})

	t.Run("exact body", func(t *testing.T) {
		e.db.Exec(t, `INSERT INTO deals (id, organization_id, title, amount, assigned_to) VALUES (9001, 1, 'Exact', 500.00, 9007199254740993)`)
		e.db.Exec(t, `UPDATE deals SET stage = 'won' WHERE id = 9001`)
		var list struct{ Data []struct{ ID string } }
		deadline := time.Now().Add(30 * time.Second)
		for len(list.Data) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no delivery of deal.stage.changed within 30s")
			}
			e.call(t, adminToken, "GET", "/v1/deliveries?event_type=deal.stage.changed&endpoint_id=cfg:crm", "", &list)
			time.Sleep(50 * time.Millisecond) // polling the API, with the deadline above
		}
		b.run("opening the delivery", chromedp.Navigate(proxy.URL+"/ui/#/deliveries/"+list.Data[0].ID), chromedp.WaitVisible(chromedp.CSS("#payload")))
		body := b.text("#payload")
		for _, want := range []string{`"assigned_to": 9007199254740993`, `"amount": 500.00`, `"title": "Exact"`} {
			if !strings.Contains(body, want) {
				t.Errorf("the delivery page's body lacks %s:\n%s", want, body)
			}
		}
		if strings.Contains(body, "9007199254740992") {
			t.Errorf("the page rounded a number:\n%s", body)
		}
		b.run("opening the raw body", chromedp.Click(chromedp.CSS("#payload-raw-box summary")), chromedp.WaitVisible(chromedp.CSS("#payload-raw")))
		raw := b.text("#payload-raw")
		if !strings.Contains(raw, `"assigned_to":9007199254740993`) || !strings.Contains(raw, `"amount":500.00`) {
			t.Errorf("the raw body is not the one sent:\n%s", raw)
		}
		b.run("scrolling to the body", chromedp.ScrollIntoView(chromedp.CSS("#payload")))
		b.screenshot("delivery-exact-body")
	})

	// tailEnds opens the live tail, ends the session with end, and waits
	// for the page to say the session ended with why; a row inserted
	// afterwards no longer reaches the page.
	tailEnds := func(t *testing.T, page string, end func(), why string) {
		t.Helper()
		b.run("opening the tail", chromedp.Navigate(proxy.URL+page+"#/tail"), chromedp.WaitVisible(chromedp.CSS("#tail-dot.live")))
		e.db.Exec(t, `INSERT INTO contacts (organization_id, first_name) VALUES (1, 'Before')`)
		b.waitText("#tail-body", "contact.created")
		end()
		b.waitText("#login-message", why)
		if value(b, "checking the tail is gone", chromedp.Evaluate[bool](`!!document.querySelector('#tail-body')`)) {
			t.Fatal("the tail is still on the page")
		}
	}

	t.Run("tail stops after logout", func(t *testing.T) {
		tailEnds(t, "/ui/", func() {
			// Log out from another tab of the same browser: the page with
			// the tail does not know.
			status := value(b, "logging out", chromedp.Evaluate[int](`fetch('/ui/api/logout', {method: 'POST', headers: {'X-CSRF-Token': state.csrf}}).then(r => r.status)`, chromedp.EvalAwaitPromise))
			if status != http.StatusNoContent {
				t.Fatalf("logout = %d", status)
			}
		}, "the console session has ended")
		b.screenshot("tail-ended")
	})

	t.Run("tail stops after token revocation", func(t *testing.T) {
		login("/ui/t/acme/", acmeToken)
		b.waitText("#endpoints-table", "Acme CRM sync")
		tailEnds(t, "/ui/t/acme/", func() {
			if code := e.call(t, adminToken, "DELETE", "/v1/tokens/"+acmeTokenID, "", nil); code != http.StatusOK {
				t.Fatalf("revoking acme's token = %d", code)
			}
		}, "the tenant token of this session was revoked")
		b.screenshot("tail-revoked")
	})

}
