package dispatch

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/event"
	"github.com/walhook/walhook/internal/sender"
	"github.com/walhook/walhook/internal/settle"
	"github.com/walhook/walhook/internal/store"
)

var (
	modelBudget = flag.Duration("model.budget", 3*time.Second, "how long the randomized dispatch model runs per seed")
	modelSeeds  = flag.Int("model.seeds", 2, "how many seeds the randomized dispatch model tries")
	modelSeed   = flag.Uint64("model.seed", 0, "run the model with this seed only (0: seeds 1..model.seeds)")
)

// receiver is one endpoint's HTTP server in the model. It accepts or
// fails each request at random while faults are on and records, per key,
// the highest event number it accepted. An attempt of an ordered key's
// event whose predecessor it has not accepted yet is an order violation.
type receiver struct {
	t       testing.TB
	ordered bool
	faults  atomic.Bool
	rngMu   sync.Mutex
	rng     *rand.Rand
	timeout time.Duration

	mu       sync.Mutex
	accepted map[string]int  // key -> highest n accepted
	seen     map[string]bool // event ids accepted
	attempts int
	bad      []string
}

type modelBody struct {
	ID  string `json:"id"`
	Key string `json:"key"`
	N   int    `json:"n"`
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	bodies, ok := modelBodies(raw)
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.attempts++
	if rc.ordered {
		inRequest := map[string]int{} // a batch may carry a key's next events
		for _, b := range bodies {
			if last := max(rc.accepted[b.Key], inRequest[b.Key]); b.N > 1 && last < b.N-1 {
				rc.bad = append(rc.bad, fmt.Sprintf("%s: attempt of n=%d (its attempt %s) while n=%d is the last accepted",
					b.Key, b.N, r.Header.Get("Webhook-Attempt"), last))
			}
			inRequest[b.Key] = max(inRequest[b.Key], b.N)
		}
	}
	rc.mu.Unlock()
	if rc.faults.Load() {
		rc.rngMu.Lock()
		roll, delay := rc.rng.Float64(), time.Duration(rc.rng.Int64N(int64(20*time.Millisecond)))
		rc.rngMu.Unlock()
		switch {
		case roll < 0.25:
			w.WriteHeader(http.StatusInternalServerError)
			return
		case roll < 0.30:
			// Slower than the endpoint's timeout: walhook gives up; whether
			// this counts as accepted is the receiver's business, as in life.
			select {
			case <-time.After(rc.timeout + 50*time.Millisecond):
			case <-r.Context().Done():
			}
			// Not accepted: should the answer still arrive in time, it fails.
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		time.Sleep(delay)
	}
	rc.mu.Lock()
	for _, b := range bodies {
		if b.N > rc.accepted[b.Key] {
			rc.accepted[b.Key] = b.N
		}
		rc.seen[b.ID] = true
	}
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// modelBodies reads a request body: one event's, or a batch of them.
func modelBodies(raw []byte) ([]modelBody, bool) {
	var batch struct {
		Type string      `json:"type"`
		Data []modelBody `json:"data"`
	}
	if err := json.Unmarshal(raw, &batch); err == nil && batch.Type == "batch" {
		return batch.Data, len(batch.Data) > 0
	}
	var b modelBody
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, false
	}
	return []modelBody{b}, true
}

func (rc *receiver) accepts(id string) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.seen[id]
}

// modelEndpoint builds a resolved endpoint posting to url.
func modelEndpoint(name, url string, ordered bool, concurrency int, client *sender.Client) *Endpoint {
	retry := make([]time.Duration, 60)
	for i := range retry {
		retry[i] = time.Duration(10+5*min(i, 10)) * time.Millisecond
	}
	return &Endpoint{
		ID: ConfigEndpointID(name), Name: name, Source: "config", URL: url, Events: []string{"*"},
		Active: true, Header: http.Header{}, Timeout: 300 * time.Millisecond, Ordered: ordered,
		Concurrency: concurrency, Retry: retry, DisableAfter: time.Hour, Client: client,
		Body: func(ev *event.Event) ([]byte, error) { return ev.Data, nil },
	}
}

// progressWithin bounds how long everything may take to be delivered once
// faults stop: retries then come due within tens of milliseconds, so this
// only allows for a slow, loaded machine.
const progressWithin = 20 * time.Second

type modelBatch struct {
	end     cdc.LSN
	events  []event.Event
	settled atomic.Int32
}

// TestDispatchModel runs the dispatcher against receivers and a store that
// fail and stall at random, then stops the faults, and checks: per-key
// order at every ordered endpoint, every batch settled exactly once, a
// batch settled only when each of its deliveries was accepted or stored
// (so the watermark never passes an unsettled delivery), and progress:
// once faults stop, everything is delivered within a bounded time.
// go test ./internal/dispatch/ -run TestDispatchModel -model.budget=1m -model.seeds=20
// runs it longer; -model.seed=N replays one seed.
func TestDispatchModel(t *testing.T) {
	seeds := []uint64{}
	if *modelSeed != 0 {
		seeds = append(seeds, *modelSeed)
	} else {
		for s := 1; s <= *modelSeeds; s++ {
			seeds = append(seeds, uint64(s))
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runModel(t, seed, *modelBudget, false) })
	}
	// share = "all": every delivery goes through the store, settled once
	// written; the store's head-of-key rule alone keeps the order.
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("share=all/seed=%d", seed), func(t *testing.T) { runModel(t, seed, *modelBudget, true) })
	}
}

func runModel(t *testing.T, seed uint64, budget time.Duration, shareAll bool) {
	rng := rand.New(rand.NewPCG(seed, 42))
	ms := newMemStore(seed)
	client := sender.New(sender.Options{})
	defer client.Close()

	var eps []*Endpoint
	var rcvs []*receiver
	for i := range 5 {
		ordered := i < 3 // three ordered endpoints, two unordered
		rc := &receiver{t: t, ordered: ordered, rng: rand.New(rand.NewPCG(seed, uint64(i))), timeout: 300 * time.Millisecond,
			accepted: map[string]int{}, seen: map[string]bool{}}
		rc.faults.Store(true)
		srv := httptest.NewServer(rc)
		defer srv.Close()
		rcvs = append(rcvs, rc)
		ep := modelEndpoint(fmt.Sprintf("ep%d", i), srv.URL, ordered, 1+rng.IntN(4), client)
		if i == 2 || i == 4 { // one ordered and one unordered endpoint take batches
			ep.Batching = &Batching{MaxEvents: 2 + rng.IntN(8), MaxBytes: 1 << 20, MaxWait: time.Duration(rng.IntN(10)) * time.Millisecond}
		}
		eps = append(eps, ep)
	}

	ms.setFaults(0, 0) // faults start once the dispatcher runs
	d := startDispatcherWith(t, Options{Store: ms, MaxInFlight: 50 + rng.IntN(200), RetryWorkers: 8, ShareAll: shareAll}, eps...)
	ms.setFaults(0.1, 15*time.Millisecond)
	ctx := t.Context()

	var watermark atomic.Uint64
	tracker := settle.NewTracker(func(l cdc.LSN) { watermark.Store(uint64(l)) })
	var batches []*modelBatch
	keys := 20 + rng.IntN(200)
	next := map[string]int{}
	var violations []string
	var vmu sync.Mutex
	violate := func(s string) {
		vmu.Lock()
		violations = append(violations, s)
		vmu.Unlock()
	}

	deadline := time.Now().Add(budget)
	lsn := cdc.LSN(100)
	for i := 0; time.Now().Before(deadline); i++ {
		if shareAll && len(batches) == 200 {
			// Nothing in memory paces the source: only the store's write
			// speed does, and the model's store is fast. Keep the backlog
			// one the endpoints (concurrency 1 to 4) drain in time.
			break
		}
		b := &modelBatch{}
		for p := range 1 + rng.IntN(4) {
			k := fmt.Sprintf("k%d", rng.IntN(keys))
			next[k]++
			id := fmt.Sprintf("evt_%d_%d", seed, len(batches)*10+p)
			data, _ := json.Marshal(modelBody{ID: id, Key: k, N: next[k]})
			b.events = append(b.events, event.Event{ID: id, Type: "thing.changed", Key: k, Data: data,
				CommitLSN: lsn, EndLSN: lsn + 1, Position: p, Timestamp: time.Now()})
		}
		lsn += 10
		b.end = lsn
		batches = append(batches, b)
		stx := tracker.Begin(b.end, 1)
		err := d.Dispatch(ctx, Batch{Events: b.events, Settled: func() {
			if b.settled.Add(1) > 1 {
				violate(fmt.Sprintf("batch ending %s settled twice", b.end))
			}
			// Settled means accepted or stored, for every delivery.
			for _, ev := range b.events {
				for i, ep := range eps {
					if !rcvs[i].accepts(ev.ID) && !ms.has(store.DeliveryID(ev.ID, ep.ID)) {
						violate(fmt.Sprintf("%s settled before its delivery to %s was accepted or stored", ev.ID, ep.Name))
					}
				}
			}
			stx.Done()
		}})
		if err != nil {
			t.Fatalf("dispatch: %v", err)
		}
		if rng.IntN(20) == 0 {
			time.Sleep(time.Duration(rng.IntN(5)) * time.Millisecond)
		}
	}

	// Faults stop; everything must be delivered within a bounded time.
	for _, rc := range rcvs {
		rc.faults.Store(false)
	}
	ms.setFaults(0, 0)
	last := batches[len(batches)-1]
	progress := time.Now().Add(progressWithin)
	for {
		done := cdc.LSN(watermark.Load()) >= last.end
		if done {
			for _, b := range batches {
				for _, ev := range b.events {
					for _, rc := range rcvs {
						done = done && rc.accepts(ev.ID)
					}
				}
			}
		}
		if done {
			break
		}
		if time.Now().After(progress) {
			var missing []string
			for _, b := range batches {
				for _, ev := range b.events {
					for i, rc := range rcvs {
						if !rc.accepts(ev.ID) {
							missing = append(missing, eps[i].Name+"/"+ev.ID)
						}
					}
				}
			}
			t.Fatalf("no progress: %s after faults stopped, watermark %d of %d, store %v, not accepted: %d %v\n%s", progressWithin,
				watermark.Load(), last.end, ms.counts(), len(missing), missing[:min(len(missing), 10)], d.debugState())
		}
		time.Sleep(20 * time.Millisecond)
	}
	shutdown(t, d)
	for _, b := range batches {
		if n := b.settled.Load(); n != 1 {
			t.Errorf("batch ending %s settled %d times, want once", b.end, n)
		}
	}
	for i, rc := range rcvs {
		rc.mu.Lock()
		for _, v := range rc.bad {
			t.Errorf("%s: order violated: %s", eps[i].Name, v)
		}
		rc.mu.Unlock()
	}
	for _, v := range violations {
		t.Error(v)
	}
	t.Logf("seed %d: %d batches, %d keys, store %v", seed, len(batches), keys, ms.counts())
}
