package admin_test

import (
	"bufio"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
)

var (
	curlURL    = regexp.MustCompile(`http://127\.0\.0\.1:8080(/[^\s"']*)`)
	curlMethod = regexp.MustCompile(`-X ([A-Z]+)`)
)

// TestDocsCurlExamples runs every curl example of docs/api.md against the
// handler: each must reach a real route with a method it allows, and every
// route must have an example.
func TestDocsCurlExamples(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	f, err := os.Open("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "curl ") {
			continue
		}
		n++
		m := curlURL.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("curl example without a URL on 127.0.0.1:8080: %s", line)
			continue
		}
		path := m[1]
		method := "GET"
		if mm := curlMethod.FindStringSubmatch(line); mm != nil {
			method = mm[1]
		} else if strings.Contains(line, " -d ") {
			method = "POST"
		}
		if strings.HasPrefix(path, "/v1/") && !strings.Contains(line, `-H "Authorization: Bearer $WALHOOK_ADMIN_TOKEN"`) {
			t.Errorf("example lacks the bearer token: %s", line)
		}
		r := e.do(method, path, nil)
		if r.status == http.StatusMethodNotAllowed || (r.status == http.StatusNotFound && strings.Contains(string(r.body), "no route")) {
			t.Errorf("%s %s: %d %s", method, path, r.status, r.body)
		}
		seen[method+" "+routeOf(path)] = true
	}
	if n == 0 {
		t.Fatal("no curl examples found")
	}
	for _, route := range []string{
		"POST /v1/webhooks", "GET /v1/webhooks", "GET /v1/webhooks/{id}", "PATCH /v1/webhooks/{id}", "DELETE /v1/webhooks/{id}",
		"POST /v1/webhooks/{id}/test", "POST /v1/webhooks/{id}/rotate-secret", "GET /v1/webhooks/{id}/deliveries",
		"POST /v1/deliveries/{id}/retry", "POST /v1/webhooks/{id}/recover", "POST /v1/webhooks/{id}/enable",
		"GET /v1/deliveries", "GET /v1/deliveries/{id}", "POST /v1/tokens", "GET /v1/tokens", "DELETE /v1/tokens/{id}",
		"GET /v1/events", "GET /v1/events/{name}", "GET /v1/events/{name}/schema", "GET /healthz", "GET /readyz", "GET /metrics",
		"POST /v1/backfills", "GET /v1/backfills", "GET /v1/backfills/{id}", "DELETE /v1/backfills/{id}",
		"POST /v1/backfills/{id}/pause", "POST /v1/backfills/{id}/resume",
		"GET /v1/evaluations", "GET /v1/evaluations/{id}", "POST /v1/evaluations/{id}/replay", "POST /v1/evaluations/replay",
		"GET /v1/instances",
	} {
		if !seen[route] {
			t.Errorf("docs/api.md has no curl example for %s", route)
		}
	}
}

// routeOf turns a concrete path into its route pattern.
func routeOf(path string) string {
	path, _, _ = strings.Cut(path, "?")
	parts := strings.Split(path, "/")
	if len(parts) > 3 && (parts[2] == "webhooks" || parts[2] == "deliveries" || parts[2] == "tokens" || parts[2] == "backfills" ||
		parts[2] == "evaluations" && parts[3] != "replay") {
		parts[3] = "{id}"
	}
	if len(parts) > 3 && parts[2] == "events" {
		parts[3] = "{name}"
	}
	return strings.Join(parts, "/")
}
