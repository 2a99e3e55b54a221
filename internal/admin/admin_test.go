package admin_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/walhook/walhook/internal/admin"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)

	r := e.call("GET", "/v1/webhooks", nil, "")
	e.expect(r, http.StatusUnauthorized)
	if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
		t.Errorf("missing token: WWW-Authenticate = %q", got)
	}
	if code := r.apiError(t).Error.Code; code != admin.CodeUnauthorized {
		t.Errorf("missing token: code %q", code)
	}

	r = e.expect(e.call("GET", "/v1/webhooks", nil, "wrong-token"), http.StatusUnauthorized)
	if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, "invalid_token") {
		t.Errorf("wrong token: WWW-Authenticate = %q", got)
	}
	// A prefix of a real token is no token.
	e.expect(e.call("GET", "/v1/webhooks", nil, tokenA[:10]), http.StatusUnauthorized)

	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/webhooks", nil)
	req.SetBasicAuth("admin", tokenA)
	e.expect(e.send(req), http.StatusUnauthorized)

	// Every configured token works (rotation).
	e.expect(e.call("GET", "/v1/webhooks", nil, tokenA), http.StatusOK)
	e.expect(e.call("GET", "/v1/events", nil, tokenB), http.StatusOK)

	// Unknown /v1 routes do not leak without a token.
	e.expect(e.call("GET", "/v1/nothing-here", nil, ""), http.StatusUnauthorized)

	// Ops endpoints need no token.
	e.expect(e.call("GET", "/healthz", nil, ""), http.StatusOK)
	e.expect(e.call("GET", "/readyz", nil, ""), http.StatusOK)
	e.expect(e.call("GET", "/metrics", nil, ""), http.StatusOK)
}

func TestNoTokensRefusesEverything(t *testing.T) {
	t.Parallel()
	e := setup(t, func(o *admin.Options) { o.Tokens = nil })
	e.expect(e.call("GET", "/v1/webhooks", nil, tokenA), http.StatusUnauthorized)
	e.expect(e.call("GET", "/v1/webhooks", nil, ""), http.StatusUnauthorized)
}

func TestRoutingErrors(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)

	r := e.expect(e.do("GET", "/v1/nothing-here", nil), http.StatusNotFound)
	if r.apiError(t).Error.Code != admin.CodeNotFound || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("unknown route: %s %v", r.body, r.header)
	}
	e.expect(e.do("GET", "/nothing", nil), http.StatusNotFound)

	r = e.expect(e.do("PUT", "/v1/webhooks", map[string]any{}), http.StatusMethodNotAllowed)
	if r.header.Get("Allow") != "GET, POST" || r.apiError(t).Error.Code != admin.CodeMethodNotAllowed {
		t.Errorf("405: Allow %q, body %s", r.header.Get("Allow"), r.body)
	}
	r = e.expect(e.do("GET", "/v1/deliveries/dlv_x/retry", nil), http.StatusMethodNotAllowed)
	if r.header.Get("Allow") != "POST" {
		t.Errorf("405 retry: Allow %q", r.header.Get("Allow"))
	}

	for _, path := range []string{"/v1/webhooks/ep_doesnotexist", "/v1/webhooks/cfg:nope", "/v1/webhooks/other",
		"/v1/webhooks/ep_doesnotexist/deliveries"} {
		r := e.expect(e.do("GET", path, nil), http.StatusNotFound)
		if r.apiError(t).Error.Code != admin.CodeNotFound {
			t.Errorf("%s: %s", path, r.body)
		}
	}
	e.expect(e.do("POST", "/v1/deliveries/dlv_doesnotexist/retry", nil), http.StatusNotFound)
	e.expect(e.do("POST", "/v1/webhooks/ep_doesnotexist/enable", nil), http.StatusNotFound)
}

func TestRequestBodyErrors(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	valid := `{"url": "https://example.com/hook", "events": ["contact.created"]}`

	post := func(body, contentType string) response {
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/webhooks", strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		req.Header.Set("Authorization", "Bearer "+tokenA)
		return e.send(req)
	}
	cases := []struct {
		name, body, contentType string
		status                  int
		code, field, message    string
	}{
		{"not json media type", valid, "text/plain", 415, admin.CodeMediaType, "", "application/json"},
		{"no content type", valid, "", 415, admin.CodeMediaType, "", ""},
		{"json with charset", valid, "application/json; charset=utf-8", 201, "", "", ""},
		{"empty body", "", "application/json", 400, admin.CodeInvalidRequest, "", "required"},
		{"malformed", `{"url": `, "application/json", 400, admin.CodeInvalidRequest, "", "malformed JSON"},
		{"syntax error", `{"url" "x"}`, "application/json", 400, admin.CodeInvalidRequest, "", "malformed JSON"},
		{"unknown field", `{"url": "https://example.com", "events": ["contact.created"], "evnets": []}`, "application/json", 400, admin.CodeInvalidRequest, "evnets", "unknown field"},
		{"wrong type", `{"url": "https://example.com", "events": "contact.created"}`, "application/json", 400, admin.CodeInvalidRequest, "events", "array"},
		{"trailing data", valid + ` {}`, "application/json", 400, admin.CodeInvalidRequest, "", "after the JSON object"},
		{"not an object", `[1, 2]`, "application/json", 400, admin.CodeInvalidRequest, "", ""},
		{"too large", `{"description": "` + strings.Repeat("x", admin.MaxBodyBytes) + `"}`, "application/json", 413, admin.CodeBodyTooLarge, "", "larger than"},
	}
	for _, c := range cases {
		r := post(c.body, c.contentType)
		if r.status != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, r.status, c.status, r.body)
			continue
		}
		if c.code == "" {
			continue
		}
		eb := r.apiError(t)
		if eb.Error.Code != c.code || eb.Error.Field != c.field || !strings.Contains(eb.Error.Message, c.message) {
			t.Errorf("%s: got %+v, want code %s field %q message containing %q", c.name, eb.Error, c.code, c.field, c.message)
		}
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	base := func(change func(m map[string]any)) map[string]any {
		m := map[string]any{"url": "https://example.com/hook", "events": []string{"contact.created"}}
		change(m)
		return m
	}
	cases := []struct {
		name    string
		body    map[string]any
		field   string
		message string
	}{
		{"url missing", base(func(m map[string]any) { delete(m, "url") }), "url", "url is required"},
		{"url scheme", base(func(m map[string]any) { m["url"] = "ftp://example.com/x" }), "url", "https://"},
		{"url relative", base(func(m map[string]any) { m["url"] = "/hook" }), "url", "https://"},
		{"url no host", base(func(m map[string]any) { m["url"] = "https:///hook" }), "url", "no host"},
		{"url fragment", base(func(m map[string]any) { m["url"] = "https://example.com/#x" }), "url", "fragment"},
		{"url too long", base(func(m map[string]any) { m["url"] = "https://example.com/" + strings.Repeat("a", 3000) }), "url", "longer"},
		{"events missing", base(func(m map[string]any) { delete(m, "events") }), "events", "events is required"},
		{"events empty", base(func(m map[string]any) { m["events"] = []string{} }), "events", "events is required"},
		{"event blank", base(func(m map[string]any) { m["events"] = []string{" "} }), "events", "empty"},
		{"event unknown", base(func(m map[string]any) { m["events"] = []string{"invoice.paid"} }), "events", "contact.created, contact.updated, deal.stage.changed"},
		{"glob matching nothing", base(func(m map[string]any) { m["events"] = []string{"user.*"} }), "events", `"user.*" matches no event`},
		{"bad glob", base(func(m map[string]any) { m["events"] = []string{"contact.[x"} }), "events", "not a valid glob"},
		{"signing", base(func(m map[string]any) { m["signing"] = "rsa" }), "signing", "standard-webhooks, hmac-sha256, stripe, github"},
		{"secret bad base64", base(func(m map[string]any) { m["secret"] = "whsec_!!!" }), "secret", "standard-webhooks"},
		{"secret too short", base(func(m map[string]any) { m["secret"] = "whsec_c2hvcnQ=" }), "secret", "bytes"},
		{"header name", base(func(m map[string]any) { m["headers"] = map[string]string{"Bad Header": "x"} }), "headers", "not a valid HTTP header name"},
		{"header reserved", base(func(m map[string]any) { m["headers"] = map[string]string{"Webhook-Signature": "x"} }), "headers", "set by walhook"},
		{"header host", base(func(m map[string]any) { m["headers"] = map[string]string{"host": "evil"} }), "headers", "set by walhook"},
		{"header value", base(func(m map[string]any) { m["headers"] = map[string]string{"X-Team": "a\r\nX-Injected: 1"} }), "headers", "control characters"},
		{"tenant too long", base(func(m map[string]any) { m["tenant"] = strings.Repeat("t", 300) }), "tenant", "at most 128 bytes"},
		{"tenant with a slash", base(func(m map[string]any) { m["tenant"] = "a/b" }), "tenant", "must start with a letter or digit and hold only"},
		{"tenant dot dot", base(func(m map[string]any) { m["tenant"] = ".." }), "tenant", "must start with a letter or digit"},
		{"tenant markup", base(func(m map[string]any) { m["tenant"] = "<b>acme</b>" }), "tenant", "must start with a letter or digit"},
		{"tenant space", base(func(m map[string]any) { m["tenant"] = "acme corp" }), "tenant", "must start with a letter or digit"},
		{"description NUL", base(func(m map[string]any) { m["description"] = "a\x00b" }), "description", "NUL"},
	}
	for _, c := range cases {
		r := e.do("POST", "/v1/webhooks", c.body)
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400: %s", c.name, r.status, r.body)
			continue
		}
		eb := r.apiError(t)
		if eb.Error.Code != admin.CodeValidation || eb.Error.Field != c.field || !strings.Contains(eb.Error.Message, c.message) {
			t.Errorf("%s: got %+v, want field %q and a message containing %q", c.name, eb.Error, c.field, c.message)
		}
		if strings.Contains(string(r.body), "!!!") {
			t.Errorf("%s: the error repeats the secret: %s", c.name, r.body)
		}
	}

	// Valid variants are accepted: globs, every scheme, a given secret.
	for _, body := range []map[string]any{
		base(func(m map[string]any) { m["events"] = []string{"contact.*", "deal.stage.changed"} }),
		base(func(m map[string]any) { m["events"] = []string{"*"} }),
		base(func(m map[string]any) { m["signing"] = "hmac-sha256"; m["secret"] = "any-string-secret-of-theirs" }),
		base(func(m map[string]any) { m["signing"] = "github" }),
		base(func(m map[string]any) { m["signing"] = "stripe"; m["headers"] = map[string]string{"X-Team": "crm"} }),
		base(func(m map[string]any) { m["secret"] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }),
	} {
		e.expect(e.do("POST", "/v1/webhooks", body), http.StatusCreated)
	}
}

func TestQueryParameterErrors(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	hook := e.create(map[string]any{"url": "https://example.com/a", "events": []string{"contact.created"}})
	for _, path := range []string{
		"/v1/webhooks?limit=0", "/v1/webhooks?limit=abc", "/v1/webhooks?limit=5000", "/v1/webhooks?cursor=garbage!",
		"/v1/webhooks?source=elsewhere",
		"/v1/webhooks/" + hook.ID + "/deliveries?status=lost",
		"/v1/webhooks/" + hook.ID + "/deliveries?since=yesterday",
		"/v1/webhooks/" + hook.ID + "/deliveries?cursor=Zm9v",
	} {
		r := e.expect(e.do("GET", path, nil), http.StatusBadRequest)
		if r.apiError(t).Error.Code != admin.CodeInvalidRequest {
			t.Errorf("%s: %s", path, r.body)
		}
	}
}

func TestEventsAndReadiness(t *testing.T) {
	t.Parallel()
	notReady := errors.New("slot walhook is held by another process")
	var ready atomic.Bool
	e := setup(t, func(o *admin.Options) {
		o.Ready = func(ctx context.Context) error {
			if ready.Load() {
				return nil
			}
			return notReady
		}
	})
	var events struct {
		Data []struct {
			Name, Description, Table string
			Ops                      []string
		} `json:"data"`
	}
	e.expect(e.do("GET", "/v1/events", nil), http.StatusOK).json(t, &events)
	if len(events.Data) != 3 || events.Data[0].Name != "contact.created" || events.Data[0].Table != "public.contacts" ||
		events.Data[0].Description != "A contact was added" || events.Data[0].Ops[0] != "insert" {
		t.Errorf("events = %+v", events.Data)
	}

	r := e.expect(e.call("GET", "/readyz", nil, ""), http.StatusServiceUnavailable)
	if !strings.Contains(string(r.body), "held by another process") {
		t.Errorf("readyz body %s", r.body)
	}
	ready.Store(true)
	e.expect(e.call("GET", "/readyz", nil, ""), http.StatusOK)
	e.expect(e.call("HEAD", "/healthz", nil, ""), http.StatusOK)
	e.expect(e.call("POST", "/healthz", nil, ""), http.StatusMethodNotAllowed)
}
