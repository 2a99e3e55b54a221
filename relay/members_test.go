package relay_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/store"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

// TestInstancesMembership: two relays on one config register; the one
// holding the slot is the leader; each reports what it has in flight,
// retries included; a long-dead instance's row is pruned by a live one;
// a relay that stops removes its row. An admin listener on port 0 is
// listed with the port it got.
func TestInstancesMembership(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	// The receiver fails every first attempt, then holds each retry until
	// released, so both kinds stay in flight while the test looks.
	release := make(chan struct{})
	var calls atomic.Int64
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Webhook-Attempt") == "1" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		calls.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
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
admin {
  listen = "127.0.0.1:0"
  token  = "members-test-token-0123456789"
}
%s
%s`, db.URL, slot, slot, events, endpoint("app", srv.URL, signing.GenerateSecret(), ""))
	opts := testOptions
	opts.MemberEvery, opts.MemberPruneAfter = 100*time.Millisecond, time.Second
	a := runConfig(t, db, src, opts)
	a.waitStreaming(t)
	b := runConfig(t, db, src, opts)
	st := a.stateStore(t)
	list := func() map[string]store.Instance {
		ins, err := st.Instances(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]store.Instance{}
		for _, in := range ins {
			out[in.ID] = in
		}
		return out
	}
	testkit.Eventually(t, "both relays registered, a as leader", func() bool {
		l := list()
		ia, ib := l[a.relay.InstanceID()], l[b.relay.InstanceID()]
		return len(l) == 2 && ia.Alive && ia.Role == store.RoleLeader && ib.Alive && ib.Role == store.RoleStandby
	})
	if in := list()[a.relay.InstanceID()]; !strings.HasPrefix(in.Listen, "127.0.0.1:") || in.Listen == "127.0.0.1:0" {
		t.Errorf("a's listen address = %q, want the port its listener got", in.Listen)
	}

	// A row left by an instance dead for long (a crash an hour ago).
	gone := store.Instance{ID: store.NewInstanceID(), Host: "gone", PID: 1, Version: "old", Role: store.RoleLeader, HeartbeatEvery: time.Second}
	if err := st.Heartbeat(context.Background(), gone); err != nil {
		t.Fatal(err)
	}
	db.Exec(t, `UPDATE walhook.instances SET heartbeat_at = now() - interval '1 hour' WHERE id = $1`, gone.ID)
	testkit.Eventually(t, "the long-dead row pruned", func() bool { _, ok := list()[gone.ID]; return !ok })

	db.Exec(t, `INSERT INTO contacts (organization_id, first_name) SELECT 1, 'c' || i FROM generate_series(1, 3) i`)
	testkit.Eventually(t, "retries in flight reported", func() bool {
		inFlight, retries := 0, 0
		for _, in := range list() {
			inFlight += in.Load.InFlight
			retries += in.Load.RetriesInFlight
		}
		return calls.Load() > 0 && inFlight >= 1 && retries >= 1
	})
	close(release)
	// A rate covers one heartbeat interval: keep attempts coming.
	testkit.Eventually(t, "an attempt rate reported", func() bool {
		db.Exec(t, `INSERT INTO contacts (organization_id, first_name) VALUES (1, 'trickle')`)
		for _, in := range list() {
			if in.Load.AttemptsPerSecond > 0 {
				return true
			}
		}
		return false
	})

	if err := b.stop(); err != nil {
		t.Fatalf("b: %v", err)
	}
	l := list()
	if _, ok := l[b.relay.InstanceID()]; ok || !l[a.relay.InstanceID()].Alive {
		t.Fatalf("after b stopped: %+v, want a alone", l)
	}
}
