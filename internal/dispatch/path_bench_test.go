package dispatch

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/event"
	"github.com/walhook/walhook/internal/limit"
	"github.com/walhook/walhook/internal/sender"
	"github.com/walhook/walhook/internal/signing"
)

// BenchmarkDispatchOneEvent measures the one-event path in memory: events
// dispatched in batches of 100 (one per row of a transaction), each sent
// signed in its own request to one endpoint, which answers 204 at once
// (each b.N is one event). The receiver runs in the same process, so its
// allocations and CPU are counted too; compare runs, not absolute figures:
//
//	go test -run '^$' -bench DispatchOneEvent -benchtime 20000x ./internal/dispatch/
func BenchmarkDispatchOneEvent(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	client := sender.New(sender.Options{})
	defer client.Close()
	ep := modelEndpoint("one", srv.URL, false, limit.DefaultCeiling, client)
	ep.Timeout = 5 * time.Second
	ep.BodyShape = "default"
	signer, err := signing.New(signing.StandardWebhooks, []string{batchSecret}, signing.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ep.Signer = signer

	const perBatch = 100
	batches := make([][]event.Event, (b.N+perBatch-1)/perBatch)
	for i := range b.N {
		data, _ := json.Marshal(map[string]any{"id": i, "email": fmt.Sprintf("user%d@example.com", i), "amount": "12.50"})
		lsn := cdc.LSN(0x1000000 + i/perBatch)
		ev := event.Event{ID: event.NewID(lsn, i%perBatch, "contact.created"), Type: "contact.created",
			Data: data, CommitLSN: lsn, Position: i % perBatch, Timestamp: time.Now()}
		batches[i/perBatch] = append(batches[i/perBatch], ev)
	}
	d := startDispatcherWith(b, Options{Store: newMemStore(1), MaxInFlight: 10000, RetryWorkers: 4}, ep)
	defer shutdown(b, d)
	var settled atomic.Int64
	all := make(chan struct{})
	b.ReportAllocs()
	cpu := processCPU(b)
	b.ResetTimer()
	for _, evs := range batches {
		err := d.Dispatch(b.Context(), Batch{Events: evs, Settled: func() {
			if settled.Add(1) == int64(len(batches)) {
				close(all)
			}
		}})
		if err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-all:
	case <-time.After(5 * time.Minute):
		b.Fatalf("%d of %d batches settled in 5 minutes", settled.Load(), len(batches))
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/event")
}

// processCPU is the CPU time the process has used (user and system): on a
// shared machine a steadier figure than the time elapsed.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
