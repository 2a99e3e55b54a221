package metrics

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/store"
)

// scrape fetches /metrics over HTTP and returns each sample by its
// series as printed ("name{label=\"v\"}").
func scrape(t *testing.T, h http.Handler) map[string]float64 {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatalf("scraping: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape status %d", resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

func TestObserverSeriesMove(t *testing.T) {
	t.Parallel()
	m := New(prometheus.NewRegistry())
	m.ChangesRead(3)
	m.ChangesRead(2)
	m.EventEmitted("contact.created")
	m.EventEmitted("contact.created")
	m.EventEmitted("deal.closed")
	m.EvaluationsFailed(4)
	m.Attempted(store.Attempt{EndpointID: "cfg:crm", StatusCode: 200, Duration: 30 * time.Millisecond, Number: 1}, "") // first-attempt success: delivered
	m.Attempted(store.Attempt{EndpointID: "cfg:crm", StatusCode: 503, Error: "503", Duration: 2 * time.Second, Number: 1}, "")
	m.Attempted(store.Attempt{EndpointID: "cfg:crm", Error: "timeout", Duration: 15 * time.Second, Number: 2}, "")
	m.Attempted(store.Attempt{EndpointID: "ep_x", StatusCode: 204, Duration: time.Millisecond, Number: 3}, "") // a retry's success is reported by Outcome
	m.Outcome("cfg:crm", "retrying")
	m.Outcome("ep_x", "delivered")
	m.Outcome("ep_x", "failed")
	m.Overflowed("ep_x")
	m.Disabled("ep_x")

	got := scrape(t, m.Handler())
	want := map[string]float64{
		`walhook_changes_read_total`:                                            5,
		`walhook_events_emitted_total{type="contact.created"}`:                  2,
		`walhook_events_emitted_total{type="deal.closed"}`:                      1,
		`walhook_evaluations_failed_total`:                                      4,
		`walhook_deliveries_total{endpoint="cfg:crm",outcome="delivered"}`:      1,
		`walhook_deliveries_total{endpoint="cfg:crm",outcome="retrying"}`:       1,
		`walhook_deliveries_total{endpoint="ep_x",outcome="delivered"}`:         1,
		`walhook_deliveries_total{endpoint="ep_x",outcome="failed"}`:            1,
		`walhook_attempts_total{endpoint="cfg:crm",result="2xx"}`:               1,
		`walhook_attempts_total{endpoint="cfg:crm",result="5xx"}`:               1,
		`walhook_attempts_total{endpoint="cfg:crm",result="error"}`:             1,
		`walhook_attempts_total{endpoint="ep_x",result="2xx"}`:                  1,
		`walhook_attempt_duration_seconds_count{endpoint="cfg:crm"}`:            3,
		`walhook_attempt_duration_seconds_bucket{endpoint="cfg:crm",le="0.05"}`: 1,
		`walhook_attempt_duration_seconds_bucket{endpoint="cfg:crm",le="2.5"}`:  2,
		`walhook_overflow_total{endpoint="ep_x"}`:                               1,
		`walhook_endpoints_disabled_total`:                                      1,
	}
	for series, v := range want {
		if got[series] != v {
			t.Errorf("%s = %v, want %v", series, got[series], v)
		}
	}
	// Unwatched gauges are absent rather than zero.
	if _, ok := got["walhook_retry_queue_depth"]; ok {
		t.Error("walhook_retry_queue_depth is exported without WatchQueue")
	}
}

func TestStateGaugesAndCache(t *testing.T) {
	t.Parallel()
	m := New(nil)
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m.state.now = func() time.Time { return clock }
	var queueReads, healthReads atomic.Int32
	oldest := clock.Add(-90 * time.Second)
	m.WatchQueue(func(ctx context.Context) (store.QueueStats, error) {
		n := queueReads.Add(1)
		return store.QueueStats{Pending: 10 * int64(n), Due: 4, Failed: 7, OldestDue: &oldest}, nil
	})
	m.WatchHealth(func(ctx context.Context) ([]store.Health, error) {
		healthReads.Add(1)
		return []store.Health{{EndpointID: "a", Disabled: true}, {EndpointID: "b"}, {EndpointID: "c", Disabled: true}}, nil
	})
	m.WatchReader(func() cdc.Status {
		return cdc.Status{Connected: true, Streaming: true, Received: 5000, Acked: 4000, ServerWALEnd: 6000,
			LastCommitTime: clock.Add(-3 * time.Second)}
	})

	got := scrape(t, m.Handler())
	want := map[string]float64{
		"walhook_retry_queue_depth":        10,
		"walhook_retry_due":                4,
		"walhook_deliveries_failed":        7,
		"walhook_retry_oldest_due_seconds": 90,
		"walhook_endpoints_disabled":       2,
		"walhook_source_connected":         1,
		"walhook_source_streaming":         1,
	}
	for series, v := range want {
		if got[series] != v {
			t.Errorf("%s = %v, want %v", series, got[series], v)
		}
	}
	if got["go_goroutines"] <= 0 {
		t.Error("New(nil) registers no Go runtime metrics")
	}
	// Within the cache period the store is not read again.
	clock = clock.Add(time.Second)
	got = scrape(t, m.Handler())
	if queueReads.Load() != 1 || healthReads.Load() != 1 || got["walhook_retry_queue_depth"] != 10 {
		t.Errorf("after 1s: %d queue reads, %d health reads, depth %v; want cached", queueReads.Load(), healthReads.Load(), got["walhook_retry_queue_depth"])
	}
	clock = clock.Add(2 * time.Second)
	got = scrape(t, m.Handler())
	if queueReads.Load() != 2 || got["walhook_retry_queue_depth"] != 20 {
		t.Errorf("after 3s: %d queue reads, depth %v; want a fresh read", queueReads.Load(), got["walhook_retry_queue_depth"])
	}
}

func TestStateGaugesEdgeCases(t *testing.T) {
	t.Parallel()
	m := New(nil)
	m.WatchQueue(func(ctx context.Context) (store.QueueStats, error) {
		return store.QueueStats{}, errors.New("state database down")
	})
	m.WatchReader(func() cdc.Status { return cdc.Status{} })
	got := scrape(t, m.Handler())
	if _, ok := got["walhook_retry_queue_depth"]; ok {
		t.Error("queue depth exported although the store read failed")
	}
	if got["walhook_metrics_read_errors_total"] != 1 {
		t.Errorf("read errors = %v, want 1", got["walhook_metrics_read_errors_total"])
	}
	if v, ok := got["walhook_source_connected"]; !ok || v != 0 {
		t.Errorf("walhook_source_connected = %v (present %v), want 0", v, ok)
	}
	// Without WatchReplication there are no replication gauges, rather
	// than zeros that would read as "caught up".
	if _, ok := got["walhook_replication_lag_bytes"]; ok {
		t.Error("walhook_replication_lag_bytes exported without WatchReplication")
	}
}

func TestConcurrencyLimitGauge(t *testing.T) {
	t.Parallel()
	m := New(prometheus.NewRegistry())
	m.ConcurrencyLimit("cfg:crm", 8)
	m.ConcurrencyLimit("cfg:crm", 16)
	m.ConcurrencyLimit("ep_x", 1)
	got := scrape(t, m.Handler())
	if got[`walhook_endpoint_concurrency_limit{endpoint="cfg:crm"}`] != 16 || got[`walhook_endpoint_concurrency_limit{endpoint="ep_x"}`] != 1 {
		t.Fatalf("gauges: %v", got)
	}
	m.ConcurrencyLimit("ep_x", 0)
	got = scrape(t, m.Handler())
	if _, ok := got[`walhook_endpoint_concurrency_limit{endpoint="ep_x"}`]; ok {
		t.Fatal("a forgotten endpoint keeps its gauge")
	}
}

// TestObserverSeriesAppearWhenMoved: the series the observer caches are
// made when first moved, as before the cache: a failed attempt exports no
// 2xx or delivered series of its endpoint.
func TestObserverSeriesAppearWhenMoved(t *testing.T) {
	t.Parallel()
	m := New(prometheus.NewRegistry())
	m.Attempted(store.Attempt{EndpointID: "cfg:down", StatusCode: 503, Error: "503", Duration: time.Second, Number: 1}, "")
	got := scrape(t, m.Handler())
	for _, series := range []string{
		`walhook_attempts_total{endpoint="cfg:down",result="2xx"}`,
		`walhook_deliveries_total{endpoint="cfg:down",outcome="delivered"}`,
	} {
		if _, ok := got[series]; ok {
			t.Errorf("%s is exported before any success", series)
		}
	}
	if got[`walhook_attempts_total{endpoint="cfg:down",result="5xx"}`] != 1 || got[`walhook_attempt_duration_seconds_count{endpoint="cfg:down"}`] != 1 {
		t.Errorf("the failed attempt is not counted: %v", got)
	}
	m.Attempted(store.Attempt{EndpointID: "cfg:down", StatusCode: 204, Duration: time.Millisecond, Number: 2}, "")
	m.Attempted(store.Attempt{EndpointID: "cfg:down", StatusCode: 204, Duration: time.Millisecond, Number: 1}, "")
	got = scrape(t, m.Handler())
	if got[`walhook_attempts_total{endpoint="cfg:down",result="2xx"}`] != 2 || got[`walhook_deliveries_total{endpoint="cfg:down",outcome="delivered"}`] != 1 {
		t.Errorf("successes not counted once each: %v", got)
	}
}

// TestConnectionsOpened counts the attempts that opened a connection.
func TestConnectionsOpened(t *testing.T) {
	t.Parallel()
	m := New(prometheus.NewRegistry())
	for _, connected := range []bool{true, false, false, true} {
		m.Attempted(store.Attempt{EndpointID: "ep_1", StatusCode: 204, Number: 1, Connected: connected}, "")
	}
	m.Attempted(store.Attempt{EndpointID: "ep_2", StatusCode: 204, Number: 1}, "")
	got := scrape(t, m.Handler())
	if n := got[`walhook_connections_opened_total{endpoint="ep_1"}`]; n != 2 {
		t.Errorf("ep_1: %v connections opened, want 2", n)
	}
	if _, ok := got[`walhook_connections_opened_total{endpoint="ep_2"}`]; ok {
		t.Error("ep_2 has a connections series before opening any")
	}
}
