package admin_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/admin"
	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/metrics"
	"github.com/walhook/walhook/internal/netguard"
	"github.com/walhook/walhook/internal/rules"
	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/store"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/relay"
	"github.com/walhook/walhook/testenv"
)

// switchable is an endpoint whose answer the test changes; it counts
// requests per status answered.
type switchable struct {
	status   atomic.Int32
	mu       sync.Mutex
	answered map[int]int
	first    map[int]http.Header // the headers of the first request answered with each status
	arrived  chan int            // each request's answered status
}

func newSwitchable(t *testing.T, status int) (*switchable, *httptest.Server) {
	s := &switchable{answered: map[int]int{}, first: map[int]http.Header{}, arrived: make(chan int, 100)}
	s.status.Store(int32(status))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		st := int(s.status.Load())
		s.mu.Lock()
		s.answered[st]++
		if s.first[st] == nil {
			s.first[st] = r.Header.Clone()
		}
		s.mu.Unlock()
		w.WriteHeader(st)
		s.arrived <- st
	}))
	t.Cleanup(srv.Close)
	return s, srv
}

// headerOf turns a view's flat headers back into an http.Header.
func headerOf(flat map[string]string) http.Header {
	h := http.Header{}
	for k, v := range flat {
		h.Set(k, v)
	}
	return h
}

// await waits for a request answered with status.
func (s *switchable) await(t *testing.T, status int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case st := <-s.arrived:
			if st == status {
				return
			}
		case <-deadline:
			t.Fatalf("no request answered %d within 30s", status)
		}
	}
}

func (s *switchable) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.answered {
		n += c
	}
	return n
}

// TestThroughTheRelay registers webhooks through the API on a running
// relay: rows become events delivered to them by tenant; failures show in
// the delivery log; retry, enable and recover deliver again; /metrics
// moves with it all.
func TestThroughTheRelay(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	slot := testenv.Name(t, "slot")
	src := fmt.Sprintf(`
source "postgres" {
  url         = %q
  slot        = %q
  publication = %q
}
admin {
  listen         = "127.0.0.1:0"
  token          = %q
  allow_networks = ["127.0.0.0/8"]
  allow_http     = true
}
delivery {
  shutdown_timeout = "5s"
}
event "contact.created" {
  table  = "contacts"
  on     = ["insert"]
  tenant = new.organization_id
}
`, db.URL, slot, slot, tokenA)
	m := metrics.New(nil)
	cfg, r := runRelay(t, src, relay.Options{Metrics: m})
	ctx := context.Background()
	st, err := store.Open(ctx, db.Pool, cfg.State.Schema)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rules.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)

	guard := &netguard.Guard{Allow: cfg.Admin.AllowNetworks, AllowHTTP: cfg.Admin.AllowHTTP}
	srv := httptest.NewServer(admin.New(admin.Options{
		Store: st, Tokens: cfg.Admin.Tokens, Events: rs.Catalogue(), Guard: guard,
		Tester: newTestTester(st, guard), Metrics: m.Handler(), Logger: log,
	}))
	t.Cleanup(srv.Close)
	e := &apiEnv{t: t, db: db, store: st, srv: srv, metrics: m}

	one, oneURL := newSwitchable(t, http.StatusServiceUnavailable)
	two, twoURL := newSwitchable(t, http.StatusOK)
	hook := e.create(map[string]any{"url": oneURL.URL + "/hook", "events": []string{"contact.*"}, "tenant": "1"})
	other := e.create(map[string]any{"url": twoURL.URL + "/hook", "events": []string{"*"}, "tenant": "2"})
	// New webhooks take effect without a restart.
	testkit.Eventually(t, "the relay to load the webhooks", func() bool {
		return r.Routes(hook.ID) && r.Routes(other.ID)
	})

	// A failing first attempt: stored, visible in the log with its attempt.
	db.Exec(t, `INSERT INTO contacts (organization_id, first_name) VALUES (1, 'Ada')`)
	one.await(t, http.StatusServiceUnavailable)
	var first delivery
	testkit.Eventually(t, "the failed delivery in the log", func() bool {
		var p deliveryPage
		e.expect(e.do("GET", "/v1/webhooks/"+hook.ID+"/deliveries", nil), http.StatusOK).json(t, &p)
		if len(p.Data) == 1 && len(p.Data[0].Attempts) == 1 {
			first = p.Data[0]
			return true
		}
		return false
	})
	if first.Status != "pending" || first.Attempts[0].StatusCode != 503 || first.EventType != "contact.created" || first.Tenant != "1" {
		t.Errorf("first delivery = %+v", first)
	}
	// The delivery's page shows the headers the attempt was sent with, as
	// the endpoint received them: its signature verifies with the secret.
	var one1 delivery
	e.expect(e.do("GET", "/v1/deliveries/"+first.ID, nil), http.StatusOK).json(t, &one1)
	shown := one1.Attempts[0].RequestHeaders
	one.mu.Lock()
	received := one.first[http.StatusServiceUnavailable]
	one.mu.Unlock()
	for _, name := range []string{"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature", "Webhook-Attempt", "Content-Type", "User-Agent"} {
		if shown[name] == "" || shown[name] != received.Get(name) {
			t.Errorf("attempt shows %s %q, the endpoint received %q", name, shown[name], received.Get(name))
		}
	}
	if err := signing.Verify(signing.StandardWebhooks, []string{hook.Secret}, headerOf(shown), one1.Payload, time.Now(), time.Hour); err != nil {
		t.Errorf("the signature shown does not verify against the payload: %v", err)
	}
	// body is the exact bytes signed and sent; a list does not carry it.
	if one1.Body == nil || first.Body != nil {
		t.Fatalf("body on the single read %v, on the list %v", one1.Body, first.Body)
	}
	if err := signing.Verify(signing.StandardWebhooks, []string{hook.Secret}, headerOf(shown), []byte(*one1.Body), time.Now(), time.Hour); err != nil {
		t.Errorf("the signature shown does not verify against body: %v", err)
	}

	// Retry through the API delivers again, now.
	one.status.Store(http.StatusOK)
	e.expect(e.do("POST", "/v1/deliveries/"+first.ID+"/retry", nil), http.StatusOK)
	one.await(t, http.StatusOK)
	testkit.Eventually(t, "the retried delivery to be delivered", func() bool {
		d, err := st.GetDelivery(context.Background(), first.ID)
		return err == nil && d.Status == "delivered"
	})
	// The retry continued the numbering: the receiver got the next
	// Webhook-Attempt, and the log holds each number once.
	var retried delivery
	e.expect(e.do("GET", "/v1/deliveries/"+first.ID, nil), http.StatusOK).json(t, &retried)
	one.mu.Lock()
	gotAttempt := one.first[http.StatusOK].Get("Webhook-Attempt")
	one.mu.Unlock()
	for i, a := range retried.Attempts {
		if a.Number != len(retried.Attempts)-i {
			t.Errorf("after a retry the attempts are numbered %+v, want %d down to 1", retried.Attempts, len(retried.Attempts))
			break
		}
	}
	if want := strconv.Itoa(len(retried.Attempts)); len(retried.Attempts) < 2 || gotAttempt != want {
		t.Errorf("the retried attempt reached the endpoint with Webhook-Attempt %q, want %s", gotAttempt, want)
	}

	// 410 Gone disables the endpoint and fails the delivery.
	one.status.Store(http.StatusGone)
	db.Exec(t, `INSERT INTO contacts (organization_id, first_name) VALUES (1, 'Grace')`)
	one.await(t, http.StatusGone)
	testkit.Eventually(t, "the endpoint to be disabled", func() bool {
		var w webhook
		e.expect(e.do("GET", "/v1/webhooks/"+hook.ID, nil), http.StatusOK).json(t, &w)
		return w.Health.Disabled
	})
	var failed deliveryPage
	testkit.Eventually(t, "the failed delivery", func() bool {
		e.expect(e.do("GET", "/v1/webhooks/"+hook.ID+"/deliveries?status=failed", nil), http.StatusOK).json(t, &failed)
		return len(failed.Data) == 1
	})

	// Enable and recover: delivered again. The relay reads endpoint health
	// every 2s, so a recover right after enable may meet the endpoint still
	// disabled and fail again; recover until it is delivered.
	one.status.Store(http.StatusOK)
	e.expect(e.do("POST", "/v1/webhooks/"+hook.ID+"/enable", nil), http.StatusOK)
	since := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	testkit.Eventually(t, "the recovered delivery to be delivered", func() bool {
		d, err := st.GetDelivery(context.Background(), failed.Data[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status == "failed" {
			e.expect(e.do("POST", "/v1/webhooks/"+hook.ID+"/recover", map[string]any{"since": since}), http.StatusOK)
		}
		return d.Status == "delivered"
	})

	// Tenant scoping: the tenant-2 webhook received nothing of tenant 1.
	if n := two.count(); n != 0 {
		t.Errorf("the tenant-2 webhook received %d requests of tenant 1", n)
	}
	db.Exec(t, `INSERT INTO contacts (organization_id, first_name) VALUES (2, 'Linus')`)
	two.await(t, http.StatusOK)

	// The metrics moved with all of it. A receiver records a request before
	// walhook has read the answer and counted it: scrape until they settle.
	want := map[string]float64{
		`walhook_changes_read_total`:                                                3,
		`walhook_events_emitted_total{type="contact.created"}`:                      3,
		`walhook_attempts_total{endpoint="` + hook.ID + `",result="5xx"}`:           1,
		`walhook_attempts_total{endpoint="` + hook.ID + `",result="4xx"}`:           1,
		`walhook_attempts_total{endpoint="` + hook.ID + `",result="2xx"}`:           2,
		`walhook_deliveries_total{endpoint="` + hook.ID + `",outcome="retrying"}`:   1,
		`walhook_deliveries_total{endpoint="` + hook.ID + `",outcome="delivered"}`:  2,
		`walhook_deliveries_total{endpoint="` + other.ID + `",outcome="delivered"}`: 1,
		`walhook_attempt_duration_seconds_count{endpoint="` + hook.ID + `"}`:        4,
		`walhook_endpoints_disabled_total`:                                          1,
		`walhook_source_connected`:                                                  1,
		`walhook_source_streaming`:                                                  1,
		`walhook_confirmed_lsn`:                                                     1,
	}
	got := scrapeMetrics(t, e)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); got = scrapeMetrics(t, e) {
		short := false
		for series, min := range want {
			short = short || got[series] < min
		}
		if !short {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for series, min := range want {
		if got[series] < min {
			t.Errorf("%s = %v, want at least %v", series, got[series], min)
		}
	}
	if got["walhook_endpoints_disabled"] != 0 || got["walhook_deliveries_failed"] != 0 {
		t.Errorf("after recovery: %v disabled, %v failed", got["walhook_endpoints_disabled"], got["walhook_deliveries_failed"])
	}
}

// runRelay runs a relay on the config src until the test ends, observed by
// observer (may be nil), and waits until it streams.
func runRelay(t *testing.T, src string, opts relay.Options) (*config.Config, *relay.Relay) {
	t.Helper()
	cfg, diags := config.Parse([]byte(src), "test.hcl")
	if diags.HasErrors() {
		t.Fatalf("config: %v", diags)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	opts.RetryPoll, opts.HeartbeatInterval = 20*time.Millisecond, 500*time.Millisecond
	r, err := relay.New(ctx, cfg, log, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Error("relay did not stop")
		}
	})
	testkit.Eventually(t, "the relay to stream", func() bool { return r.Ready(ctx) == nil })
	return cfg, r
}
