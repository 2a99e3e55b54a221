package admin_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/sender"
	"github.com/walhook/walhook/internal/store"
)

// delivery is a delivery as the API returns it.
type delivery struct {
	ID            string          `json:"id"`
	EventID       string          `json:"event_id"`
	EventType     string          `json:"event_type"`
	EndpointID    string          `json:"endpoint_id"`
	Status        string          `json:"status"`
	Tenant        string          `json:"tenant"`
	CommitLSN     string          `json:"commit_lsn"`
	AttemptCount  int             `json:"attempt_count"`
	NextAttemptAt *time.Time      `json:"next_attempt_at"`
	LastStatus    int             `json:"last_status"`
	LastError     string          `json:"last_error"`
	Payload       json.RawMessage `json:"payload"`
	Body          *string         `json:"body"` // single-delivery reads only
	Attempts      []struct {
		Number     int     `json:"number"`
		StatusCode int     `json:"status_code"`
		OK         bool    `json:"ok"`
		Error      string  `json:"error"`
		Response   string  `json:"response"`
		DurationMS float64 `json:"duration_ms"`
		// Single-delivery reads only.
		RequestHeaders map[string]string `json:"request_headers"`
	} `json:"attempts"`
}

type deliveryPage struct {
	Data       []delivery `json:"data"`
	NextCursor string     `json:"next_cursor"`
}

// failDeliveries stores n deliveries of an endpoint whose attempts really
// failed against a 503 receiver: each gets attemptsEach attempts, the last
// leaving it failed when final, else pending.
func failDeliveries(t *testing.T, e *apiEnv, endpointID string, n, attemptsEach int, final bool, eventType string) []store.Delivery {
	t.Helper()
	ctx := context.Background()
	rcv := newReceiver(t, http.StatusServiceUnavailable, "try later")
	client := sender.New(sender.Options{})
	defer client.Close()
	var out []store.Delivery
	for i := 0; i < n; i++ {
		body := []byte(fmt.Sprintf(`{"id":"evt_%s_%d","type":%q,"data":{"n":%d}}`, endpointID, i, eventType, i))
		d := store.Delivery{
			EventID: fmt.Sprintf("evt_%s_%s_%d", endpointID, eventType, i), EventType: eventType, EndpointID: endpointID,
			Tenant: "acme", Body: body, EventTime: time.Now(), CommitLSN: uint64(0x16B374D848 + i),
		}
		d.ID = store.DeliveryID(d.EventID, d.EndpointID)
		if err := e.store.Persist(ctx, []store.Delivery{d}); err != nil {
			t.Fatal(err)
		}
		for a := 1; a <= attemptsEach; a++ {
			res := client.Send(ctx, sender.Request{URL: rcv.URL, Body: body})
			rcv.next(t)
			outcome := store.Outcome{Status: store.StatusPending, NextAttemptAt: time.Now().Add(time.Hour)}
			if a == attemptsEach && final {
				outcome = store.Outcome{Status: store.StatusFailed}
			}
			_, err := e.store.Complete(ctx, d, store.Attempt{Number: a, AttemptedAt: time.Now(), Duration: res.Duration,
				StatusCode: res.StatusCode, Error: res.ErrorText(), Response: string(res.Response)}, outcome)
			if err != nil {
				t.Fatal(err)
			}
			d.Attempts = a
		}
		out = append(out, d)
	}
	return out
}

func TestDeliveryLog(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	hook := e.create(map[string]any{"url": "https://example.com/hook", "events": []string{"*"}})
	failed := failDeliveries(t, e, hook.ID, 2, 3, true, "contact.created")
	pending := failDeliveries(t, e, hook.ID, 3, 1, false, "deal.stage.changed")
	failDeliveries(t, e, "cfg:crm", 1, 1, true, "contact.created") // another endpoint's

	var all deliveryPage
	e.expect(e.do("GET", "/v1/webhooks/"+hook.ID+"/deliveries", nil), http.StatusOK).json(t, &all)
	if len(all.Data) != 5 || all.NextCursor != "" {
		t.Fatalf("%d deliveries (cursor %q), want 5", len(all.Data), all.NextCursor)
	}
	// Newest first.
	if all.Data[0].ID != pending[2].ID || all.Data[4].ID != failed[0].ID {
		t.Errorf("order: first %s last %s", all.Data[0].ID, all.Data[4].ID)
	}
	f := all.Data[4]
	if f.Status != "failed" || f.AttemptCount != 3 || len(f.Attempts) != 3 || f.LastStatus != 503 || f.LastError != "status 503" ||
		f.EndpointID != hook.ID || f.Tenant != "acme" || f.CommitLSN != "16/B374D848" || f.NextAttemptAt != nil {
		t.Errorf("failed delivery = %+v", f)
	}
	for i, a := range f.Attempts {
		if a.Number != 3-i || a.StatusCode != 503 || a.OK || a.Response != "try later" || a.Error != "status 503" {
			t.Errorf("attempt %d = %+v", i, a)
		}
	}
	var payload map[string]any
	if err := json.Unmarshal(f.Payload, &payload); err != nil || payload["type"] != "contact.created" {
		t.Errorf("payload %s: %v", f.Payload, err)
	}
	if p := all.Data[0]; p.Status != "pending" || p.NextAttemptAt == nil || len(p.Attempts) != 1 {
		t.Errorf("pending delivery = %+v", p)
	}

	count := func(query string) int {
		var p deliveryPage
		e.expect(e.do("GET", "/v1/webhooks/"+hook.ID+"/deliveries?"+query, nil), http.StatusOK).json(t, &p)
		return len(p.Data)
	}
	if n := count("status=failed"); n != 2 {
		t.Errorf("status=failed: %d", n)
	}
	if n := count("status=pending&event_type=deal.stage.changed"); n != 3 {
		t.Errorf("pending deal.stage.changed: %d", n)
	}
	if n := count("event_type=contact.created"); n != 2 {
		t.Errorf("event_type=contact.created: %d", n)
	}
	if n := count("since=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339)); n != 0 {
		t.Errorf("since an hour ahead: %d", n)
	}
	if n := count("since=" + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)); n != 5 {
		t.Errorf("since an hour ago: %d", n)
	}

	// Pagination walks every delivery once.
	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		var p deliveryPage
		e.expect(e.do("GET", "/v1/webhooks/"+hook.ID+"/deliveries?limit=2&cursor="+cursor, nil), http.StatusOK).json(t, &p)
		pages++
		for _, d := range p.Data {
			if seen[d.ID] {
				t.Errorf("delivery %s on two pages", d.ID)
			}
			seen[d.ID] = true
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	if len(seen) != 5 || pages != 3 {
		t.Errorf("%d deliveries over %d pages, want 5 over 3", len(seen), pages)
	}

	// The config endpoint's log is its own.
	var cfg deliveryPage
	e.expect(e.do("GET", "/v1/webhooks/cfg:crm/deliveries", nil), http.StatusOK).json(t, &cfg)
	if len(cfg.Data) != 1 || cfg.Data[0].EndpointID != "cfg:crm" {
		t.Errorf("cfg:crm deliveries = %+v", cfg.Data)
	}
}

func TestRetryAndRecover(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	ctx := context.Background()
	hook := e.create(map[string]any{"url": "https://example.com/hook", "events": []string{"*"}})
	failed := failDeliveries(t, e, hook.ID, 4, 2, true, "contact.created")

	// Retry one: pending, due now, its attempt count kept (the next attempt
	// is number 3), attempts kept in the log.
	var d delivery
	e.expect(e.do("POST", "/v1/deliveries/"+failed[0].ID+"/retry", nil), http.StatusOK).json(t, &d)
	if d.Status != "pending" || d.AttemptCount != 2 || d.NextAttemptAt == nil || time.Until(*d.NextAttemptAt) > time.Second || len(d.Attempts) != 2 {
		t.Errorf("retried = %+v", d)
	}
	st, err := e.store.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Due != 1 || st.Failed != 3 {
		t.Errorf("after retry: %d due, %d failed; want 1, 3", st.Due, st.Failed)
	}
	// Tenant-scoped retry of another tenant's delivery is not found.
	e.expect(e.do("POST", "/v1/deliveries/"+failed[1].ID+"/retry?tenant=globex", nil), http.StatusNotFound)
	e.expect(e.do("POST", "/v1/deliveries/"+failed[1].ID+"/retry?tenant=acme", nil), http.StatusOK)

	// Recover: every failed delivery since then is due again.
	r := e.expect(e.do("POST", "/v1/webhooks/"+hook.ID+"/recover", map[string]any{"since": "2026-01-01T00:00:00Z"}), http.StatusOK)
	var rec struct {
		Recovered int `json:"recovered"`
	}
	r.json(t, &rec)
	if rec.Recovered != 2 {
		t.Errorf("recovered %d, want 2", rec.Recovered)
	}
	if st, _ := e.store.Stats(ctx); st.Due != 4 || st.Failed != 0 {
		t.Errorf("after recover: %d due, %d failed; want 4, 0", st.Due, st.Failed)
	}
	for _, body := range []any{map[string]any{}, map[string]any{"since": "last week"}, map[string]any{"since": 12}} {
		e.expect(e.do("POST", "/v1/webhooks/"+hook.ID+"/recover", body), http.StatusBadRequest)
	}
	e.expect(e.do("POST", "/v1/webhooks/"+hook.ID+"/recover", nil), http.StatusBadRequest)
}

func TestEnableAndMetrics(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	ctx := context.Background()
	hook := e.create(map[string]any{"url": "https://example.com/hook", "events": []string{"*"}})
	failDeliveries(t, e, hook.ID, 2, 1, true, "contact.created")
	failDeliveries(t, e, hook.ID, 3, 1, false, "contact.updated")
	if err := e.store.Disable(ctx, hook.ID, "endpoint answered 410 Gone"); err != nil {
		t.Fatal(err)
	}

	var got webhook
	e.expect(e.do("GET", "/v1/webhooks/"+hook.ID, nil), http.StatusOK).json(t, &got)
	if !got.Health.Disabled || got.Health.DisabledReason != "endpoint answered 410 Gone" || got.Health.ConsecutiveFailures != 5 {
		t.Errorf("health = %+v", got.Health)
	}

	m := scrapeMetrics(t, e)
	for series, want := range map[string]float64{
		"walhook_retry_queue_depth":  3,
		"walhook_retry_due":          0,
		"walhook_deliveries_failed":  2,
		"walhook_endpoints_disabled": 1,
	} {
		if m[series] != want {
			t.Errorf("%s = %v, want %v", series, m[series], want)
		}
	}
	// The observer's series move as the dispatcher reports.
	e.metrics.Attempted(store.Attempt{EndpointID: hook.ID, StatusCode: 503, Error: "503", Duration: 20 * time.Millisecond, Number: 1}, "")
	e.metrics.Outcome(hook.ID, "retrying")
	e.metrics.Attempted(store.Attempt{EndpointID: hook.ID, StatusCode: 200, Duration: 10 * time.Millisecond, Number: 2}, "")
	e.metrics.Outcome(hook.ID, "delivered")
	m = scrapeMetrics(t, e)
	for series, want := range map[string]float64{
		`walhook_attempts_total{endpoint="` + hook.ID + `",result="5xx"}`:               1,
		`walhook_attempts_total{endpoint="` + hook.ID + `",result="2xx"}`:               1,
		`walhook_deliveries_total{endpoint="` + hook.ID + `",outcome="retrying"}`:       1,
		`walhook_deliveries_total{endpoint="` + hook.ID + `",outcome="delivered"}`:      1,
		`walhook_attempt_duration_seconds_count{endpoint="` + hook.ID + `"}`:            2,
		`walhook_attempt_duration_seconds_bucket{endpoint="` + hook.ID + `",le="0.01"}`: 1,
	} {
		if m[series] != want {
			t.Errorf("%s = %v, want %v", series, m[series], want)
		}
	}

	var enabled struct {
		Health struct {
			Disabled            bool `json:"disabled"`
			ConsecutiveFailures int  `json:"consecutive_failures"`
		} `json:"health"`
	}
	e.expect(e.do("POST", "/v1/webhooks/"+hook.ID+"/enable", nil), http.StatusOK).json(t, &enabled)
	if enabled.Health.Disabled || enabled.Health.ConsecutiveFailures != 0 {
		t.Errorf("after enable: %+v", enabled.Health)
	}
	if h, _ := e.store.Health(ctx, hook.ID); h.Disabled {
		t.Error("the store still has the endpoint disabled")
	}
}

// scrapeMetrics reads /metrics from the admin listener, without a token.
func scrapeMetrics(t *testing.T, e *apiEnv) map[string]float64 {
	t.Helper()
	r := e.expect(e.call("GET", "/metrics", nil, ""), http.StatusOK)
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		out[line[:i]] = v
	}
	return out
}
