package admin_test

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestTenantTokens: a tenant token is created through the API (shown once,
// stored as a hash), sees only its tenant's webhooks and the deliveries to
// them, creates webhooks of its tenant only, cannot manage tokens, and
// stops working when revoked.
func TestTenantTokens(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	rcv := newReceiver(t, http.StatusOK, "ok")
	var acme, globex webhook
	e.expect(e.do("POST", "/v1/webhooks", map[string]any{"url": rcv.URL, "events": []string{"contact.*"}, "tenant": "acme"}), http.StatusCreated).json(t, &acme)
	e.expect(e.do("POST", "/v1/webhooks", map[string]any{"url": rcv.URL, "events": []string{"contact.*"}, "tenant": "globex"}), http.StatusCreated).json(t, &globex)

	var tok struct {
		ID, Tenant, Hint, Token string
		RevokedAt               *time.Time `json:"revoked_at"`
	}
	e.expect(e.do("POST", "/v1/tokens", map[string]any{"tenant": "acme", "name": "portal"}), http.StatusCreated).json(t, &tok)
	if !strings.HasPrefix(tok.Token, "wht_") || tok.Tenant != "acme" || !strings.HasSuffix(tok.Token, strings.TrimPrefix(tok.Hint, "wht_…")) {
		t.Fatalf("created token %+v", tok)
	}
	e.expect(e.do("POST", "/v1/tokens", map[string]any{"name": "no tenant"}), http.StatusBadRequest)
	for _, bad := range []string{"a/b", "..", "<i>x</i>", "acme\n"} {
		e.expect(e.do("POST", "/v1/tokens", map[string]any{"tenant": bad, "name": "bad tenant"}), http.StatusBadRequest)
	}
	for _, good := range []string{"org_42", "acme.eu-1", "7c9e6679-7425-40de-944b-e07fc1f90ae7", "team@acme"} {
		e.expect(e.do("POST", "/v1/tokens", map[string]any{"tenant": good, "name": "good tenant"}), http.StatusCreated)
	}
	list := e.expect(e.do("GET", "/v1/tokens?tenant=acme", nil), http.StatusOK)
	if strings.Contains(string(list.body), tok.Token) || !strings.Contains(string(list.body), tok.ID) {
		t.Fatalf("token list shows the token or misses it: %s", list.body)
	}
	// Only the SHA-256 is stored.
	sum := sha256.Sum256([]byte(tok.Token))
	var n int
	err := e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM walhook.api_tokens WHERE token_hash = $1 AND position($2 in row(api_tokens.*)::text) = 0`, sum[:], tok.Token).Scan(&n)
	if err != nil || n != 1 {
		t.Fatalf("stored token rows with the hash and without the token = %d (%v)", n, err)
	}

	as := func(method, path string, body any) response { return e.call(method, path, body, tok.Token) }
	var hooks struct{ Data []webhook }
	e.expect(as("GET", "/v1/webhooks?tenant=globex", nil), http.StatusOK).json(t, &hooks)
	if len(hooks.Data) != 1 || hooks.Data[0].ID != acme.ID {
		t.Fatalf("acme's token lists %+v", hooks.Data)
	}
	e.expect(as("GET", "/v1/webhooks/"+globex.ID, nil), http.StatusNotFound)
	e.expect(as("GET", "/v1/webhooks/"+configEndpoint.ID, nil), http.StatusNotFound)
	e.expect(as("PATCH", "/v1/webhooks/"+acme.ID, map[string]any{"tenant": "globex"}), http.StatusBadRequest)
	e.expect(as("POST", "/v1/webhooks", map[string]any{"url": rcv.URL, "events": []string{"contact.*"}, "tenant": "globex"}), http.StatusBadRequest)
	var own webhook
	e.expect(as("POST", "/v1/webhooks", map[string]any{"url": rcv.URL, "events": []string{"contact.*"}}), http.StatusCreated).json(t, &own)
	if own.Tenant != "acme" {
		t.Fatalf("a webhook created with acme's token has tenant %q", own.Tenant)
	}
	e.expect(as("GET", "/v1/tokens", nil), http.StatusForbidden)
	e.expect(as("POST", "/v1/tokens", map[string]any{"tenant": "acme"}), http.StatusForbidden)
	// Backfills read any table and may target any endpoint: admins only.
	e.expect(as("GET", "/v1/backfills", nil), http.StatusForbidden)
	e.expect(as("POST", "/v1/backfills", map[string]any{"table": "contacts"}), http.StatusForbidden)
	e.expect(as("GET", "/v1/backfills/bf_x", nil), http.StatusForbidden)
	e.expect(as("DELETE", "/v1/backfills/bf_x", nil), http.StatusForbidden)
	e.expect(as("POST", "/v1/backfills/bf_x/pause", nil), http.StatusForbidden)
	e.expect(as("POST", "/v1/backfills/bf_x/resume", nil), http.StatusForbidden)
	e.expect(e.do("GET", "/v1/backfills", nil), http.StatusOK)

	// Deliveries: every one here has event tenant "acme", but only those to
	// acme's own webhook are acme's to see.
	mine := failDeliveries(t, e, acme.ID, 2, 1, true, "contact.created")
	theirs := failDeliveries(t, e, globex.ID, 1, 1, true, "contact.created")
	cfg := failDeliveries(t, e, configEndpoint.ID, 1, 1, true, "contact.created")
	var page deliveryPage
	e.expect(as("GET", "/v1/deliveries", nil), http.StatusOK).json(t, &page)
	if len(page.Data) != 2 || page.Data[0].EndpointID != acme.ID || page.Data[1].EndpointID != acme.ID {
		t.Fatalf("acme's token lists deliveries %+v", page.Data)
	}
	e.expect(as("GET", "/v1/deliveries?endpoint_id="+globex.ID, nil), http.StatusOK).json(t, &page)
	if len(page.Data) != 0 {
		t.Fatalf("acme's token lists globex's deliveries: %+v", page.Data)
	}
	e.expect(as("GET", "/v1/deliveries/"+mine[0].ID, nil), http.StatusOK)
	for _, id := range []string{theirs[0].ID, cfg[0].ID} {
		e.expect(as("GET", "/v1/deliveries/"+id, nil), http.StatusNotFound)
		e.expect(as("POST", "/v1/deliveries/"+id+"/retry", nil), http.StatusNotFound)
	}
	e.expect(as("POST", "/v1/deliveries/"+mine[0].ID+"/retry", nil), http.StatusOK)

	// The admin sees them all, and filters.
	e.expect(e.do("GET", "/v1/deliveries?tenant=acme&status=failed", nil), http.StatusOK).json(t, &page)
	if len(page.Data) != 3 {
		t.Fatalf("admin lists %d failed acme deliveries, want 3", len(page.Data))
	}
	e.expect(e.do("GET", "/v1/deliveries?until=2000-01-01T00:00:00Z", nil), http.StatusOK).json(t, &page)
	if len(page.Data) != 0 {
		t.Fatalf("deliveries created before 2000: %d", len(page.Data))
	}
	e.expect(e.do("GET", "/v1/deliveries?until=yesterday", nil), http.StatusBadRequest)

	// Revoked, the token stops working at once.
	e.expect(e.do("DELETE", "/v1/tokens/"+tok.ID, nil), http.StatusOK).json(t, &tok)
	if tok.RevokedAt == nil {
		t.Fatal("revoked token has no revoked_at")
	}
	e.expect(as("GET", "/v1/webhooks", nil), http.StatusUnauthorized)
	e.expect(e.do("DELETE", "/v1/tokens/tok_nosuch", nil), http.StatusNotFound)
}
