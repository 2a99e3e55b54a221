package admin_test

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/admin"
	"github.com/walhook/walhook/internal/netguard"
	"github.com/walhook/walhook/internal/signing"
)

func TestWebhookLifecycle(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)

	r := e.expect(e.do("POST", "/v1/webhooks", map[string]any{
		"url": "https://example.com/hooks/crm?token=abc", "events": []string{"contact.*"}, "description": "CRM sync",
		"tenant": "acme", "headers": map[string]string{"X-Team": "crm"},
	}), http.StatusCreated)
	var created webhook
	r.json(t, &created)
	if !strings.HasPrefix(created.ID, "ep_") || created.Source != "api" || !created.Active || created.Signing != "standard-webhooks" ||
		created.Tenant != "acme" || created.Headers["X-Team"] != "crm" || created.Description != "CRM sync" {
		t.Errorf("created = %+v", created)
	}
	if r.header.Get("Location") != "/v1/webhooks/"+created.ID {
		t.Errorf("Location = %q", r.header.Get("Location"))
	}
	// The generated secret is shown in full, once.
	if _, err := signing.ParseSecret("standard-webhooks", created.Secret); err != nil || !strings.HasPrefix(created.Secret, "whsec_") {
		t.Fatalf("created secret %q: %v", created.Secret, err)
	}

	var got webhook
	r = e.expect(e.do("GET", "/v1/webhooks/"+created.ID, nil), http.StatusOK)
	r.json(t, &got)
	wantHint := "whsec_…" + created.Secret[len(created.Secret)-4:]
	if got.Secret != wantHint || len(got.Secrets) != 1 || got.Secrets[0].Hint != wantHint {
		t.Errorf("GET secret = %q %+v, want hint %q", got.Secret, got.Secrets, wantHint)
	}
	if strings.Contains(string(r.body), strings.TrimPrefix(created.Secret, "whsec_")[:20]) {
		t.Errorf("GET reveals the secret: %s", r.body)
	}

	// PATCH changes only what it is given.
	var patched webhook
	e.expect(e.do("PATCH", "/v1/webhooks/"+created.ID, map[string]any{"events": []string{"deal.stage.changed"}, "active": false}),
		http.StatusOK).json(t, &patched)
	if patched.Active || patched.Events[0] != "deal.stage.changed" || patched.Description != "CRM sync" || patched.Tenant != "acme" ||
		patched.URL != created.URL || patched.Secret != wantHint {
		t.Errorf("patched = %+v", patched)
	}
	r = e.expect(e.do("PATCH", "/v1/webhooks/"+created.ID, map[string]any{"events": []string{"nope"}}), http.StatusBadRequest)
	if r.apiError(t).Error.Field != "events" {
		t.Errorf("bad PATCH: %s", r.body)
	}
	r = e.expect(e.do("PATCH", "/v1/webhooks/"+created.ID, map[string]any{"secret": signing.GenerateSecret()}), http.StatusBadRequest)
	if !strings.Contains(r.apiError(t).Error.Message, "rotate-secret") {
		t.Errorf("PATCH secret: %s", r.body)
	}
	// A secret that suits one scheme only blocks switching to another.
	hmacHook := e.create(map[string]any{"url": "https://example.com/h", "events": []string{"*"}, "signing": "hmac-sha256", "secret": "plain-secret-0123456789"})
	r = e.expect(e.do("PATCH", "/v1/webhooks/"+hmacHook.ID, map[string]any{"signing": "standard-webhooks"}), http.StatusBadRequest)
	if r.apiError(t).Error.Field != "signing" || strings.Contains(string(r.body), "plain-secret-0123456789") {
		t.Errorf("PATCH signing: %s", r.body)
	}
	e.expect(e.do("PATCH", "/v1/webhooks/"+hmacHook.ID, map[string]any{"signing": "github"}), http.StatusOK)

	// The store has what the API said.
	stored, err := e.store.GetWebhook(context.Background(), created.ID)
	if err != nil || stored.Active || stored.Secrets[0].Value != created.Secret || stored.Headers["X-Team"] != "crm" {
		t.Errorf("stored = %+v, %v", stored, err)
	}

	e.expect(e.do("DELETE", "/v1/webhooks/"+created.ID, nil), http.StatusNoContent)
	e.expect(e.do("GET", "/v1/webhooks/"+created.ID, nil), http.StatusNotFound)
	e.expect(e.do("DELETE", "/v1/webhooks/"+created.ID, nil), http.StatusNotFound)
}

func TestConfigEndpointsAreReadOnly(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	var got webhook
	r := e.expect(e.do("GET", "/v1/webhooks/cfg:crm", nil), http.StatusOK)
	r.json(t, &got)
	if got.Source != "config" || got.Name != "crm" || got.URL != configEndpoint.URL || got.Secret != "" ||
		len(got.HeaderNames) != 1 || got.Headers != nil {
		t.Errorf("config endpoint = %s", r.body)
	}
	for _, c := range []struct{ method, path string }{
		{"PATCH", "/v1/webhooks/cfg:crm"}, {"DELETE", "/v1/webhooks/cfg:crm"}, {"POST", "/v1/webhooks/cfg:crm/rotate-secret"},
	} {
		r := e.expect(e.do(c.method, c.path, map[string]any{"description": "x"}), http.StatusConflict)
		if eb := r.apiError(t); eb.Error.Code != admin.CodeReadOnly || !strings.Contains(eb.Error.Message, "config file") {
			t.Errorf("%s %s: %s", c.method, c.path, r.body)
		}
	}
	// Operations on its deliveries work.
	e.expect(e.do("GET", "/v1/webhooks/cfg:crm/deliveries", nil), http.StatusOK)
	e.expect(e.do("POST", "/v1/webhooks/cfg:crm/enable", nil), http.StatusOK)
	e.expect(e.do("POST", "/v1/webhooks/cfg:crm/recover", map[string]any{"since": "2026-01-01T00:00:00Z"}), http.StatusOK)
}

func TestTenantScopingAndPagination(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	ids := map[string]string{}
	for i := 0; i < 5; i++ {
		ids[e.create(map[string]any{"url": "https://acme.example.com/h", "events": []string{"*"}, "tenant": "acme"}).ID] = "acme"
	}
	var globex string
	for i := 0; i < 3; i++ {
		globex = e.create(map[string]any{"url": "https://globex.example.com/h", "events": []string{"*"}, "tenant": "globex"}).ID
		ids[globex] = "globex"
	}

	type page struct {
		Data       []webhook `json:"data"`
		NextCursor string    `json:"next_cursor"`
	}
	seen := map[string]bool{}
	var sizes []int
	cursor := ""
	for {
		var p page
		e.expect(e.do("GET", "/v1/webhooks?tenant=acme&limit=2&cursor="+cursor, nil), http.StatusOK).json(t, &p)
		sizes = append(sizes, len(p.Data))
		for _, w := range p.Data {
			if w.Tenant != "acme" || w.Source != "api" || seen[w.ID] {
				t.Errorf("tenant page holds %+v (seen before: %v)", w, seen[w.ID])
			}
			seen[w.ID] = true
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	if len(seen) != 5 || len(sizes) != 3 || sizes[0] != 2 || sizes[2] != 1 {
		t.Errorf("acme pages %v, %d webhooks; want 2,2,1", sizes, len(seen))
	}

	// Unscoped: the config endpoint first, then every API webhook.
	var all page
	e.expect(e.do("GET", "/v1/webhooks", nil), http.StatusOK).json(t, &all)
	if len(all.Data) != 9 || all.Data[0].ID != "cfg:crm" || all.Data[0].Source != "config" || all.NextCursor != "" {
		t.Errorf("unscoped list: %d items, first %+v", len(all.Data), all.Data[0])
	}
	var onlyConfig page
	e.expect(e.do("GET", "/v1/webhooks?source=config", nil), http.StatusOK).json(t, &onlyConfig)
	if len(onlyConfig.Data) != 1 {
		t.Errorf("source=config: %d items", len(onlyConfig.Data))
	}

	// ?tenant= scopes single-webhook routes too.
	e.expect(e.do("GET", "/v1/webhooks/"+globex+"?tenant=globex", nil), http.StatusOK)
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/webhooks/" + globex + "?tenant=acme"},
		{"PATCH", "/v1/webhooks/" + globex + "?tenant=acme"},
		{"DELETE", "/v1/webhooks/" + globex + "?tenant=acme"},
		{"GET", "/v1/webhooks/" + globex + "/deliveries?tenant=acme"},
		{"GET", "/v1/webhooks/cfg:crm?tenant=acme"},
	} {
		e.expect(e.do(c.method, c.path, map[string]any{"description": "x"}), http.StatusNotFound)
	}
}

func TestRotateSecret(t *testing.T) {
	t.Parallel()
	e := setup(t, func(o *admin.Options) { o.SecretOverlap = time.Hour })
	rcv := newReceiver(t, http.StatusOK, "ok")
	hook := e.create(map[string]any{"url": rcv.URL + "/hook", "events": []string{"*"}})
	oldSecret := hook.Secret

	// Rotation with no body: the configured overlap (1h).
	var rotated webhook
	before := time.Now()
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/webhooks/"+hook.ID+"/rotate-secret", nil)
	req.Header.Set("Authorization", "Bearer "+tokenA)
	e.expect(e.send(req), http.StatusOK).json(t, &rotated)
	newSecret := rotated.Secret
	if newSecret == oldSecret || !strings.HasPrefix(newSecret, "whsec_") {
		t.Fatalf("rotated secret %q (old %q)", newSecret, oldSecret)
	}
	if len(rotated.Secrets) != 2 || rotated.Secrets[0].ExpiresAt != nil || rotated.Secrets[1].ExpiresAt == nil {
		t.Fatalf("secrets after rotation: %+v", rotated.Secrets)
	}
	if exp := *rotated.Secrets[1].ExpiresAt; exp.Before(before.Add(59*time.Minute)) || exp.After(time.Now().Add(61*time.Minute)) {
		t.Errorf("old secret expires at %v, want in about 1h", exp)
	}

	// During the overlap both secrets sign, and each verifies alone.
	e.expect(e.do("POST", "/v1/webhooks/"+hook.ID+"/test", nil), http.StatusOK)
	got := rcv.next(t)
	if n := len(strings.Fields(got.header.Get("webhook-signature"))); n != 2 {
		t.Errorf("%d signatures during the overlap, want 2: %q", n, got.header.Get("webhook-signature"))
	}
	for name, secret := range map[string]string{"old": oldSecret, "new": newSecret} {
		if err := signing.Verify("standard-webhooks", []string{secret}, got.header, got.body, time.Now(), 0); err != nil {
			t.Errorf("the %s secret does not verify during the overlap: %v", name, err)
		}
	}

	// A second rotation with an explicit secret and no overlap retires
	// every older secret at once.
	given := signing.GenerateSecret()
	e.expect(e.do("POST", "/v1/webhooks/"+hook.ID+"/rotate-secret", map[string]any{"overlap": "0s", "secret": given}), http.StatusOK).json(t, &rotated)
	if rotated.Secret != given || len(rotated.Secrets) != 1 {
		t.Fatalf("after rotation without overlap: secret %q, %d secrets", rotated.Secret, len(rotated.Secrets))
	}
	e.expect(e.do("POST", "/v1/webhooks/"+hook.ID+"/test", nil), http.StatusOK)
	got = rcv.next(t)
	if err := signing.Verify("standard-webhooks", []string{given}, got.header, got.body, time.Now(), 0); err != nil {
		t.Errorf("the newest secret does not verify: %v", err)
	}
	for _, old := range []string{oldSecret, newSecret} {
		if err := signing.Verify("standard-webhooks", []string{old}, got.header, got.body, time.Now(), 0); err == nil {
			t.Error("a retired secret still verifies")
		}
	}

	// Expired secrets are dropped from the stored list at the next rotation.
	stored, _ := e.store.GetWebhook(context.Background(), hook.ID)
	if len(stored.Secrets) != 1 {
		t.Errorf("stored %d secrets, want 1", len(stored.Secrets))
	}
	for _, body := range []map[string]any{{"overlap": "soon"}, {"overlap": "-1h"}, {"overlap": "3000h"}, {"secret": "whsec_x"}} {
		e.expect(e.do("POST", "/v1/webhooks/"+hook.ID+"/rotate-secret", body), http.StatusBadRequest)
	}
}

func TestTestEvent(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	ok := newReceiver(t, http.StatusOK, `{"received": true}`)
	hook := e.create(map[string]any{"url": ok.URL + "/hook", "events": []string{"*"}, "signing": "hmac-sha256",
		"secret": "shared-secret-of-the-receiver", "headers": map[string]string{"X-Team": "crm"}})

	type testResult struct {
		WebhookID  string  `json:"webhook_id"`
		EventID    string  `json:"event_id"`
		EventType  string  `json:"event_type"`
		StatusCode int     `json:"status_code"`
		OK         bool    `json:"ok"`
		DurationMS float64 `json:"duration_ms"`
		Error      string  `json:"error"`
		Response   string  `json:"response"`
	}
	var res testResult
	e.expect(e.do("POST", "/v1/webhooks/"+hook.ID+"/test", nil), http.StatusOK).json(t, &res)
	if !res.OK || res.StatusCode != 200 || res.EventType != "webhook.test" || res.WebhookID != hook.ID ||
		res.Response != `{"received": true}` || res.DurationMS <= 0 || res.EventID == "" {
		t.Errorf("test result = %+v", res)
	}
	got := ok.next(t)
	if err := signing.Verify("hmac-sha256", []string{"shared-secret-of-the-receiver"}, got.header, got.body, time.Now(), 0); err != nil {
		t.Errorf("test event signature: %v", err)
	}
	if got.header.Get("X-Team") != "crm" || got.header.Get(signing.HeaderEvent) != "webhook.test" {
		t.Errorf("test event headers: %v", got.header)
	}

	// A failing endpoint: the test still answers 200 with the attempt.
	bad := newReceiver(t, http.StatusInternalServerError, strings.Repeat("e", 5000))
	failing := e.create(map[string]any{"url": bad.URL, "events": []string{"*"}})
	e.expect(e.do("POST", "/v1/webhooks/"+failing.ID+"/test", nil), http.StatusOK).json(t, &res)
	if res.OK || res.StatusCode != 500 || res.Error != "status 500" || len(res.Response) > 2100 {
		t.Errorf("failing test result = %+v", res)
	}
	bad.next(t)

	// Without a Tester, /test says so.
	e3 := setup(t, func(o *admin.Options) { o.Tester = nil })
	h3 := e3.create(map[string]any{"url": "https://example.com", "events": []string{"*"}})
	r := e3.expect(e3.do("POST", "/v1/webhooks/"+h3.ID+"/test", nil), http.StatusNotImplemented)
	if r.apiError(t).Error.Code != admin.CodeNotAvailable {
		t.Errorf("no tester: %s", r.body)
	}
}

func TestOutboundSafety(t *testing.T) {
	t.Parallel()
	e := setup(t, func(o *admin.Options) { o.Guard = strictGuard })
	for _, url := range []string{
		"https://127.0.0.1/hook", "https://[::1]/hook", "https://10.0.0.1/hook", "https://192.168.1.10/hook",
		"https://169.254.169.254/latest/meta-data", "https://100.64.0.1/hook", "http://example.com/hook",
	} {
		r := e.expect(e.do("POST", "/v1/webhooks", map[string]any{"url": url, "events": []string{"*"}}), http.StatusBadRequest)
		if eb := r.apiError(t); eb.Error.Code != admin.CodeURLRefused || eb.Error.Field != "url" ||
			!strings.Contains(eb.Error.Message, "allow_") {
			t.Errorf("%s: %+v", url, eb.Error)
		}
	}
	hook := e.create(map[string]any{"url": "https://example.com/hook", "events": []string{"*"}})
	r := e.expect(e.do("PATCH", "/v1/webhooks/"+hook.ID, map[string]any{"url": "https://10.1.2.3/"}), http.StatusBadRequest)
	if r.apiError(t).Error.Code != admin.CodeURLRefused {
		t.Errorf("PATCH to a private address: %s", r.body)
	}

	// A hostname passes registration but is refused when dialled: here
	// localhost, which resolves to 127.0.0.1 (as a rebinding name would).
	rcv := newReceiver(t, http.StatusOK, "should never be reached")
	port := rcv.URL[strings.LastIndexByte(rcv.URL, ':')+1:]
	sneaky := e.create(map[string]any{"url": "https://localhost:" + port + "/hook", "events": []string{"*"}})
	var res struct {
		OK         bool   `json:"ok"`
		StatusCode int    `json:"status_code"`
		Error      string `json:"error"`
	}
	e.expect(e.do("POST", "/v1/webhooks/"+sneaky.ID+"/test", nil), http.StatusOK).json(t, &res)
	if res.OK || res.StatusCode != 0 || !strings.Contains(res.Error, "refusing to connect to 127.0.0.1") ||
		!strings.Contains(res.Error, "loopback") {
		t.Errorf("localhost test = %+v", res)
	}
	select {
	case <-rcv.got:
		t.Error("the guard let a request through to a loopback receiver")
	default:
	}

	// The allow-list opens exactly the listed networks.
	allow := &netguard.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}, AllowHTTP: true}
	e2 := setup(t, func(o *admin.Options) { o.Guard = allow })
	e2.expect(e2.do("POST", "/v1/webhooks", map[string]any{"url": "https://10.0.0.1/hook", "events": []string{"*"}}), http.StatusCreated)
	e2.expect(e2.do("POST", "/v1/webhooks", map[string]any{"url": "https://192.168.0.1/hook", "events": []string{"*"}}), http.StatusBadRequest)
	e2.expect(e2.do("POST", "/v1/webhooks", map[string]any{"url": "https://169.254.169.254/", "events": []string{"*"}}), http.StatusBadRequest)
	// Plain http only inside the allow-list.
	e2.expect(e2.do("POST", "/v1/webhooks", map[string]any{"url": "http://8.8.8.8/hook", "events": []string{"*"}}), http.StatusBadRequest)
	local := e2.create(map[string]any{"url": rcv.URL + "/hook", "events": []string{"*"}})
	e2.expect(e2.do("POST", "/v1/webhooks/"+local.ID+"/test", nil), http.StatusOK).json(t, &res)
	if !res.OK {
		t.Errorf("allowed loopback test = %+v", res)
	}
	rcv.next(t)
}

func TestWebhookRateLimit(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	r := e.expect(e.do("POST", "/v1/webhooks", map[string]any{"url": "https://example.com/rl", "events": []string{"*"}, "rate_limit": "500/sec"}), http.StatusCreated)
	var created webhook
	r.json(t, &created)
	if created.RateLimit != "500/s" {
		t.Fatalf("created rate_limit = %q, want 500/s (normalized)", created.RateLimit)
	}
	r = e.expect(e.do("POST", "/v1/webhooks", map[string]any{"url": "https://example.com/rl", "events": []string{"*"}, "rate_limit": "500/day"}), http.StatusBadRequest)
	if r.apiError(t).Error.Field != "rate_limit" {
		t.Errorf("bad rate_limit on create: %s", r.body)
	}
	var patched webhook
	e.expect(e.do("PATCH", "/v1/webhooks/"+created.ID, map[string]any{"rate_limit": "3000/m"}), http.StatusOK).json(t, &patched)
	if patched.RateLimit != "3000/m" {
		t.Errorf("patched rate_limit = %q", patched.RateLimit)
	}
	r = e.expect(e.do("PATCH", "/v1/webhooks/"+created.ID, map[string]any{"rate_limit": "0/s"}), http.StatusBadRequest)
	if r.apiError(t).Error.Field != "rate_limit" {
		t.Errorf("bad rate_limit on PATCH: %s", r.body)
	}
	var got webhook
	e.expect(e.do("GET", "/v1/webhooks/"+created.ID, nil), http.StatusOK).json(t, &got)
	if got.RateLimit != "3000/m" {
		t.Errorf("after a refused PATCH rate_limit = %q, want 3000/m kept", got.RateLimit)
	}
	var cleared webhook
	e.expect(e.do("PATCH", "/v1/webhooks/"+created.ID, map[string]any{"rate_limit": ""}), http.StatusOK).json(t, &cleared)
	if cleared.RateLimit != "" || cleared.URL != created.URL {
		t.Errorf("after clearing rate_limit: %+v", cleared)
	}
}

// TestMalformedURLsRefused: a URL a conforming client cannot send as it is
// (raw space, tab, CR/LF, other control characters) or with a fragment is
// refused at create and on PATCH with a 400 naming the field and the byte.
func TestMalformedURLsRefused(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	cases := []struct{ url, want string }{
		{"https://example.com/p?q=a b<c>", "url has a raw space at byte 25: percent-encode it (%20)"},
		{"https://example.com/a b", "a raw space at byte 21"},
		{"https://example.com/p?q=a\tb", "a tab at byte 25"},
		{"https://example.com/p?q=a\r\nX-Injected: 1", "a carriage return at byte 25"},
		{"https://example.com/p?q=a\nb", "a line feed at byte 25"},
		{"https://example.com/p?q=\x00", "the control character 0x00"},
		{"https://example.com/p?q=\"x\"", `a raw "\"" at byte 24`},
		{"https://example.com/p#frag", "must not have a #fragment"},
		{"https://example.com/p#", "must not have a #fragment"},
	}
	hook := e.create(map[string]any{"url": "https://example.com/ok?q=a%20b", "events": []string{"*"}})
	for _, c := range cases {
		for _, r := range []response{
			e.do("POST", "/v1/webhooks", map[string]any{"url": c.url, "events": []string{"*"}}),
			e.do("PATCH", "/v1/webhooks/"+hook.ID, map[string]any{"url": c.url}),
		} {
			e.expect(r, http.StatusBadRequest)
			if eb := r.apiError(t); eb.Error.Code != admin.CodeValidation || eb.Error.Field != "url" ||
				!strings.Contains(eb.Error.Message, c.want) {
				t.Errorf("%q: %+v, want a validation error saying %q", c.url, eb.Error, c.want)
			}
		}
	}
}

// TestWeakSecretsRefused: a secret shorter than 16 bytes for the schemes
// that take any string, and any secret with whitespace at its ends or
// control characters, is refused at create, PATCH and rotation; generated
// secrets pass.
func TestWeakSecretsRefused(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	const good = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	cases := []struct{ signing, secret, want string }{
		{"hmac-sha256", "a", "holds at least 16 bytes; this one holds 1"},
		{"github", "short-secret", "holds at least 16 bytes"},
		{"standard-webhooks", good + "\n", "whitespace at its start or end"},
		{"hmac-sha256", "a-long-enough-secret ", "whitespace at its start or end"},
	}
	for _, c := range cases {
		r := e.expect(e.do("POST", "/v1/webhooks", map[string]any{"url": "https://example.com/h", "events": []string{"*"}, "signing": c.signing, "secret": c.secret}), http.StatusBadRequest)
		if eb := r.apiError(t); eb.Error.Field != "secret" || !strings.Contains(eb.Error.Message, c.want) || (len(c.secret) > 4 && strings.Contains(string(r.body), strings.TrimSpace(c.secret))) {
			t.Errorf("%s %q: %+v", c.signing, c.secret, eb.Error)
		}
	}
	for _, scheme := range []string{"hmac-sha256", "github", "stripe", "standard-webhooks"} {
		hook := e.create(map[string]any{"url": "https://example.com/h", "events": []string{"*"}, "signing": scheme})
		e.expect(e.do("POST", "/v1/webhooks/"+hook.ID+"/rotate-secret", map[string]any{"secret": "tiny"}), http.StatusBadRequest)
		e.expect(e.do("POST", "/v1/webhooks/"+hook.ID+"/rotate-secret", nil), http.StatusOK)
	}
}

// TestWebhookBatch: "batch" on create takes the config's defaults for the
// fields left out and the config's bounds; PATCH changes it, null keeps
// it, false removes it.
func TestWebhookBatch(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	var created webhook
	e.expect(e.do("POST", "/v1/webhooks", map[string]any{"url": "https://example.com/b", "events": []string{"*"},
		"batch": map[string]any{"max_events": 20}}), http.StatusCreated).json(t, &created)
	if created.Batch == nil || *created.Batch != (batchJSON{MaxEvents: 20, MaxBytes: 1 << 20, MaxWait: "50ms"}) {
		t.Fatalf("created batch = %+v", created.Batch)
	}
	for _, bad := range []map[string]any{{"max_events": 0}, {"max_bytes": "2GB"}, {"max_wait": "1m"}, {"max_count": 5}} {
		r := e.expect(e.do("POST", "/v1/webhooks", map[string]any{"url": "https://example.com/b", "events": []string{"*"}, "batch": bad}), http.StatusBadRequest)
		if f := r.apiError(t).Error.Field; f != "batch" && f != "max_count" {
			t.Errorf("batch %v refused on field %q: %s", bad, f, r.body)
		}
	}
	var patched webhook
	e.expect(e.do("PATCH", "/v1/webhooks/"+created.ID, map[string]any{"batch": map[string]any{"max_bytes": "64KB", "max_wait": "0s"}}), http.StatusOK).json(t, &patched)
	if patched.Batch == nil || *patched.Batch != (batchJSON{MaxEvents: 100, MaxBytes: 64 << 10, MaxWait: "0s"}) {
		t.Errorf("patched batch = %+v", patched.Batch)
	}
	r := e.expect(e.do("PATCH", "/v1/webhooks/"+created.ID, map[string]any{"batch": map[string]any{"max_events": 5000}}), http.StatusBadRequest)
	if r.apiError(t).Error.Field != "batch" {
		t.Errorf("bad batch on PATCH: %s", r.body)
	}
	var kept webhook
	e.expect(e.do("PATCH", "/v1/webhooks/"+created.ID, map[string]any{"description": "x", "batch": nil}), http.StatusOK).json(t, &kept)
	if kept.Batch == nil || kept.Batch.MaxBytes != 64<<10 {
		t.Errorf("after a PATCH without batch: %+v", kept.Batch)
	}
	var cleared webhook
	e.expect(e.do("PATCH", "/v1/webhooks/"+created.ID, map[string]any{"batch": false}), http.StatusOK).json(t, &cleared)
	if cleared.Batch != nil {
		t.Errorf("after batch false: %+v", cleared.Batch)
	}
}
