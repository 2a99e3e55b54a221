package console_test

import (
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/walhook/walhook/internal/console"
)

// browserish is an HTTP client with a cookie jar, as a browser would be.
type browserish struct {
	t    *testing.T
	c    *http.Client
	base string
	csrf string
}

func newBrowserish(t *testing.T, base string) *browserish {
	jar, _ := cookiejar.New(nil)
	return &browserish{t: t, c: &http.Client{Jar: jar}, base: base}
}

func (b *browserish) do(method, path, body string, csrf bool) *http.Response {
	b.t.Helper()
	req, _ := http.NewRequest(method, b.base+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if csrf {
		req.Header.Set(console.CSRFHeader, b.csrf)
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	res.Body.Close()
	return res
}

func (b *browserish) login(token string) *http.Response {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.base+"/ui/api/login", strings.NewReader(`{"token": "`+token+`"}`))
	req.Header.Set("Content-Type", "application/json")
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	var s struct {
		CSRF string `json:"csrf_token"`
	}
	_ = json.NewDecoder(res.Body).Decode(&s)
	b.csrf = s.CSRF
	return res
}

// TestConsoleSessions: a wrong token is refused and repeated failures must
// wait; a login sets an HttpOnly, SameSite=Strict cookie; state-changing
// requests need the CSRF token; logout ends the session; the page carries
// a strict CSP; a revoked tenant token ends its sessions.
func TestConsoleSessions(t *testing.T) {
	t.Parallel()
	e := startConsoleEnv(t)

	page, err := http.Get(e.base + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	page.Body.Close()
	if page.StatusCode != http.StatusOK || page.Header.Get("Content-Security-Policy") != console.ContentSecurityPolicy {
		t.Fatalf("GET /ui/ = %d, CSP %q", page.StatusCode, page.Header.Get("Content-Security-Policy"))
	}
	if !strings.Contains(console.ContentSecurityPolicy, "script-src 'self'") || strings.Contains(console.ContentSecurityPolicy, "unsafe-inline") {
		t.Fatalf("CSP is not strict: %s", console.ContentSecurityPolicy)
	}

	b := newBrowserish(t, e.base)
	for i := 0; i < 3; i++ {
		if res := b.login("wrong-token"); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d, want 401", i, res.StatusCode)
		}
	}
	res := b.login(adminToken)
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Fatalf("after 3 wrong tokens a login = %d (Retry-After %q), want 429 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
	}

	// Another address is not held back: the throttle is per client, and the
	// test cannot change its address, so a fresh relay stands in for it.
	e2 := startConsoleEnv(t)
	b = newBrowserish(t, e2.base)
	res = b.login(adminToken)
	if res.StatusCode != http.StatusOK || b.csrf == "" {
		t.Fatalf("login = %d, csrf %q", res.StatusCode, b.csrf)
	}
	var cookie *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == console.CookieName {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Secure {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, not Secure over plain http", cookie)
	}
	if res := b.do("GET", "/v1/webhooks", "", false); res.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/webhooks with the session = %d", res.StatusCode)
	}
	id := e2.webhook(t, "acme", "acme portal")
	if res := b.do("PATCH", "/v1/webhooks/"+id, `{"active": false}`, false); res.StatusCode != http.StatusForbidden {
		t.Fatalf("PATCH without the CSRF token = %d, want 403", res.StatusCode)
	}
	if res := b.do("POST", "/ui/api/logout", "", false); res.StatusCode != http.StatusForbidden {
		t.Fatalf("logout without the CSRF token = %d, want 403", res.StatusCode)
	}
	if res := b.do("PATCH", "/v1/webhooks/"+id, `{"active": false}`, true); res.StatusCode != http.StatusOK {
		t.Fatalf("PATCH with the CSRF token = %d", res.StatusCode)
	}
	if res := newBrowserish(t, e2.base).do("GET", "/v1/webhooks", "", false); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /v1/webhooks with no session = %d, want 401", res.StatusCode)
	}
	if res := newBrowserish(t, e2.base).do("GET", "/ui/api/overview", "", false); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /ui/api/overview with no session = %d, want 401", res.StatusCode)
	}
	if res := b.do("POST", "/ui/api/logout", "", true); res.StatusCode != http.StatusNoContent {
		t.Fatalf("logout = %d", res.StatusCode)
	}
	if res := b.do("GET", "/v1/webhooks", "", false); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /v1/webhooks after logout = %d, want 401", res.StatusCode)
	}

	// A tenant token opens a session; revoking the token ends it.
	tokID, token := e2.tenantToken(t, "acme")
	tb := newBrowserish(t, e2.base)
	if res := tb.login(token); res.StatusCode != http.StatusOK {
		t.Fatalf("tenant login = %d", res.StatusCode)
	}
	if res := tb.do("GET", "/ui/api/overview", "", false); res.StatusCode != http.StatusForbidden {
		t.Fatalf("tenant overview = %d, want 403", res.StatusCode)
	}
	if code := e2.call(t, adminToken, "DELETE", "/v1/tokens/"+tokID, "", nil); code != http.StatusOK {
		t.Fatalf("revoking = %d", code)
	}
	if res := tb.do("GET", "/v1/webhooks", "", false); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("tenant session after revocation = %d, want 401", res.StatusCode)
	}
}
