package relay_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/relay"
	"github.com/walhook/walhook/testenv"
)

// typeCount is how many distinct events of type t s received.
func (s *verifyingSink) typeCount(t string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byType[t]
}

// BenchmarkBackfill measures how fast a backfill sends a table's rows
// (1,000,000 by default; WALHOOK_BENCH_N overrides) to a local receiver
// that verifies every signature, while a live stream of 500 inserts a
// second (each its own transaction, committed synchronously) goes on; it
// reports the live events' commit-to-delivery latency during the backfill.
//
//	go test -run '^$' -bench BenchmarkBackfill -benchtime 1x -timeout 30m ./relay/
func BenchmarkBackfill(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("WALHOOK_BENCH_N"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	const liveRate = 500
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db := testenv.NewDB(b)
		db.Exec(b, `CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, amount numeric(12,2), created_at timestamptz NOT NULL DEFAULT now())`)
		db.Exec(b, `INSERT INTO items (id, name, amount) SELECT i, 'item ' || i, i * 0.25 FROM generate_series(1, $1) i`, n)
		db.Exec(b, `VACUUM ANALYZE items`)
		secret := signing.GenerateSecret()
		sink := &verifyingSink{secret: secret, seen: make(map[string]bool, n), wake: make(chan struct{}, 1),
			latencyOf: "contact.created", byType: map[string]int{}}
		srv := httptest.NewServer(sink)
		slot := testenv.Name(b, "slot")
		run := runConfig(b, db, backfillConfig(db, slot, `
event "contact.created" {
  table = "contacts"
  on    = ["insert"]
}
event "item.synced" {
  table = "items"
  on    = ["read"]
}`, fmt.Sprintf(`
endpoint "bench" {
  url         = %q
  events      = ["*"]
  secret      = %q
  concurrency = 32
}`, srv.URL, secret)), relay.Options{})
		for run.ready() != nil {
			time.Sleep(10 * time.Millisecond)
		}
		admin := httptest.NewServer(run.relay.AdminHandler())

		// The live stream: 500 single-row transactions a second.
		writers := syncWriters(b, db)
		liveCtx, stopLive := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		work := make(chan int, liveRate)
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range work {
					_, _ = writers.Exec(context.Background(), `INSERT INTO contacts (organization_id, first_name) VALUES ($1, 'x')`, j%10)
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(work)
			tick := time.NewTicker(time.Second / liveRate)
			defer tick.Stop()
			for j := 0; ; j++ {
				select {
				case <-liveCtx.Done():
					return
				case <-tick.C:
					work <- j
				}
			}
		}()

		b.StartTimer()
		begin := time.Now()
		req, _ := http.NewRequest("POST", admin.URL+"/v1/backfills", strings.NewReader(`{"table": "items"}`))
		req.Header.Set("Authorization", "Bearer "+backfillToken)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != http.StatusCreated {
			b.Fatalf("POST /v1/backfills: %v %v", err, res)
		}
		res.Body.Close()
		sink.waitCount(b, n, 20*time.Minute, func() int { return sink.typeCount("item.synced") })
		took := time.Since(begin)
		b.StopTimer()
		stopLive()
		wg.Wait()
		writers.Close()
		admin.Close()
		if err := run.stop(); err != nil {
			b.Errorf("relay: %v", err)
		}
		srv.Close()
		sink.mu.Lock()
		lat := slices.Clone(sink.lat)
		bad := sink.bad
		sink.mu.Unlock()
		if bad > 0 {
			b.Fatalf("%d deliveries failed verification", bad)
		}
		if len(lat) == 0 {
			b.Fatal("no live event was delivered during the backfill")
		}
		slices.Sort(lat)
		b.ReportMetric(float64(n)/took.Seconds(), "rows/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "live-p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "live-p99-ms")
		b.ReportMetric(float64(len(lat)), "live-events")
	}
}
