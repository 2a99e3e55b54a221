package relay_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/receiver"
	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

// TestRunServesAdminListener: with an admin block, walhook run serves the
// API, /readyz and /metrics on admin.listen, and a webhook registered
// through the API receives events and test events without a restart.
func TestRunServesAdminListener(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	const token = "test-token-0123456789"
	start(t, db, "", fmt.Sprintf(`
admin {
  listen         = %q
  token          = %q
  allow_networks = ["127.0.0.0/8"]
  allow_http     = true
}`, addr, token))
	base := "http://" + addr
	call := func(method, path, body string) (int, []byte) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	testkit.EventuallyWithin(t, 30*time.Second, "/readyz to answer 200", func() bool {
		code, _ := call("GET", "/readyz", "")
		return code == http.StatusOK
	})
	if code, _ := call("GET", "/v1/events", ""); code != http.StatusOK {
		t.Fatalf("GET /v1/events = %d", code)
	}

	secret := signing.GenerateSecret()
	rec := receiver.New(receiver.Options{Secrets: []string{secret}})
	srv := serve(t, rec)
	code, body := call("POST", "/v1/webhooks", fmt.Sprintf(`{"url": %q, "events": ["contact.*"], "secret": %q}`, srv.URL, secret))
	if code != http.StatusCreated {
		t.Fatalf("POST /v1/webhooks = %d %s", code, body)
	}
	var created struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &created)
	code, body = call("POST", "/v1/webhooks/"+created.ID+"/test", "")
	if code != http.StatusOK || !bytes.Contains(body, []byte(`"status_code":204`)) {
		t.Fatalf("test event: %d %s", code, body)
	}
	// A test event goes through the delivery attempt path: signed, with
	// Webhook-Attempt, and counted like any attempt (below, in /metrics).
	var test *receiver.Received
	for _, r := range rec.Received() {
		if r.Type == "webhook.test" {
			test = &r
		}
	}
	if test == nil || !test.Verified || test.Attempt != 1 {
		t.Fatalf("test event as received: %+v", test)
	}
	testkit.EventuallyWithin(t, 10*time.Second, "the API webhook to be loaded", func() bool {
		db.Exec(t, `INSERT INTO contacts (organization_id, first_name) VALUES (1, 'x')`)
		for _, r := range rec.Received() {
			if r.Type == "contact.created" {
				return true
			}
		}
		return false
	})
	for _, r := range rec.Received() {
		if !r.Verified {
			t.Errorf("%s not verified: %v", r.Type, r.VerifyErr)
		}
	}
	// The slot gauges come from the watcher's read of pg_replication_slots,
	// which starts when streaming does and may still be under way.
	attempted := fmt.Sprintf(`walhook_attempts_total{endpoint=%q,result="2xx"}`, created.ID)
	series := []string{"walhook_changes_read_total", "walhook_events_emitted_total", "walhook_replication_lag_bytes", attempted}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		res, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		m, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var lacks []string
		for _, s := range series {
			if !bytes.Contains(m, []byte(s)) {
				lacks = append(lacks, s)
			}
		}
		if len(lacks) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %s", strings.Join(lacks, ", "))
		}
	}
}
