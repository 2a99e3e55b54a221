package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/walhook/walhook/internal/event"
	"github.com/walhook/walhook/internal/sender"
	"github.com/walhook/walhook/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startDispatcher starts a dispatcher on ms routing to eps; the test stops
// it with Shutdown.
func startDispatcher(t *testing.T, ms *memStore, maxInFlight, retryWorkers int, eps ...*Endpoint) *Dispatcher {
	t.Helper()
	return startDispatcherWith(t, Options{Store: ms, MaxInFlight: maxInFlight, RetryWorkers: retryWorkers}, eps...)
}

// startDispatcherWith is startDispatcher with more options; the retry
// poll and the logger are set here.
func startDispatcherWith(t testing.TB, opts Options, eps ...*Endpoint) *Dispatcher {
	t.Helper()
	opts.RetryPoll, opts.Logger = 20*time.Millisecond, zerolog.Nop()
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := d.SetEndpoints(t.Context(), eps); err != nil {
		t.Fatal(err)
	}
	return d
}

// shutdown stops d within 10s, failing the test if it reports an error.
func shutdown(t testing.TB, d *Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// TestOrderedBacklogSurvivesAFailingSecond is the shape of the stall seen
// with the built binary: an ordered endpoint, a large backlog of
// single-event batches, each its own key, the endpoint failing for a
// while and a store slower than the source, so the persister's queue
// fills while keys are blocked. Every batch must settle.
func TestOrderedBacklogSurvivesAFailingSecond(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	var mu sync.Mutex
	got := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b modelBody
		_ = json.NewDecoder(r.Body).Decode(&b)
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		mu.Lock()
		got[b.ID] = true
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	client := sender.New(sender.Options{})
	defer client.Close()

	ms := newMemStore(1)
	d := startDispatcher(t, ms, 200, 16, modelEndpoint("ordered", srv.URL, true, 8, client))
	ctx := t.Context()
	ms.setFaults(0, 2*time.Millisecond) // each store write a little slow

	const n = 6000
	var settled sync.WaitGroup
	settled.Add(n)
	stop := time.AfterFunc(time.Second, func() { failing.Store(false) })
	defer stop.Stop()
	for i := range n {
		id := fmt.Sprintf("evt_%d", i)
		data, _ := json.Marshal(modelBody{ID: id, Key: id, N: 1})
		ev := event.Event{ID: id, Type: "row.inserted", Key: id, Data: data, Timestamp: time.Now()}
		if err := d.Dispatch(ctx, Batch{Events: []event.Event{ev}, Settled: settled.Done}); err != nil {
			t.Fatal(err)
		}
	}
	allSettled := make(chan struct{})
	go func() { settled.Wait(); close(allSettled) }()
	select {
	case <-allSettled:
	case <-time.After(60 * time.Second):
		t.Fatalf("batches not settled 60s after the last dispatch: the pipeline stalled (store %v)", ms.counts())
	}
	// And everything reaches the endpoint once it answers again.
	for deadline := time.Now().Add(60 * time.Second); ; {
		mu.Lock()
		k := len(got)
		mu.Unlock()
		if k == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events delivered 60s after the endpoint recovered", k, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	shutdown(t, d)
}

// TestShutdownEndsWhenTheStoreHangs: with every store write hanging, a
// shutdown returns by its deadline, reporting that writes were abandoned,
// and the batches they carried stay unsettled.
func TestShutdownEndsWhenTheStoreHangs(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	client := sender.New(sender.Options{})
	defer client.Close()
	ms := newMemStore(2)
	d := startDispatcher(t, ms, 100, 4, modelEndpoint("down", srv.URL, true, 2, client))
	ctx := t.Context()
	ms.faults.Lock()
	ms.blockWrites = make(chan struct{}) // never closed: the state database is gone
	ms.faults.Unlock()
	var settled atomic.Int32
	for i := range 50 {
		id := fmt.Sprintf("evt_%d", i)
		data, _ := json.Marshal(modelBody{ID: id, Key: "k", N: i + 1})
		ev := event.Event{ID: id, Type: "row.inserted", Key: "k", Data: data, Timestamp: time.Now()}
		if err := d.Dispatch(ctx, Batch{Events: []event.Event{ev}, Settled: func() { settled.Add(1) }}); err != nil {
			t.Fatal(err)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	began := time.Now()
	err := d.Shutdown(sctx)
	if took := time.Since(began); took > 3*time.Second {
		t.Fatalf("shutdown took %s with a 2s deadline", took)
	}
	if err == nil {
		t.Fatal("shutdown reported success although no store write could commit")
	}
	if n := settled.Load(); n != 0 {
		t.Fatalf("%d batches settled although the endpoint failed and nothing was stored", n)
	}
}

// TestInFlightLimitChangesAtRunTime: an endpoint of concurrency 2 takes
// exactly 2 first attempts at once; with its in-flight limit raised to 5,
// it takes 5.
func TestInFlightLimitChangesAtRunTime(t *testing.T) {
	arrived := make(chan struct{}, 100)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	client := sender.New(sender.Options{})
	defer client.Close()
	ep := modelEndpoint("slow", srv.URL, false, 2, client)
	ep.Timeout = time.Minute
	d := startDispatcher(t, newMemStore(3), 100, 2, ep)
	ctx := t.Context()
	for i := range 10 {
		id := fmt.Sprintf("evt_%d", i)
		data, _ := json.Marshal(modelBody{ID: id, Key: id, N: 1})
		if err := d.Dispatch(ctx, Batch{Events: []event.Event{{ID: id, Type: "x", Data: data}}, Settled: func() {}}); err != nil {
			t.Fatal(err)
		}
	}
	<-arrived
	<-arrived
	select {
	case <-arrived:
		t.Fatal("a third first attempt started with a concurrency of 2")
	case <-time.After(200 * time.Millisecond): // the absence of an event has no signal
	}
	if !d.SetInFlightLimit(ep.ID, 5) {
		t.Fatal("SetInFlightLimit found no lanes")
	}
	for range 3 {
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			t.Fatal("the raised limit did not let more attempts start")
		}
	}
	select {
	case <-arrived:
		t.Fatal("a sixth attempt started with an in-flight limit of 5")
	case <-time.After(200 * time.Millisecond):
	}
	close(release) // arrived has room for every later attempt
	shutdown(t, d)
}

// TestHangingEndpointLeavesRetryWorkersToOthers: due retries of an
// endpoint that never answers come first in the store, yet they take at
// most its share of retry workers; the other endpoint's retries go on.
func TestHangingEndpointLeavesRetryWorkersToOthers(t *testing.T) {
	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hanging.Close()
	defer close(release) // runs before hanging.Close: its requests end
	var mu sync.Mutex
	got := map[string]bool{}
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b modelBody
		_ = json.NewDecoder(r.Body).Decode(&b)
		mu.Lock()
		got[b.ID] = true
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer live.Close()
	client := sender.New(sender.Options{})
	defer client.Close()

	hang := modelEndpoint("hanging", hanging.URL, false, 1, client)
	hang.Timeout = time.Hour
	ok := modelEndpoint("live", live.URL, false, 2, client)
	ms := newMemStore(4)
	old := time.Now().Add(-time.Hour)
	var stored []store.Delivery
	for i := range 20 {
		for _, ep := range []*Endpoint{hang, ok} {
			id := fmt.Sprintf("evt_%d", i)
			body, _ := json.Marshal(modelBody{ID: id, Key: id, N: 1})
			d := store.Delivery{ID: store.DeliveryID(id, ep.ID), EventID: id, EventType: "x", EndpointID: ep.ID,
				Body: body, Status: store.StatusPending, NextAttemptAt: old}
			if ep == ok {
				d.NextAttemptAt = old.Add(time.Minute) // the hanging endpoint's rows are claimed first
			}
			stored = append(stored, d)
		}
	}
	if _, err := ms.WriteBatch(t.Context(), store.Batch{Deliveries: stored}); err != nil {
		t.Fatal(err)
	}
	d := startDispatcher(t, ms, 100, 4, hang, ok)
	for deadline := time.Now().Add(30 * time.Second); ; {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 20 retries of the live endpoint made while the hanging endpoint's retries wait", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = d.Shutdown(sctx) // the hanging requests are cut short: not an error of the test
}

// TestRetriesClaimWhatTheEndpointTakes: with more retry workers than an
// endpoint's retry cap (its concurrency limit), a backlog in the store is
// claimed a cap's worth at a time: claimed deliveries are not handed back
// only to be claimed again, a write each (which made a million-row backlog
// drain at about 25 a second).
func TestRetriesClaimWhatTheEndpointTakes(t *testing.T) {
	var mu sync.Mutex
	got := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b modelBody
		_ = json.NewDecoder(r.Body).Decode(&b)
		time.Sleep(2 * time.Millisecond)
		mu.Lock()
		got[b.ID] = true
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	client := sender.New(sender.Options{})
	defer client.Close()
	ep := modelEndpoint("backlog", srv.URL, false, 1, client)
	ms := newMemStore(5)
	old := time.Now().Add(-time.Hour)
	const n = 400
	var stored []store.Delivery
	for i := range n {
		id := fmt.Sprintf("evt_%d", i)
		body, _ := json.Marshal(modelBody{ID: id, Key: id, N: 1})
		stored = append(stored, store.Delivery{ID: store.DeliveryID(id, ep.ID), EventID: id, EventType: "x", EndpointID: ep.ID,
			Body: body, Status: store.StatusPending, NextAttemptAt: old})
	}
	if _, err := ms.WriteBatch(t.Context(), store.Batch{Deliveries: stored}); err != nil {
		t.Fatal(err)
	}
	d := startDispatcher(t, ms, 100, 32, ep)
	for deadline := time.Now().Add(30 * time.Second); ; {
		mu.Lock()
		k := len(got)
		mu.Unlock()
		if k == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d stored deliveries made", k, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The first claim, before the endpoint has a runner, is not capped,
	// and a few later ones race past the cap (the room is read before the
	// claim): about 30 here. Claims of what the endpoint cannot take were
	// about 12,000.
	if p := ms.postponed.Load(); p > n/8 {
		t.Errorf("%d claimed deliveries handed back for %d made: claims exceed what the endpoint takes", p, n)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
}

// TestBulkBatchLeavesRoomForLiveTraffic: a piece of a large transaction
// (Batch.Bulk) to an endpoint that does not answer yet fills at most half
// of its lane and goes to the store without waiting for room, so the batch
// after it is routed at once and to memory; everything settles once the
// endpoint answers.
func TestBulkBatchLeavesRoomForLiveTraffic(t *testing.T) {
	release := make(chan struct{})
	ep, accepted := heldEndpoint(t, "app", release)
	ms := newMemStore(5)
	d := startDispatcher(t, ms, 100, 4, ep) // a lane of 50
	defer shutdown(t, d)

	batch := func(prefix string, n int, bulk bool, settled *atomic.Bool) Batch {
		return Batch{Events: modelEvents(prefix, n), Bulk: bulk, Settled: func() { settled.Store(true) }}
	}
	var bulkSettled, liveSettled atomic.Bool
	began := time.Now()
	if err := d.Dispatch(t.Context(), batch("bulk", 500, true, &bulkSettled)); err != nil {
		t.Fatal(err)
	}
	if err := d.Dispatch(t.Context(), batch("live", 1, false, &liveSettled)); err != nil {
		t.Fatal(err)
	}
	// Without Bulk each job beyond the lane would wait laneWait: 45 s.
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("dispatching a bulk batch to a full lane took %s", took)
	}
	// All but half a lane (25) and the one in flight go to the store.
	for deadline := time.Now().Add(progressWithin); ms.counts()[store.StatusPending] < 474; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of the bulk batch's 500 deliveries in the store, want all but half a lane", ms.counts()[store.StatusPending])
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ms.has(store.DeliveryID("live_0", ep.ID)) {
		t.Error("the batch after the bulk batch went to the store, not to the lane")
	}
	close(release)
	for deadline := time.Now().Add(30 * time.Second); !bulkSettled.Load() || !liveSettled.Load(); {
		if time.Now().After(deadline) {
			t.Fatalf("batches not settled: bulk %t, live %t", bulkSettled.Load(), liveSettled.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for deadline := time.Now().Add(progressWithin); accepted() < 501; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 501 deliveries made once the endpoint answered", accepted())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// heldEndpoint is an endpoint (concurrency 1, a minute's timeout) whose
// receiver holds each request until release is closed, then accepts it;
// accepted counts the distinct events it accepted.
func heldEndpoint(t *testing.T, name string, release <-chan struct{}) (ep *Endpoint, accepted func() int) {
	var mu sync.Mutex
	got := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		var b modelBody
		_ = json.NewDecoder(r.Body).Decode(&b)
		mu.Lock()
		got[b.ID] = true
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	client := sender.New(sender.Options{})
	t.Cleanup(client.Close)
	ep = modelEndpoint(name, srv.URL, false, 1, client)
	ep.Timeout = time.Minute
	return ep, func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
}

// modelEvents is n events "<prefix>_<i>", each its own key, with model
// bodies.
func modelEvents(prefix string, n int) []event.Event {
	var evs []event.Event
	for i := range n {
		id := fmt.Sprintf("%s_%d", prefix, i)
		body, _ := json.Marshal(modelBody{ID: id, Key: id, N: 1})
		evs = append(evs, event.Event{ID: id, Type: "x", Data: body, Position: i})
	}
	return evs
}

// TestLaneTimerWaitsInFullEachTime: the timer one Dispatch call reuses for
// its waits for room in a full lane gives each wait its full laneWait,
// whether the previous wait timed out or was stopped early.
func TestLaneTimerWaitsInFullEachTime(t *testing.T) {
	t.Parallel()
	var w laneTimer
	began := time.Now()
	<-w.start() // times out
	w.start()
	w.stop() // ended by room in the lane
	<-w.start()
	if took := time.Since(began); took < 2*laneWait {
		t.Fatalf("two full waits took %s, want at least %s", took, 2*laneWait)
	}
	w.stop()
}

// TestFullLaneWaitsThenStores: jobs of one batch beyond a full lane each
// wait laneWait for room, then go to the store; everything settles once
// the endpoint answers.
func TestFullLaneWaitsThenStores(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	ep, _ := heldEndpoint(t, "full", release)
	ms := newMemStore(5)
	d := startDispatcher(t, ms, 100, 4, ep) // a lane of 50, one request in flight
	defer shutdown(t, d)

	const n = 55
	evs := modelEvents("full", n)
	var settled atomic.Bool
	began := time.Now()
	if err := d.Dispatch(t.Context(), Batch{Events: evs, Settled: func() { settled.Store(true) }}); err != nil {
		t.Fatal(err)
	}
	// 55 jobs: one in flight, 50 in the lane, at least 3 waiting in turn.
	if took := time.Since(began); took < 3*laneWait {
		t.Errorf("dispatching %d jobs to a lane of 50 took %s, want at least 3 waits of %s", n, took, laneWait)
	}
	for deadline := time.Now().Add(progressWithin); ms.counts()[store.StatusPending] < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries in the store, want the at least 3 that found no room", ms.counts()[store.StatusPending])
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(release)
	for deadline := time.Now().Add(progressWithin); !settled.Load(); {
		if time.Now().After(deadline) {
			t.Fatal("batch not settled once the endpoint answered")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
