package relay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/relay"
	"github.com/walhook/walhook/testenv"
)

// verifyingSink verifies each delivery's signature and records its
// commit-to-delivery latency (the body's timestamp is the commit time).
type verifyingSink struct {
	secret string
	mu     sync.Mutex
	seen   map[string]bool
	lat    []time.Duration
	bad    int
	wake   chan struct{}
	// latencyOf, when set, limits the latencies recorded to events of
	// that type; byType, when not nil, counts the distinct events by type.
	latencyOf string
	byType    map[string]int
}

func (s *verifyingSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	now := time.Now()
	if err := signing.Verify(signing.StandardWebhooks, []string{s.secret}, r.Header, body, now, time.Minute); err != nil {
		s.mu.Lock()
		s.bad++
		s.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var ev struct {
		Type      string    `json:"type"`
		Timestamp time.Time `json:"timestamp"`
	}
	_ = json.Unmarshal(body, &ev)
	s.mu.Lock()
	id := r.Header.Get("webhook-id")
	if !s.seen[id] {
		s.seen[id] = true
		if s.latencyOf == "" || ev.Type == s.latencyOf {
			s.lat = append(s.lat, now.Sub(ev.Timestamp))
		}
		if s.byType != nil {
			s.byType[ev.Type]++
		}
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *verifyingSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// waitCount waits, woken by each delivery, until count() reaches n.
func (s *verifyingSink) waitCount(b *testing.B, n int, within time.Duration, count func() int) {
	deadline := time.Now().Add(within)
	for count() < n {
		if time.Now().After(deadline) {
			b.Fatalf("delivered %d of %d within %v", count(), n, within)
		}
		select {
		case <-s.wake:
		case <-time.After(time.Second):
		}
	}
}

// syncWriters is a pool on db whose transactions commit synchronously, as
// applications' usually do (testenv's cluster defaults to
// synchronous_commit=off, which delays WAL flushes, and so decoding, by up
// to wal_writer_delay).
func syncWriters(b *testing.B, db *testenv.DB) *pgxpool.Pool {
	pcfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		b.Fatal(err)
	}
	pcfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	writers, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		b.Fatal(err)
	}
	return writers
}

func benchConfig(db *testenv.DB, slot, url, secret string) string {
	return fmt.Sprintf(`
source "postgres" {
  url         = %q
  slot        = %q
  publication = %q
}
event "contact.created" {
  table = "contacts"
  on    = ["insert"]
}
endpoint "bench" {
  url         = %q
  events      = ["*"]
  secret      = %q
  concurrency = 32
}`, db.URL, slot, slot, url, secret)
}

// BenchmarkDrain measures end-to-end throughput: a backlog of single-row
// transactions already in the WAL, captured, evaluated, signed and POSTed
// one event per request to a local receiver that verifies every signature.
//
//	go test -run '^$' -bench BenchmarkDrain -benchtime 1x ./relay/
func BenchmarkDrain(b *testing.B) {
	n := 50_000
	if s := os.Getenv("WALHOOK_BENCH_N"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db := testenv.NewDB(b)
		secret := signing.GenerateSecret()
		sink := &verifyingSink{secret: secret, seen: map[string]bool{}, wake: make(chan struct{}, 1)}
		srv := httptest.NewServer(sink)
		slot := testenv.Name(b, "slot")
		src := benchConfig(db, slot, srv.URL, secret)
		if err := cdc.Prepare(context.Background(), db.URL, cdc.ReaderConfig{URL: db.URL, Slot: slot, Publication: slot, Tables: []string{"public.contacts"}}); err != nil {
			b.Fatal(err)
		}
		// The backlog: n single-row transactions (autocommit inserts).
		conn := db.Conn(b)
		batch := make([]string, 0, 1000)
		for j := 0; j < n; j++ {
			batch = append(batch, fmt.Sprintf("INSERT INTO contacts (organization_id, first_name, email) VALUES (%d, 'name%d', 'p%d@example.com')", j%10, j, j))
			if len(batch) == cap(batch) || j == n-1 {
				// A multi-statement simple query runs each statement in its own transaction.
				if _, err := conn.Exec(context.Background(), joinStatements(batch)); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		b.StartTimer()
		begin := time.Now()
		run := runConfig(b, db, src, relay.Options{})
		sink.waitCount(b, n, 5*time.Minute, sink.count)
		took := time.Since(begin)
		b.StopTimer()
		if err := run.stop(); err != nil {
			b.Errorf("relay: %v", err)
		}
		srv.Close()
		if sink.bad > 0 {
			b.Fatalf("%d deliveries failed verification", sink.bad)
		}
		b.ReportMetric(float64(n)/took.Seconds(), "events/s")
	}
}

func joinStatements(stmts []string) string {
	out := ""
	for _, s := range stmts {
		out += s + ";\n"
	}
	return out
}

// BenchmarkLatency measures commit-to-delivery latency at a steady 1,000
// events/s (one row per transaction) for ten seconds.
//
//	go test -run '^$' -bench BenchmarkLatency -benchtime 1x ./relay/
func BenchmarkLatency(b *testing.B) {
	const rate, seconds = 1000, 10
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db := testenv.NewDB(b)
		secret := signing.GenerateSecret()
		sink := &verifyingSink{secret: secret, seen: map[string]bool{}, wake: make(chan struct{}, 1)}
		srv := httptest.NewServer(sink)
		slot := testenv.Name(b, "slot")
		run := runConfig(b, db, benchConfig(db, slot, srv.URL, secret), relay.Options{})
		// Wait for the slot to be streaming before writing.
		for {
			var ok bool
			_ = db.Pool.QueryRow(context.Background(), `SELECT coalesce(bool_or(active), false) FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&ok)
			if ok {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		// Writers: 4 connections sharing the rate, each row its own
		// transaction.
		writers := syncWriters(b, db)
		defer writers.Close()
		total := rate * seconds
		tick := time.NewTicker(time.Second / rate)
		work := make(chan int, rate)
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range work {
					_, _ = writers.Exec(context.Background(), `INSERT INTO contacts (organization_id, first_name) VALUES ($1, 'x')`, j%10)
				}
			}()
		}
		b.StartTimer()
		for j := 0; j < total; j++ {
			<-tick.C
			work <- j
		}
		close(work)
		wg.Wait()
		tick.Stop()
		deadline := time.Now().Add(time.Minute)
		for sink.count() < total && time.Now().Before(deadline) {
			select {
			case <-sink.wake:
			case <-time.After(100 * time.Millisecond):
			}
		}
		b.StopTimer()
		if err := run.stop(); err != nil {
			b.Errorf("relay: %v", err)
		}
		srv.Close()
		sink.mu.Lock()
		lat := slices.Clone(sink.lat)
		sink.mu.Unlock()
		if len(lat) < total {
			b.Fatalf("only %d of %d events delivered", len(lat), total)
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	}
}
