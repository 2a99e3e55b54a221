package relay_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/walhook/walhook/cdc/outbox"
	"github.com/walhook/walhook/testenv"
)

// BenchmarkOutboxPolling measures polling-mode throughput: b.N outbox rows
// are committed first, then a relay delivers them all to a local receiver
// and deletes them. Run with e.g. -benchtime=20000x; it reports events/s.
func BenchmarkOutboxPolling(b *testing.B) {
	db := testenv.NewDB(b)
	initOutbox(b, db)
	for done := 0; done < b.N; done += 5000 {
		insertOutbox(b, db, done+1, min(5000, b.N-done))
	}
	c := newCounter()
	srv := httptest.NewServer(c)
	b.Cleanup(srv.Close)
	cfg := outboxConfigBatch(db, srv.URL, "1s", 500, "")
	b.ResetTimer()
	start := time.Now()
	runConfig(b, db, cfg)
	deadline := time.Now().Add(10 * time.Minute)
	for c.distinct() < b.N {
		if time.Now().After(deadline) {
			b.Fatalf("delivered %d of %d", c.distinct(), b.N)
		}
		select {
		case <-c.wake:
		case <-time.After(50 * time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}

// BenchmarkTriggerOverhead measures what the trigger fallback costs an
// application's writes: one-row insert transactions into contacts, without
// and with the capture trigger.
func BenchmarkTriggerOverhead(b *testing.B) {
	for _, withTriggers := range []bool{false, true} {
		name := "plain"
		if withTriggers {
			name = "triggers"
		}
		b.Run(name, func(b *testing.B) {
			db := testenv.NewDB(b)
			initOutbox(b, db)
			if withTriggers {
				sql, err := outbox.TriggersSQL(outboxTable, []string{"public.contacts"})
				if err != nil {
					b.Fatal(err)
				}
				db.Exec(b, sql)
			}
			conn := db.Conn(b)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := conn.Exec(ctx, `INSERT INTO contacts (organization_id, first_name, email) VALUES ($1, 'Ada', 'ada@example.com')`, i); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
