package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/event"
	"github.com/walhook/walhook/internal/sender"
	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/store"
	"github.com/walhook/walhook/testenv"
)

const batchSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// batchRequest is one request a batchReceiver got.
type batchRequest struct {
	webhookID string
	attempt   string
	ids       []string // the event ids in data, in order
	bytes     int      // the bytes of the events' bodies
	failed    bool     // answered 500
}

// batchReceiver verifies every request with the Standard Webhooks library
// and records the batches; fail decides, under its lock, whether to answer
// 500 to a request.
type batchReceiver struct {
	t    *testing.T
	wh   *standardwebhooks.Webhook
	fail func(r batchRequest, seen map[string]int) bool

	mu   sync.Mutex
	reqs []batchRequest
	seen map[string]int // webhook-id -> requests with it
	got  map[string]int // event id -> times accepted
	bad  []string
	// last is, per key, the highest n accepted: an event of a key sent
	// before its predecessor was accepted is an order violation.
	last map[string]int
}

func newBatchReceiver(t *testing.T, fail func(batchRequest, map[string]int) bool) *batchReceiver {
	wh, err := standardwebhooks.NewWebhook(batchSecret)
	if err != nil {
		t.Fatal(err)
	}
	return &batchReceiver{t: t, wh: wh, fail: fail, seen: map[string]int{}, got: map[string]int{}, last: map[string]int{}}
}

func (rc *batchReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body struct {
		Type      string            `json:"type"`
		ID        string            `json:"id"`
		Timestamp time.Time         `json:"timestamp"`
		Data      []json.RawMessage `json:"data"`
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err := rc.wh.Verify(raw, r.Header); err != nil {
		rc.bad = append(rc.bad, fmt.Sprintf("signature: %v", err))
	}
	if err := json.Unmarshal(raw, &body); err != nil || body.Type != "batch" || body.ID != r.Header.Get("webhook-id") || body.Timestamp.IsZero() {
		rc.bad = append(rc.bad, fmt.Sprintf("body %s (error %v) with webhook-id %s", raw, err, r.Header.Get("webhook-id")))
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	req := batchRequest{webhookID: body.ID, attempt: r.Header.Get("webhook-attempt")}
	last := maps.Clone(rc.last)
	for _, d := range body.Data {
		var ev modelBody
		if err := json.Unmarshal(d, &ev); err != nil {
			rc.bad = append(rc.bad, fmt.Sprintf("event %s: %v", d, err))
		}
		req.ids = append(req.ids, ev.ID)
		req.bytes += len(d)
		if ev.N > last[ev.Key]+1 {
			rc.bad = append(rc.bad, fmt.Sprintf("key %s: n=%d sent while n=%d is the last accepted", ev.Key, ev.N, last[ev.Key]))
		}
		last[ev.Key] = max(last[ev.Key], ev.N)
	}
	if rc.fail != nil && rc.fail(req, rc.seen) {
		req.failed = true
	}
	if !req.failed {
		rc.last = last
	}
	rc.seen[req.webhookID]++
	rc.reqs = append(rc.reqs, req)
	if req.failed {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	for _, id := range req.ids {
		rc.got[id]++
	}
	w.WriteHeader(http.StatusNoContent)
}

// accepted is how many distinct events were accepted.
func (rc *batchReceiver) accepted() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}

// batchSetup starts a receiver and a dispatcher on a real state Postgres,
// routing to one standard-webhooks endpoint with batching b.
func batchSetup(t *testing.T, rc *batchReceiver, b *Batching, opts ...func(*Endpoint)) (*Dispatcher, *store.Store, *Endpoint) {
	t.Helper()
	return batchSetupShared(t, rc, b, false, opts...)
}

// batchSetupShared is batchSetup with delivery.share = "all" when shared.
func batchSetupShared(t *testing.T, rc *batchReceiver, b *Batching, shared bool, opts ...func(*Endpoint)) (*Dispatcher, *store.Store, *Endpoint) {
	t.Helper()
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	client := sender.New(sender.Options{})
	t.Cleanup(client.Close)
	db := testenv.NewEmptyDB(t)
	st, err := store.Open(t.Context(), db.Pool, "walhook")
	if err != nil {
		t.Fatal(err)
	}
	ep := modelEndpoint("batched", srv.URL, false, 64, client)
	ep.Timeout = 5 * time.Second
	ep.Batching = b
	if ep.Signer, err = signing.New("standard-webhooks", []string{batchSecret}, signing.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		o(ep)
	}
	d, err := New(Options{Store: st, MaxInFlight: 10000, RetryWorkers: 16, RetryPoll: 20 * time.Millisecond, ShareAll: shared, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := d.SetEndpoints(t.Context(), []*Endpoint{ep}); err != nil {
		t.Fatal(err)
	}
	return d, st, ep
}

// batchEvents is n events evt_<from>…, each its own key.
func batchEvents(from, n int) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		id := fmt.Sprintf("evt_%d", from+i)
		data, _ := json.Marshal(modelBody{ID: id, Key: id, N: 1})
		evs[i] = event.Event{ID: id, Type: "row.inserted", Key: id, Data: data, Timestamp: time.Now()}
	}
	return evs
}

// waitAccepted waits until rc accepted n distinct events.
func waitAccepted(t *testing.T, rc *batchReceiver, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); rc.accepted() < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events accepted after 30s", rc.accepted(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBatchFirstAttempts: events dispatched together reach a batch
// endpoint in signed batch requests of at most max_events events and
// max_bytes of bodies, each event exactly once; every source batch is
// settled and nothing is written to the store.
func TestBatchFirstAttempts(t *testing.T) {
	t.Parallel()
	rc := newBatchReceiver(t, nil)
	d, st, _ := batchSetup(t, rc, &Batching{MaxEvents: 10, MaxBytes: 1 << 20, MaxWait: time.Second})
	const n = 250
	var settled sync.WaitGroup
	settled.Add(5)
	for k := range 5 {
		if err := d.Dispatch(t.Context(), Batch{Events: batchEvents(k*50, 50), Settled: settled.Done}); err != nil {
			t.Fatal(err)
		}
	}
	waitAccepted(t, rc, n)
	settled.Wait()
	shutdown(t, d)

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bad) > 0 {
		t.Fatalf("bad requests: %v", rc.bad)
	}
	largest := 0
	for _, r := range rc.reqs {
		if len(r.ids) > 10 || len(r.ids) == 0 {
			t.Errorf("a request carried %d events; max_events is 10", len(r.ids))
		}
		largest = max(largest, len(r.ids))
		if want := store.BatchID(deliveryIDs(r.ids, ConfigEndpointID("batched"))); r.webhookID != want {
			t.Errorf("webhook-id %s, want %s (from its deliveries)", r.webhookID, want)
		}
	}
	for id, k := range rc.got {
		if k != 1 {
			t.Errorf("%s accepted %d times", id, k)
		}
	}
	if largest < 2 {
		t.Errorf("no request carried more than one event (%d requests for %d events)", len(rc.reqs), n)
	}
	t.Logf("%d events in %d requests", n, len(rc.reqs))
	if ds, _, err := st.ListDeliveries(context.Background(), store.DeliveryFilter{Limit: 10}); err != nil || len(ds) != 0 {
		t.Errorf("store holds %d deliveries (error %v); the happy path writes nothing", len(ds), err)
	}
}

// TestBatchShared: with share = "all" nothing is gathered in memory; a
// dispatched batch's deliveries are stored in batches of at most
// max_events, and the retry loop sends each as one signed request under
// its id. Every event arrives once.
func TestBatchShared(t *testing.T) {
	t.Parallel()
	rc := newBatchReceiver(t, nil)
	d, st, _ := batchSetupShared(t, rc, &Batching{MaxEvents: 10, MaxBytes: 1 << 20, MaxWait: time.Second}, true)
	const n = 250
	var settled sync.WaitGroup
	settled.Add(5)
	for k := range 5 {
		if err := d.Dispatch(t.Context(), Batch{Events: batchEvents(k*50, 50), Settled: settled.Done}); err != nil {
			t.Fatal(err)
		}
	}
	settled.Wait() // shared: settled once stored
	waitAccepted(t, rc, n)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		q, err := st.Stats(context.Background())
		if err == nil && q.Pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries still pending after every event was accepted (error %v)", q.Pending, err)
		}
	}
	shutdown(t, d)

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bad) > 0 {
		t.Fatalf("bad requests: %v", rc.bad)
	}
	// A batch claimed in two parts (one claim took some of it while
	// another held the rest) goes out as two requests under the batch's
	// one id: together they never carry more than max_events.
	perBatch := map[string]int{}
	for _, r := range rc.reqs {
		if len(r.ids) > 10 || len(r.ids) == 0 {
			t.Errorf("a request carried %d events; max_events is 10", len(r.ids))
		}
		perBatch[r.webhookID] += len(r.ids)
	}
	for id, k := range perBatch {
		if k > 10 {
			t.Errorf("batch %s carried %d events; max_events is 10", id, k)
		}
	}
	for id, k := range rc.got {
		if k != 1 {
			t.Errorf("%s accepted %d times", id, k)
		}
	}
	if len(rc.reqs) > n/5 {
		t.Errorf("%d requests for %d events: the shared deliveries were not sent in batches", len(rc.reqs), n)
	}
	t.Logf("%d events in %d requests", n, len(rc.reqs))
}

// deliveryIDs are the delivery ids of events to endpointID.
func deliveryIDs(eventIDs []string, endpointID string) []string {
	out := make([]string, len(eventIDs))
	for i, id := range eventIDs {
		out[i] = store.DeliveryID(id, endpointID)
	}
	return out
}

// TestBatchMaxBytes: a batch holds at most max_bytes of event bodies; an
// event that does not fit goes in the next request, and none is lost.
func TestBatchMaxBytes(t *testing.T) {
	t.Parallel()
	rc := newBatchReceiver(t, nil)
	// Each body is about 40 bytes: 100 bytes hold two of them.
	d, _, _ := batchSetup(t, rc, &Batching{MaxEvents: 100, MaxBytes: 100, MaxWait: 200 * time.Millisecond})
	const n = 60
	if err := d.Dispatch(t.Context(), Batch{Events: batchEvents(0, n), Settled: func() {}}); err != nil {
		t.Fatal(err)
	}
	waitAccepted(t, rc, n)
	shutdown(t, d)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bad) > 0 {
		t.Fatalf("bad requests: %v", rc.bad)
	}
	for _, r := range rc.reqs {
		if r.bytes > 100 && len(r.ids) > 1 {
			t.Errorf("a request of %d events carried %d bytes of bodies; max_bytes is 100", len(r.ids), r.bytes)
		}
	}
	if len(rc.got) != n {
		t.Errorf("%d of %d events accepted", len(rc.got), n)
	}
}

// TestBatchLoneEvent: an event with nothing behind it is sent once
// max_wait has passed, in a batch of one.
func TestBatchLoneEvent(t *testing.T) {
	t.Parallel()
	rc := newBatchReceiver(t, nil)
	d, _, _ := batchSetup(t, rc, &Batching{MaxEvents: 100, MaxBytes: 1 << 20, MaxWait: 50 * time.Millisecond})
	start := time.Now()
	settled := make(chan struct{})
	if err := d.Dispatch(t.Context(), Batch{Events: batchEvents(0, 1), Settled: func() { close(settled) }}); err != nil {
		t.Fatal(err)
	}
	waitAccepted(t, rc, 1)
	<-settled
	t.Logf("a lone event with max_wait 50ms was accepted after %s", time.Since(start))
	shutdown(t, d)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.reqs) != 1 || len(rc.reqs[0].ids) != 1 {
		t.Errorf("requests %+v, want one batch of one event", rc.reqs)
	}
}

// TestBatchRetriedWhole: a receiver that fails the first request of every
// batch gets each batch again, whole, under the same webhook-id, as
// attempt 2; every event is accepted once, and each delivery's attempts
// are in the log with the batch's status codes.
func TestBatchRetriedWhole(t *testing.T) {
	t.Parallel()
	rc := newBatchReceiver(t, func(r batchRequest, seen map[string]int) bool { return seen[r.webhookID] == 0 })
	d, st, ep := batchSetup(t, rc, &Batching{MaxEvents: 20, MaxBytes: 1 << 20, MaxWait: 200 * time.Millisecond})
	const n = 100
	settled := make(chan struct{})
	if err := d.Dispatch(t.Context(), Batch{Events: batchEvents(0, n), Settled: func() { close(settled) }}); err != nil {
		t.Fatal(err)
	}
	<-settled // the failed batches are stored
	waitAccepted(t, rc, n)
	// The receiver has answered; the retries' outcomes are being written.
	rc.mu.Lock()
	ids := deliveryIDs(slices.Collect(maps.Keys(rc.got)), ep.ID)
	rc.mu.Unlock()
	var log map[string][]store.Attempt
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var err error
		if log, err = st.ListAttempts(context.Background(), ids); err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, as := range log {
			if len(as) >= 2 {
				done++
			}
		}
		if done == n || time.Now().After(deadline) {
			break
		}
	}
	shutdown(t, d)

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bad) > 0 {
		t.Fatalf("bad requests: %v", rc.bad)
	}
	sent := map[string][]string{} // webhook-id -> events of its first request
	for _, r := range rc.reqs {
		first, ok := sent[r.webhookID]
		switch {
		case !ok && (!r.failed || r.attempt != "1"):
			t.Errorf("first request of %s: failed %t, attempt %s", r.webhookID, r.failed, r.attempt)
		case !ok:
			sent[r.webhookID] = r.ids
		case r.failed || r.attempt != "2" || !slices.Equal(first, r.ids):
			t.Errorf("retry of %s: failed %t, attempt %s, events %v, first sent with %v", r.webhookID, r.failed, r.attempt, r.ids, first)
		}
	}
	if len(rc.reqs) != 2*len(sent) {
		t.Errorf("%d requests for %d batches, want each batch twice", len(rc.reqs), len(sent))
	}
	for id, k := range rc.got {
		if k != 1 {
			t.Errorf("%s accepted %d times", id, k)
		}
	}
	for _, id := range ids {
		as := log[id]
		if len(as) != 2 || as[0].StatusCode+as[1].StatusCode != 500+204 {
			t.Errorf("attempts of %s: %+v, want a 500 and a 204", id, as)
		}
	}
}

// TestBatchOrderedKeys: on an ordering = "key" endpoint with batches, a
// key's events arrive in commit order within and across batches while the
// receiver fails some requests, and every event arrives.
func TestBatchOrderedKeys(t *testing.T) {
	t.Parallel()
	requests := 0
	rc := newBatchReceiver(t, func(batchRequest, map[string]int) bool {
		requests++
		return requests < 60 && requests%3 == 0
	})
	d, _, _ := batchSetup(t, rc, &Batching{MaxEvents: 8, MaxBytes: 1 << 20, MaxWait: 20 * time.Millisecond},
		func(ep *Endpoint) { ep.Ordered, ep.Concurrency = true, 4 })
	const keys, perKey = 10, 30
	for n := 1; n <= perKey; n++ {
		evs := make([]event.Event, keys)
		for k := range evs {
			id := fmt.Sprintf("evt_%d_%d", k, n)
			key := fmt.Sprintf("key%d", k)
			data, _ := json.Marshal(modelBody{ID: id, Key: key, N: n})
			// The store orders a key's deliveries by commit LSN and position.
			evs[k] = event.Event{ID: id, Type: "row.updated", Key: key, Data: data, Timestamp: time.Now(),
				CommitLSN: cdc.LSN(1000 * n), EndLSN: cdc.LSN(1000*n + 1), Position: k}
		}
		if err := d.Dispatch(t.Context(), Batch{Events: evs, Settled: func() {}}); err != nil {
			t.Fatal(err)
		}
	}
	waitAccepted(t, rc, keys*perKey)
	shutdown(t, d)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bad) > 0 {
		t.Fatalf("%d violations, first: %v", len(rc.bad), rc.bad[0])
	}
	largest := 0
	for _, r := range rc.reqs {
		largest = max(largest, len(r.ids))
	}
	t.Logf("%d requests, the largest with %d events", len(rc.reqs), largest)
}
