package relay_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/dispatch"
	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/store"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

// TestDeadInstanceLeasesTakenOver: an instance that claimed deliveries
// with a ten-minute lease and then stopped heartbeating (a kill -9 between
// its claim and its attempts) has them delivered by a live relay once it
// is past the dead threshold and the longest endpoint timeout, long
// before the lease ends: every one, under its own id, and the take-over
// is logged once with its count.
func TestDeadInstanceLeasesTakenOver(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	var mu sync.Mutex
	got := map[string]int{}
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Header.Get("Webhook-Id")]++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	slot := testenv.Name(t, "slot")
	src := fmt.Sprintf(`
source "postgres" {
  url         = %q
  slot        = %q
  publication = %q
}
delivery {
  shutdown_timeout = "5s"
}
%s
%s`, db.URL, slot, slot, events, endpoint("app", srv.URL, signing.GenerateSecret(), `timeout = "1s"`))
	opts := testOptions
	opts.MemberEvery = 100 * time.Millisecond
	var logs testkit.Buffer
	live := runConfigLogged(t, db, src, &logs, opts)
	live.waitStreaming(t)

	// The dead instance: registered with a short heartbeat, it claims
	// every delivery, then says nothing more.
	dead, err := store.Open(context.Background(), db.Pool, "walhook")
	if err != nil {
		t.Fatal(err)
	}
	deadID := store.NewInstanceID()
	dead.SetInstance(deadID)
	if err := dead.Heartbeat(context.Background(), store.Instance{ID: deadID, Host: "gone", Version: "v", Role: store.RoleStandby,
		HeartbeatEvery: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	const n = 40
	var ds []store.Delivery
	want := map[string]bool{}
	for i := range n {
		ev := fmt.Sprintf("evt_takeover_%03d", i)
		d := store.Delivery{ID: store.DeliveryID(ev, dispatch.ConfigEndpointID("app")), EventID: ev, EventType: "contact.created",
			EndpointID: dispatch.ConfigEndpointID("app"), Body: []byte(`{}`), EventTime: time.Now(), CommitLSN: uint64(i + 1), Status: store.StatusPending}
		ds = append(ds, d)
		want[ev] = true
	}
	if err := dead.Persist(context.Background(), ds); err != nil {
		t.Fatal(err)
	}
	// The live relay may claim some first; the dead one leases the rest.
	claimed, err := dead.ClaimDue(context.Background(), n, 10*time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the dead instance claimed %d of %d deliveries", len(claimed), n)
	for _, d := range claimed {
		want[d.EventID] = true
	}
	testkit.EventuallyWithin(t, 2*time.Minute, "every delivery received", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for ev := range want {
			if got[ev] == 0 {
				return false
			}
		}
		return true
	})
	mu.Lock()
	if len(got) != n {
		t.Errorf("received %d event ids, want %d: %v", len(got), n, got)
	}
	mu.Unlock()
	if len(claimed) > 0 {
		testkit.Eventually(t, "the take-over logged", func() bool {
			return strings.Count(logs.String(), fmt.Sprintf(`"instance":%q,"deliveries":%d,"message":"took over the deliveries`, deadID, len(claimed))) == 1
		})
	}
}
