package admin_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/admin"
	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/metrics"
	"github.com/walhook/walhook/internal/netguard"
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
	arrived  chan int // each request's answered status
}

func newSwitchable(t *testing.T, status int) (*switchable, *httptest.Server) {
	s := &switchable{answered: map[int]int{}, arrived: make(chan int, 100)}
	s.status.Store(int32(status))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		st := int(s.status.Load())
		s.mu.Lock()
		s.answered[st]++
		s.mu.Unlock()
		w.WriteHeader(st)
		s.arrived <- st
	}))
	t.Cleanup(srv.Close)
	return s, srv
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
	cfg, diags := config.Parse([]byte(src), "test.hcl")
	if diags.HasErrors() {
		t.Fatalf("config: %v", diags)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := metrics.New(nil)
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	r, err := relay.New(ctx, cfg, log, relay.Options{Observer: m, RetryPoll: 20 * time.Millisecond, HeartbeatInterval: 500 * time.Millisecond})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	m.WatchQueue(r.Store.Stats)
	m.WatchHealth(r.Store.AllHealth)
	m.WatchReader(r.Reader.Status)
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
	testkit.Eventually(t, "the reader to stream", func() bool { return r.Reader.Status().Streaming })

	guard := &netguard.Guard{Allow: cfg.Admin.AllowNetworks, AllowHTTP: cfg.Admin.AllowHTTP}
	srv := httptest.NewServer(admin.New(admin.Options{
		Store: r.Store, Tokens: cfg.Admin.Tokens, Events: r.Rules.Catalogue(), Guard: guard,
		Tester: newTestTester(r.Store, guard), Metrics: m.Handler(), Logger: log,
	}))
	t.Cleanup(srv.Close)
	e := &apiEnv{t: t, db: db, store: r.Store, srv: srv, metrics: m}

	one, oneURL := newSwitchable(t, http.StatusServiceUnavailable)
	two, twoURL := newSwitchable(t, http.StatusOK)
	hook := e.create(map[string]any{"url": oneURL.URL + "/hook", "events": []string{"contact.*"}, "tenant": "1"})
	other := e.create(map[string]any{"url": twoURL.URL + "/hook", "events": []string{"*"}, "tenant": "2"})
	// New webhooks take effect without a restart.
	testkit.Eventually(t, "the relay to load the webhooks", func() bool {
		return r.Dispatcher.Endpoint(hook.ID) != nil && r.Dispatcher.Endpoint(other.ID) != nil
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

	// Retry through the API delivers again, now.
	one.status.Store(http.StatusOK)
	e.expect(e.do("POST", "/v1/deliveries/"+first.ID+"/retry", nil), http.StatusOK)
	one.await(t, http.StatusOK)
	testkit.Eventually(t, "the retried delivery to be delivered", func() bool {
		d, err := r.Store.GetDelivery(context.Background(), first.ID)
		return err == nil && d.Status == "delivered"
	})

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
		d, err := r.Store.GetDelivery(context.Background(), failed.Data[0].ID)
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
	var got map[string]float64
	testkit.Eventually(t, fmt.Sprintf("the metrics to reach at least %v", want), func() bool {
		got = scrapeMetrics(t, e)
		for series, min := range want {
			if got[series] < min {
				return false
			}
		}
		return true
	})
	if got["walhook_endpoints_disabled"] != 0 || got["walhook_deliveries_failed"] != 0 {
		t.Errorf("after recovery: %v disabled, %v failed", got["walhook_endpoints_disabled"], got["walhook_deliveries_failed"])
	}
}
