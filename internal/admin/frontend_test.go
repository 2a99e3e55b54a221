package admin_test

import (
	"crypto/tls"
	"io"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/admin"
)

// TestFrontend: forwarded headers count only from trusted proxies; the
// client address behind them is the nearest untrusted hop; public_url
// wins over both.
func TestFrontend(t *testing.T) {
	t.Parallel()
	trusted := &admin.Frontend{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
	cases := []struct {
		name           string
		front          *admin.Frontend
		remote         string
		tls            bool
		headers        map[string]string
		origin, client string
	}{
		{"direct", nil, "192.0.2.1:5000", false, nil, "http://hooks.test", "192.0.2.1"},
		{"direct TLS", nil, "192.0.2.1:5000", true, nil, "https://hooks.test", "192.0.2.1"},
		{"untrusted forwarder", trusted, "192.0.2.1:5000", false,
			map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.test", "X-Forwarded-For": "198.51.100.7"}, "http://hooks.test", "192.0.2.1"},
		{"trusted proxy", trusted, "10.1.2.3:5000", false,
			map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}, "https://hooks.test", "198.51.100.7"},
		{"trusted proxy, forwarded host", trusted, "[::1]:5000", false,
			map[string]string{"X-Forwarded-Proto": "HTTPS, http", "X-Forwarded-Host": "Public.Example:8443"}, "https://public.example:8443", "::1"},
		{"spoofed hops before the proxy", trusted, "10.1.2.3:5000", false,
			map[string]string{"X-Forwarded-For": "1.1.1.1, 198.51.100.7, 10.9.9.9"}, "http://hooks.test", "198.51.100.7"},
		{"junk proto", trusted, "10.1.2.3:5000", false, map[string]string{"X-Forwarded-Proto": "gopher"}, "http://hooks.test", "10.1.2.3"},
		{"public_url", &admin.Frontend{PublicURL: "https://hooks.example.com"}, "192.0.2.1:5000", false,
			map[string]string{"X-Forwarded-Proto": "http"}, "https://hooks.example.com", "192.0.2.1"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("POST", "http://hooks.test/ui/api/login", nil)
		r.RemoteAddr = c.remote
		if c.tls {
			r.TLS = &tls.ConnectionState{}
		}
		for k, v := range c.headers {
			r.Header.Set(k, v)
		}
		if got := c.front.Origin(r); got != c.origin {
			t.Errorf("%s: origin %q, want %q", c.name, got, c.origin)
		}
		if got := c.front.Secure(r); got != (c.origin[:6] == "https:") {
			t.Errorf("%s: secure %v", c.name, got)
		}
		if got := c.front.ClientAddr(r); got != c.client {
			t.Errorf("%s: client %q, want %q", c.name, got, c.client)
		}
		r.Header.Set("Origin", c.origin)
		if err := c.front.CheckOrigin(r); err != nil {
			t.Errorf("%s: its own origin refused: %v", c.name, err)
		}
		r.Header.Set("Origin", "https://evil.test")
		if err := c.front.CheckOrigin(r); err == nil {
			t.Errorf("%s: a foreign origin passes", c.name)
		}
	}
}

// TestNosniffEverywhere: every response of the listener, errors and
// unauthenticated routes included, carries X-Content-Type-Options: nosniff.
func TestNosniffEverywhere(t *testing.T) {
	t.Parallel()
	h := admin.New(admin.Options{Tokens: []string{tokenA}, Events: catalogue, Logger: zerolog.New(io.Discard)})
	for _, c := range []struct{ method, path, token string }{
		{"GET", "/v1/events", tokenA}, {"GET", "/v1/events", ""}, {"GET", "/v1/events", "wrong"},
		{"GET", "/healthz", ""}, {"GET", "/readyz", ""}, {"GET", "/metrics", ""}, {"GET", "/nowhere", ""},
		{"DELETE", "/healthz", ""}, {"GET", "/v1/nowhere", tokenA},
	} {
		r := httptest.NewRequest(c.method, c.path, nil)
		if c.token != "" {
			r.Header.Set("Authorization", "Bearer "+c.token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if got := w.Header().Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s %s (%d): X-Content-Type-Options %q", c.method, c.path, w.Code, got)
		}
	}
}
