package console_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/admin"
	"github.com/walhook/walhook/internal/console"
	"github.com/walhook/walhook/internal/rules"
)

// clock is a settable time for the backoff.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// listener is the admin listener's handler (console and API, no store)
// as front and backoff configure it.
func listener(front *admin.Frontend, backoff *admin.AuthBackoff) http.Handler {
	c := console.New(console.Options{Auth: admin.NewAuthenticator([]string{adminToken}, nil), Frontend: front,
		Backoff: backoff, Logger: zerolog.New(io.Discard)})
	return admin.New(admin.Options{Tokens: []string{adminToken}, Sessions: c, Console: c, Frontend: front, Backoff: c.Backoff(),
		Events: []rules.EventInfo{{Name: "contact.created", Table: "public.contacts", Ops: []string{"insert"}}}, Logger: zerolog.New(io.Discard)})
}

// tlsProxy is a TLS-terminating reverse proxy to backend that keeps Host
// and sets X-Forwarded-For, -Host and -Proto, as nginx or Caddy do.
func tlsProxy(t *testing.T, backend string) *httptest.Server {
	t.Helper()
	target, _ := url.Parse(backend)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	p := httptest.NewTLSServer(&httputil.ReverseProxy{Transport: tr, Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host
		pr.SetXForwarded()
	}})
	t.Cleanup(p.Close)
	return p
}

// proxyClient is a browser-like client of the proxy: cookie jar, the
// proxy's certificate trusted.
func proxyClient(p *httptest.Server) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Transport: p.Client().Transport, Jar: jar}
}

// loginVia logs in at base with origin and returns the answer and the
// session cookie.
func loginVia(t *testing.T, c *http.Client, base, origin, body string) (*http.Response, *http.Cookie) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/ui/api/login", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for _, ck := range res.Cookies() {
		if ck.Name == console.CookieName {
			return res, ck
		}
	}
	return res, nil
}

// TestLoginThroughTLSProxy: behind a TLS-terminating proxy, a login from
// the proxy's origin succeeds and its cookie is Secure, whether walhook
// learns the origin from admin.public_url or from X-Forwarded-* of a
// trusted proxy; the same headers from an untrusted address are ignored.
func TestLoginThroughTLSProxy(t *testing.T) {
	t.Parallel()
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	for _, c := range []struct {
		name  string
		front func(proxyURL string) *admin.Frontend
	}{
		{"trusted_proxies", func(string) *admin.Frontend { return &admin.Frontend{TrustedProxies: loopback} }},
		{"public_url", func(p string) *admin.Frontend { return &admin.Frontend{PublicURL: p} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var front admin.Frontend
			backend := httptest.NewServer(listener(&front, nil))
			t.Cleanup(backend.Close)
			proxy := tlsProxy(t, backend.URL)
			front = *c.front(proxy.URL)

			client := proxyClient(proxy)
			res, ck := loginVia(t, client, proxy.URL, proxy.URL, `{"token": "`+adminToken+`"}`)
			if res.StatusCode != http.StatusOK || ck == nil || !ck.Secure || !ck.HttpOnly {
				t.Fatalf("login through the proxy = %d, cookie %+v: want 200 and a Secure cookie", res.StatusCode, ck)
			}
			// The session works through the proxy, state changes included.
			req, _ := http.NewRequest("GET", proxy.URL+"/v1/events", nil)
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET /v1/events with the session: %d", res.StatusCode)
			}
			// The login by link sends no Origin: the cookie is Secure too.
			if res, ck := loginVia(t, proxyClient(proxy), proxy.URL, "", `{"token": "`+adminToken+`"}`); res.StatusCode != http.StatusOK || ck == nil || !ck.Secure {
				t.Fatalf("login without Origin = %d, cookie %+v", res.StatusCode, ck)
			}
			// Another origin is refused, and says so.
			if res, _ := loginVia(t, proxyClient(proxy), proxy.URL, "https://evil.example", `{"token": "`+adminToken+`"}`); res.StatusCode != http.StatusForbidden {
				t.Fatalf("login from another origin = %d, want 403", res.StatusCode)
			}
		})
	}

	t.Run("untrusted forwarded headers", func(t *testing.T) {
		t.Parallel()
		front := &admin.Frontend{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
		backend := httptest.NewServer(listener(front, nil))
		t.Cleanup(backend.Close)
		proxy := tlsProxy(t, backend.URL)
		res, _ := loginVia(t, proxyClient(proxy), proxy.URL, proxy.URL, `{"token": "`+adminToken+`"}`)
		if res.StatusCode != http.StatusForbidden {
			t.Fatalf("login through a proxy that is not trusted = %d, want 403 (its X-Forwarded-Proto is not believed)", res.StatusCode)
		}
		res, ck := loginVia(t, proxyClient(proxy), proxy.URL, "", `{"token": "`+adminToken+`"}`)
		if res.StatusCode != http.StatusOK || ck == nil || ck.Secure {
			t.Fatalf("login through an untrusted proxy without Origin = %d, cookie %+v: want 200 and no Secure", res.StatusCode, ck)
		}
	})
}

// TestForeignOriginReported: a state-changing request with the right CSRF
// token from another origin is refused as coming from another origin, not
// as a CSRF token problem.
func TestForeignOriginReported(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(listener(nil, nil))
	t.Cleanup(srv.Close)
	b := newBrowserish(t, srv.URL)
	if res := b.login(adminToken); res.StatusCode != http.StatusOK {
		t.Fatalf("login = %d", res.StatusCode)
	}
	for _, path := range []string{"/ui/api/logout", "/v1/webhooks/ep_x/enable"} {
		req, _ := http.NewRequest("POST", srv.URL+path, nil)
		req.Header.Set(console.CSRFHeader, b.csrf)
		req.Header.Set("Origin", "https://evil.example")
		res, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "another origin") ||
			!strings.Contains(string(body), "https://evil.example") || strings.Contains(string(body), "CSRF") {
			t.Errorf("POST %s from another origin = %d %s", path, res.StatusCode, body)
		}
	}
}

// TestLoginBodyTooLarge: an oversized login body is 413, not 400.
func TestLoginBodyTooLarge(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(listener(nil, nil))
	t.Cleanup(srv.Close)
	big := `{"token": "` + strings.Repeat("a", 10<<20) + `"}`
	res, _ := loginVia(t, srv.Client(), srv.URL, "", big)
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a 10 MB login body = %d, want 413", res.StatusCode)
	}
}

// TestAuthBackoffAcrossRoutes: wrong tokens on the console login or on
// /v1 hold back every route that takes a token from that address, the
// right token included, until the wait is over; the failures and refusals
// are counted.
func TestAuthBackoffAcrossRoutes(t *testing.T) {
	t.Parallel()
	bearer := func(c *http.Client, base, token string) *http.Response {
		req, _ := http.NewRequest("GET", base+"/v1/events", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	for _, first := range []string{admin.RouteConsole, admin.RouteAPI} {
		t.Run("wrong tokens on "+first, func(t *testing.T) {
			t.Parallel()
			clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			backoff := admin.NewAuthBackoff(clk.Now)
			srv := httptest.NewServer(listener(nil, backoff))
			t.Cleanup(srv.Close)
			c := srv.Client()
			for i := 0; i < 3; i++ {
				var res *http.Response
				if first == admin.RouteConsole {
					res, _ = loginVia(t, c, srv.URL, "", `{"token": "wrong"}`)
				} else {
					res = bearer(c, srv.URL, "wrong-token")
				}
				if res.StatusCode != http.StatusUnauthorized {
					t.Fatalf("wrong token %d = %d, want 401", i, res.StatusCode)
				}
			}
			res := bearer(c, srv.URL, adminToken)
			if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") != "1" {
				t.Fatalf("the right bearer token after 3 wrong ones = %d (Retry-After %q), want 429", res.StatusCode, res.Header.Get("Retry-After"))
			}
			if res, _ := loginVia(t, c, srv.URL, "", `{"token": "`+adminToken+`"}`); res.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("the right login after 3 wrong tokens = %d, want 429", res.StatusCode)
			}
			clk.add(time.Second)
			if res := bearer(c, srv.URL, adminToken); res.StatusCode != http.StatusOK {
				t.Fatalf("the right bearer token after the wait = %d", res.StatusCode)
			}
			// The next failure waits twice as long.
			bearer(c, srv.URL, "wrong-again")
			if res := bearer(c, srv.URL, adminToken); res.Header.Get("Retry-After") != "2" {
				t.Fatalf("after a 4th failure Retry-After = %q, want 2", res.Header.Get("Retry-After"))
			}
			got := gatherCounters(t, backoff)
			wantFailures := map[string]float64{admin.RouteConsole: 3, admin.RouteAPI: 4}[first]
			if got["walhook_auth_failures_total/"+first] != wantFailures || got["walhook_auth_throttled_total/api"] < 1 {
				t.Errorf("backoff metrics %v: want %v failures on %s and throttled api requests", got, wantFailures, first)
			}
		})
	}
}

// gatherCounters reads a collector's counters as "name/route" → value.
func gatherCounters(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				out[f.GetName()+"/"+l.GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}
