package dispatch

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/limit"
	"github.com/walhook/walhook/internal/sender"
	"github.com/walhook/walhook/internal/store"
	"github.com/walhook/walhook/testenv"
)

// peerReceiver answers its first request with first (a status and a
// Retry-After in seconds, 0: none) and every later one 204, and records
// which instance sent each request (the X-Instance header), which event
// it carried and when it arrived.
type peerReceiver struct {
	status, retryAfter int

	mu       sync.Mutex
	reqs     []peerRequest
	answered time.Time // when the first request was answered
	got      map[string]bool
}

type peerRequest struct {
	instance, id string
	at           time.Time
}

func (rc *peerReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body modelBody
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.reqs = append(rc.reqs, peerRequest{instance: r.Header.Get("X-Instance"), id: body.ID, at: time.Now()})
	if len(rc.reqs) == 1 {
		if rc.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(rc.retryAfter))
		}
		rc.answered = time.Now()
		w.WriteHeader(rc.status)
		return
	}
	rc.got[body.ID] = true
	w.WriteHeader(http.StatusNoContent)
}

// requests is a copy of what the receiver recorded.
func (rc *peerReceiver) requests() ([]peerRequest, time.Time, int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]peerRequest(nil), rc.reqs...), rc.answered, len(rc.got)
}

// peerSetup starts two dispatchers with share = "all", each with its own
// store and instance id on one state database, as two instances would
// run, both sending to rc's endpoint (concurrency 64, shared by the two).
func peerSetup(t *testing.T, rc *peerReceiver) (map[string]*Dispatcher, *store.Store) {
	t.Helper()
	rc.got = map[string]bool{}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	client := sender.New(sender.Options{})
	t.Cleanup(client.Close)
	db := testenv.NewEmptyDB(t)
	ds := map[string]*Dispatcher{}
	var first *store.Store
	for _, name := range []string{"a", "b"} {
		pool, err := pgxpool.New(t.Context(), db.URL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		st, err := store.Open(t.Context(), pool, "walhook")
		if err != nil {
			t.Fatal(err)
		}
		st.SetInstance("ins_" + name)
		if first == nil {
			first = st
		}
		ep := modelEndpoint("peers", srv.URL, false, 64, client)
		ep.Timeout = 5 * time.Second
		ep.Header.Set("X-Instance", name)
		d, err := New(Options{Store: st, MaxInFlight: 1000, RetryWorkers: 8, RetryPoll: 20 * time.Millisecond, ShareAll: true, Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { shutdown(t, d) })
		if err := d.SetEndpoints(t.Context(), []*Endpoint{ep}); err != nil {
			t.Fatal(err)
		}
		d.SetSenders(2)
		ds[name] = d
	}
	return ds, first
}

// dispatchStored dispatches events through d and waits until they are
// stored (share = "all": settled once written).
func dispatchStored(t *testing.T, d *Dispatcher, from, n int) {
	t.Helper()
	done := make(chan struct{})
	if err := d.Dispatch(t.Context(), Batch{Events: batchEvents(from, n), Settled: func() { close(done) }}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("a dispatched batch was not stored within 30s")
	}
}

// waitFor polls cond until it holds, failing with what after 30s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30s for %s", what)
		}
	}
}

// TestPeersHonourRetryAfter: two instances share an endpoint; the one whose
// request is answered 503 with Retry-After publishes the pause, the other's
// gate learns it without sending anything, and neither instance sends the
// endpoint anything until the pause ends (their claims leave its
// deliveries alone, their gates hold them); then everything is delivered.
func TestPeersHonourRetryAfter(t *testing.T) {
	t.Parallel()
	const pause = 3 * time.Second
	rc := &peerReceiver{status: http.StatusServiceUnavailable, retryAfter: int(pause / time.Second)}
	ds, st := peerSetup(t, rc)
	id := ConfigEndpointID("peers")

	dispatchStored(t, ds["a"], 0, 1) // whoever claims it is refused
	var until time.Time
	waitFor(t, "the pause in the store", func() bool {
		h, err := st.Health(t.Context(), id)
		until = h.Limits.PausedUntil
		return err == nil && !until.IsZero()
	})
	reqs, answered, _ := rc.requests()
	pauser := reqs[0].instance
	peer := map[string]string{"a": "b", "b": "a"}[pauser]
	if want := answered.Add(pause); until.Before(want.Add(-time.Second)) {
		t.Fatalf("the store's pause ends at %s, want about %s", until, want)
	}
	waitFor(t, "the peer's gate to learn the pause", func() bool {
		return !ds[peer].runnerFor(ds[peer].Endpoint(id)).gate.PausedUntil().Before(until.Add(-100 * time.Millisecond))
	})

	dispatchStored(t, ds[pauser], 1, 20)
	dispatchStored(t, ds[peer], 21, 20)
	waitFor(t, "all 41 events accepted", func() bool {
		_, _, n := rc.requests()
		return n == 41
	})

	reqs, answered, _ = rc.requests()
	sent := map[string]int{}
	for _, r := range reqs[1:] {
		sent[r.instance]++
		// 50ms for the clocks: the pause is the database's now() plus
		// Retry-After at the write that published it, after answered.
		if r.at.Before(answered.Add(pause - 50*time.Millisecond)) {
			t.Errorf("instance %s sent %s %s after the 503, during the %s pause", r.instance, r.id, r.at.Sub(answered), pause)
		}
	}
	t.Logf("paused by %s; then %d requests from it, %d from its peer; first after %s",
		pauser, sent[pauser], sent[peer], reqs[1].at.Sub(answered))
}

// TestPeersFollowAnOverloadCut: two instances share an endpoint (each at
// most 32 of its 64); one's request is refused without Retry-After, which
// cuts its adaptive limit from 8 to 5 and publishes it (10 for the
// cluster); the other comes down to its share, 5, rather than discover the
// overload itself. A 429 also teaches the refused instance a rate (1/s: it
// had accepted nothing in the last second), published as 2/s for the two,
// and the other paces at its share, 1/s.
func TestPeersFollowAnOverloadCut(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		status int
		rate   float64 // published
	}{
		{http.StatusServiceUnavailable, 0},
		{http.StatusTooManyRequests, 2},
	} {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			t.Parallel()
			rc := &peerReceiver{status: tt.status}
			ds, st := peerSetup(t, rc)
			id := ConfigEndpointID("peers")
			for _, d := range ds {
				d.runnerFor(d.Endpoint(id)) // both gates exist before the cut
			}

			dispatchStored(t, ds["a"], 0, 1)
			waitFor(t, "the limit in the store", func() bool {
				h, err := st.Health(t.Context(), id)
				return err == nil && h.Limits.Concurrency > 0
			})
			h, err := st.Health(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if h.Limits.Concurrency != 10 || math.Abs(h.Limits.Rate-tt.rate) > 0.1 {
				t.Fatalf("published limits %+v, want concurrency 10 (5 on each of 2), rate %v", h.Limits, tt.rate)
			}
			reqs, _, _ := rc.requests()
			peer := map[string]string{"ins_a": "b", "ins_b": "a"}[h.Limits.LimitedBy]
			if reqs[0].instance == peer {
				t.Fatalf("published by %s, but the refused request came from %s", h.Limits.LimitedBy, peer)
			}
			g := ds[peer].runnerFor(ds[peer].Endpoint(id)).gate
			waitFor(t, "the peer's limit to come down to 5", func() bool { return g.Limit() == 5 })
			// The rate grows 5% a second from when it was learned.
			if r := g.LearnedRate(); (tt.rate == 0) != (r == 0) || r > tt.rate/2*1.5 {
				t.Errorf("the peer paces at %.2f/s, want %.0f/s (grown a little since)", r, tt.rate/2)
			}
			waitFor(t, "the refused event accepted", func() bool { _, _, n := rc.requests(); return n == 1 })
		})
	}
}

// TestPublishOncePerPause: the refusals of one burst, each moving the end
// of the endpoint's pause a little, are published once; a pause ending
// more than pauseSlack later is published again. Without ShareAll no
// limits are published, only pauses.
func TestPublishOncePerPause(t *testing.T) {
	ms := newMemStore(1)
	d := startDispatcherWith(t, Options{Store: ms, MaxInFlight: 100, RetryWorkers: 8})
	defer shutdown(t, d)
	published := func(id string) int {
		ms.mu.Lock()
		defer ms.mu.Unlock()
		return ms.published[id]
	}
	// barrier waits until every signal queued before it was written.
	n := 0
	barrier := func() {
		for range 2 { // a later loop than the one that took what was queued
			n++
			id := "cfg:barrier" + strconv.Itoa(n)
			d.onSignal(id, limit.Signal{Pause: time.Second})
			waitFor(t, "a publication of "+id, func() bool { return published(id) == 1 })
		}
	}
	for range 5 {
		d.onSignal("cfg:a", limit.Signal{Pause: 30 * time.Second, Cut: true, Limit: 5})
	}
	barrier()
	for range 5 {
		d.onSignal("cfg:a", limit.Signal{Pause: 30 * time.Second, Cut: true, Limit: 4})
	}
	d.onSignal("cfg:a", limit.Signal{Cut: true, Limit: 3}) // alone: no limits to publish
	barrier()
	if got := published("cfg:a"); got != 1 {
		t.Fatalf("a burst of pauses published %d times, want once", got)
	}
	d.onSignal("cfg:a", limit.Signal{Pause: 45 * time.Second})
	barrier()
	if got := published("cfg:a"); got != 2 {
		t.Fatalf("a pause 15 s longer published: %d publications, want 2", got)
	}
	h, err := ms.Health(t.Context(), "cfg:a")
	if err != nil {
		t.Fatal(err)
	}
	if h.Limits.Published != nil || time.Until(h.Limits.PausedUntil) < 40*time.Second {
		t.Fatalf("published %+v, want a pause of about 45 s and no limits", h.Limits)
	}
}
