package dispatch

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/limit"
	"github.com/walhook/walhook/internal/sender"
	"github.com/walhook/walhook/internal/store"
	"github.com/walhook/walhook/testenv"
)

// BenchmarkStoreDrain measures the retry store as a delivery path: a
// backlog of due deliveries in a real state Postgres, drained by one
// dispatcher to a receiver that answers at once (each b.N is one
// delivery). It is the rate at which a store-held backlog (a spilled
// large transaction, an endpoint back from an outage) reaches a fast
// endpoint, and the cost per delivery in the state database.
//
//	go test -run '^$' -bench StoreDrain -benchtime 20000x ./internal/dispatch/
func BenchmarkStoreDrain(b *testing.B) {
	for _, workers := range []int{16, 64, 256} {
		b.Run(fmt.Sprintf("retry_workers=%d", workers), func(b *testing.B) {
			var got atomic.Int64
			done := make(chan struct{})
			n := int64(b.N)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if got.Add(1) == n {
					close(done)
				}
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			client := sender.New(sender.Options{})
			defer client.Close()
			db := testenv.NewEmptyDB(b)
			st, err := store.Open(b.Context(), db.Pool, "walhook")
			if err != nil {
				b.Fatal(err)
			}
			ep := modelEndpoint("drain", srv.URL, false, limit.DefaultCeiling, client)
			ep.Timeout = 5 * time.Second
			old := time.Now().Add(-time.Hour)
			body := []byte(`{"type":"contact.created","data":{"id":1,"email":"someone@example.com"}}`)
			for start := 0; start < b.N; start += 5000 {
				var ds []store.Delivery
				for i := start; i < min(b.N, start+5000); i++ {
					id := fmt.Sprintf("evt_%d", i)
					ds = append(ds, store.Delivery{ID: store.DeliveryID(id, ep.ID), EventID: id, EventType: "contact.created",
						EndpointID: ep.ID, Body: body, Status: store.StatusPending, NextAttemptAt: old})
				}
				if err := st.Persist(b.Context(), ds); err != nil {
					b.Fatal(err)
				}
			}
			d, err := New(Options{Store: st, MaxInFlight: 10000, RetryWorkers: workers, RetryPoll: 100 * time.Millisecond, Logger: zerolog.Nop()})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			if err := d.Start(b.Context()); err != nil {
				b.Fatal(err)
			}
			if err := d.SetEndpoints(b.Context(), []*Endpoint{ep}); err != nil {
				b.Fatal(err)
			}
			select {
			case <-done:
			case <-time.After(10 * time.Minute):
				b.Fatalf("%d of %d stored deliveries made in 10 minutes", got.Load(), b.N)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := d.Shutdown(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}
