package relay_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

// TestDeadEndpointKeepsMemoryBoundedAndSlotMoving writes 100,000 events
// (20,000 under the race detector) while one of two endpoints refuses every
// connection: the healthy one gets them all, the dead one's go to the
// store, the slot advances past the last of them, and the heap stays
// bounded instead of holding the dead endpoint's backlog.
func TestDeadEndpointKeepsMemoryBoundedAndSlotMoving(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	n := 100_000
	if raceEnabled {
		n = 20_000
	}
	db := testenv.NewDB(t)
	live := newCounter()
	liveSrv := serve(t, live)
	secret := signing.GenerateSecret()
	run := start(t, db, fmt.Sprintf(`
endpoint "live" {
  url    = %q
  events = ["contact.created"]
  secret = %q
}
endpoint "dead" {
  url    = %q
  events = ["contact.created"]
  secret = %q
}`, liveSrv.URL, secret, refusedURL(t), secret), `delivery {
  max_in_flight    = 2000
  shutdown_timeout = "10s"
}`)

	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()

	const perTx = 1000
	for i := 0; i < n; i += perTx {
		db.Exec(t, `INSERT INTO contacts (organization_id, first_name) SELECT 1, 'c' || i FROM generate_series(1, $1) i`, perTx)
	}
	end := currentLSN(t, db)
	live.waitDistinct(t, n, 10*time.Minute)
	testkit.EventuallyWithin(t, 5*time.Minute, "the slot to pass the last event", func() bool { return confirmedPast(t, db, run.slot, end) })
	st, err := run.stateStore(t).Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	close(stop)
	<-sampled
	dead := st.ByEndpoint["cfg:dead"]
	if got := dead.Pending + dead.Failed; got != int64(n) {
		t.Errorf("dead endpoint has %d deliveries stored, want %d", got, n)
	}
	mib := float64(peak.Load()) / (1 << 20)
	t.Logf("%d events: peak heap in use %.0f MiB (this process holds Postgres client, relay and receivers)", n, mib)
	if limit := 512.0; mib > limit {
		t.Errorf("peak heap %.0f MiB exceeds %.0f MiB: the dead endpoint's backlog is being held in memory", mib, limit)
	}
}
