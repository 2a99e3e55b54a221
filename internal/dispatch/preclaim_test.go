package dispatch

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/sender"
	"github.com/walhook/walhook/internal/store"
	"github.com/walhook/walhook/testenv"
)

// claimCounter is the real store, counting the deliveries ClaimDue takes.
type claimCounter struct {
	*store.Store
	claimed atomic.Int64
}

func (c *claimCounter) ClaimDue(ctx context.Context, limit int, lease time.Duration, exclude []string) ([]store.Delivery, error) {
	ds, err := c.Store.ClaimDue(ctx, limit, lease, exclude)
	c.claimed.Add(int64(len(ds)))
	return ds, err
}

// TestPreclaimedSharedDeliveries: with ShareAll, the shared deliveries an
// endpoint can take soon are stored claimed by the writer and sent by it
// without a claim (preclaim.go): every event arrives once, each batch is
// settled, no claim takes any of them, and their successful first
// attempts leave no rows. The claims are leases like any other: stored
// with the instance that holds them.
func TestPreclaimedSharedDeliveries(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		seen = map[string]int{}
	)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release // until the test has looked at the stored claims
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen[string(body)]++
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	client := sender.New(sender.Options{})
	t.Cleanup(client.Close)
	db := testenv.NewEmptyDB(t)
	st, err := store.Open(t.Context(), db.Pool, "walhook")
	if err != nil {
		t.Fatal(err)
	}
	st.SetInstance("inst_test")
	cs := &claimCounter{Store: st}
	ep := modelEndpoint("shared", srv.URL, false, 8, client)
	ep.Timeout = 5 * time.Second
	d, err := New(Options{Store: cs, MaxInFlight: 1000, RetryWorkers: 16, RetryPoll: 20 * time.Millisecond, ShareAll: true, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = d.Shutdown(ctx)
	})
	if err := d.SetEndpoints(t.Context(), []*Endpoint{ep}); err != nil {
		t.Fatal(err)
	}
	const n = 12 // within the floor of 2×8 an endpoint may hold claimed
	var settled sync.WaitGroup
	settled.Add(1)
	if err := d.Dispatch(t.Context(), Batch{Events: batchEvents(0, n), Settled: settled.Done}); err != nil {
		t.Fatal(err)
	}
	settled.Wait() // settled once stored
	var leased int
	if err := db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM walhook.deliveries
		WHERE claimed_by = 'inst_test' AND next_attempt_at > now() + interval '10 seconds'`).Scan(&leased); err != nil {
		t.Fatal(err)
	}
	if leased != n {
		t.Errorf("%d of %d deliveries stored claimed by the writer, want all", leased, n)
	}
	close(release)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		got := len(seen)
		mu.Unlock()
		var left int
		if err := db.Pool.QueryRow(t.Context(), `SELECT count(*) FROM walhook.deliveries`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if got == n && left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events arrived, %d rows left after 20s", got, n, left)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for id, k := range seen {
		if k != 1 {
			t.Errorf("%s arrived %d times", id, k)
		}
	}
	if c := cs.claimed.Load(); c != 0 {
		t.Errorf("ClaimDue took %d deliveries, want 0 (all claimed with their write)", c)
	}
}
