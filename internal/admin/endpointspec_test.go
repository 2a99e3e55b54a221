package admin_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/walhook/walhook/internal/config"
)

// TestConfigAndAPIAgree: an endpoint block of the config and a webhook
// registered through the API follow one set of rules
// (internal/endpointspec): each value is accepted by both or refused by
// both.
func TestConfigAndAPIAgree(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	const good = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	type endpoint struct {
		url, signing, secret string
		events               []string
		headers              map[string]string
	}
	base := func(change func(*endpoint)) endpoint {
		ep := endpoint{url: "https://example.com/hook", secret: good, events: []string{"contact.*"}}
		change(&ep)
		return ep
	}
	cases := []struct {
		name   string
		ep     endpoint
		accept bool
	}{
		{"valid", base(func(*endpoint) {}), true},
		{"hmac secret", base(func(ep *endpoint) { ep.signing, ep.secret = "hmac-sha256", "any-string-secret-of-theirs" }), true},
		{"headers", base(func(ep *endpoint) { ep.headers = map[string]string{"X-Team": "crm", "Authorization": "Bearer t"} }), true},
		{"secret without whsec_", base(func(ep *endpoint) { ep.secret = strings.TrimPrefix(good, "whsec_") }), false},
		{"short secret", base(func(ep *endpoint) { ep.secret = "whsec_c2hvcnQ=" }), false},
		{"unknown signing", base(func(ep *endpoint) { ep.signing = "rsa" }), false},
		{"ftp url", base(func(ep *endpoint) { ep.url = "ftp://example.com/x" }), false},
		{"url fragment", base(func(ep *endpoint) { ep.url = "https://example.com/#x" }), false},
		{"bad glob", base(func(ep *endpoint) { ep.events = []string{"contact.[x"} }), false},
		{"header name", base(func(ep *endpoint) { ep.headers = map[string]string{"X Bad": "1"} }), false},
		{"reserved header", base(func(ep *endpoint) { ep.headers = map[string]string{"Webhook-Signature": "x"} }), false},
		{"header value", base(func(ep *endpoint) { ep.headers = map[string]string{"X-Team": "a\nb"} }), false},
	}
	for _, c := range cases {
		var hcl strings.Builder
		hcl.WriteString(`source "postgres" { url = "postgres://localhost/app" }` + "\n")
		for _, ev := range catalogue {
			fmt.Fprintf(&hcl, "event %q {\n  table = %q\n  on = [\"insert\"]\n}\n", ev.Name, ev.Table)
		}
		fmt.Fprintf(&hcl, "endpoint \"e\" {\n  url = %q\n  secret = %q\n  events = [", c.ep.url, c.ep.secret)
		for i, f := range c.ep.events {
			if i > 0 {
				hcl.WriteString(", ")
			}
			fmt.Fprintf(&hcl, "%q", f)
		}
		hcl.WriteString("]\n")
		if c.ep.signing != "" {
			fmt.Fprintf(&hcl, "  signing = %q\n", c.ep.signing)
		}
		if c.ep.headers != nil {
			hcl.WriteString("  headers = {\n")
			for k, v := range c.ep.headers {
				fmt.Fprintf(&hcl, "    %q = %q\n", k, v)
			}
			hcl.WriteString("  }\n")
		}
		hcl.WriteString("}\n")
		_, diags := config.Parse([]byte(hcl.String()), "agree.hcl")

		body := map[string]any{"url": c.ep.url, "events": c.ep.events, "secret": c.ep.secret, "signing": c.ep.signing}
		if c.ep.headers != nil {
			body["headers"] = c.ep.headers
		}
		r := e.do("POST", "/v1/webhooks", body)

		configOK, apiOK := !diags.HasErrors(), r.status == http.StatusCreated
		if configOK != c.accept || apiOK != c.accept {
			t.Errorf("%s: config accepts: %v (%v), API accepts: %v (%d %s); want both %v\n%s",
				c.name, configOK, diags, apiOK, r.status, r.body, c.accept, hcl.String())
		}
	}
}
