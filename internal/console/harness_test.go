package console_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/relay"
	"github.com/walhook/walhook/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const adminToken = "console-admin-token-0123456789"

// consoleEnv is a relay with an admin block on a real Postgres, a config
// endpoint "crm" whose receiver can be made to fail, and two tenants'
// API webhooks.
type consoleEnv struct {
	db      *testenv.DB
	relay   *relay.Relay
	base    string // http://127.0.0.1:port of the admin listener (https:// with tls_cert)
	client  *http.Client
	failing atomic.Bool
	crm     *httptest.Server
	tenants *httptest.Server
}

func startConsoleEnv(t *testing.T) *consoleEnv {
	t.Helper()
	return startConsoleEnvWith(t, "")
}

// startConsoleEnvWith is startConsoleEnv with more admin attributes
// (adminExtra, HCL lines).
func startConsoleEnvWith(t *testing.T, adminExtra string) *consoleEnv {
	t.Helper()
	return startConsoleEnvBlocks(t, adminExtra, "")
}

// startConsoleEnvBlocks is startConsoleEnvWith with more top-level HCL
// blocks (endpoints whose url may be "RECEIVER": the crm receiver's).
func startConsoleEnvBlocks(t *testing.T, adminExtra, blocks string) *consoleEnv {
	t.Helper()
	e := &consoleEnv{db: testenv.NewDB(t)}
	e.crm = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if e.failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"error":"database is down: connection refused"}`)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(e.crm.Close)
	e.tenants = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "thanks")
	}))
	t.Cleanup(e.tenants.Close)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	e.base, e.client = "http://"+addr, http.DefaultClient
	if strings.Contains(adminExtra, "tls_cert") {
		// The test's self-signed certificate.
		e.base = "https://" + addr
		e.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		t.Cleanup(e.client.CloseIdleConnections)
	}
	slot := testenv.Name(t, "slot")
	src := fmt.Sprintf(`
source "postgres" {
  url         = %q
  slot        = %q
  publication = %q
}
event "contact.created" {
  description = "A contact was added to the CRM"
  table       = "contacts"
  on          = ["insert"]
  tenant      = new.organization_id == 1 ? "acme" : "globex"
}
event "contact.snapshot" {
  description = "A contact as it is now, sent by a backfill"
  table       = "contacts"
  on          = ["read"]
}
event "deal.closed" {
  table = "deals"
  on    = ["insert"]
  when  = length(new.closed_at) > 0
}
event "deal.stage.changed" {
  table  = "deals"
  on     = ["update"]
  when   = old.stage != new.stage
  key    = new.id
  tenant = new.organization_id == 1 ? "acme" : "globex"
}
endpoint "crm" {
  url    = %q
  events = ["contact.*", "deal.*"]
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
  headers = { "X-Api-Key" = "sk_live_console_test" }
  retry {
    schedule = ["200ms"]
  }
}
%s
admin {
  listen         = %q
  token          = %q
  allow_networks = ["127.0.0.0/8"]
  allow_http     = true
%s
}
delivery {
  shutdown_timeout = "5s"
  log_attempts     = "all"
}
`, e.db.URL, slot, slot, e.crm.URL, strings.ReplaceAll(blocks, "RECEIVER", e.crm.URL), addr, adminToken, adminExtra)
	cfg, diags := config.Parse([]byte(src), "console_test.hcl")
	if diags.HasErrors() {
		t.Fatalf("config: %v", diags)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	r, err := relay.New(ctx, cfg, log, relay.Options{RetryPoll: 20 * time.Millisecond, HeartbeatInterval: 500 * time.Millisecond})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	e.relay = r
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("relay did not stop within 30s")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := e.client.Get(e.base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the relay was not ready within 30s (last: %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return e
}

// call makes an admin API request with a bearer token and decodes a JSON
// answer into out (when not nil); it returns the status.
func (e *consoleEnv) call(t *testing.T, token, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", method, path, b, err)
		}
	}
	return res.StatusCode
}

// webhook registers an API webhook of tenant on the tenants' receiver.
func (e *consoleEnv) webhook(t *testing.T, tenant, description string) string {
	t.Helper()
	var out struct{ ID string }
	body := fmt.Sprintf(`{"url": %q, "events": ["contact.created"], "tenant": %q, "description": %q}`, e.tenants.URL, tenant, description)
	if code := e.call(t, adminToken, "POST", "/v1/webhooks", body, &out); code != http.StatusCreated {
		t.Fatalf("creating a webhook of %s: %d", tenant, code)
	}
	return out.ID
}

// tenantToken creates a tenant token through the API.
func (e *consoleEnv) tenantToken(t *testing.T, tenant string) (id, token string) {
	t.Helper()
	var out struct{ ID, Token string }
	if code := e.call(t, adminToken, "POST", "/v1/tokens", fmt.Sprintf(`{"tenant": %q, "name": "portal"}`, tenant), &out); code != http.StatusCreated {
		t.Fatalf("creating a token of %s: %d", tenant, code)
	}
	return out.ID, out.Token
}
