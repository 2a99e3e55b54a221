package admin_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/store"
)

// TestInstancesList: GET /v1/instances lists the registered instances with
// their role, state and load; it needs a token, and an admin one.
func TestInstancesList(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	ctx := context.Background()
	leader := store.Instance{ID: store.NewInstanceID(), Host: "db-1", PID: 4242, Version: "1.2.3", Listen: "127.0.0.1:8080",
		Role: store.RoleLeader, HeartbeatEvery: 5 * time.Second, Load: store.InstanceLoad{InFlight: 3, RetriesInFlight: 1, AttemptsPerSecond: 9}}
	gone := store.Instance{ID: store.NewInstanceID(), Host: "db-2", PID: 7, Version: "1.2.3", Role: store.RoleStandby, HeartbeatEvery: 5 * time.Second}
	for _, in := range []store.Instance{gone, leader} {
		if err := e.store.Heartbeat(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.db.Pool.Exec(ctx, `UPDATE walhook.instances SET heartbeat_at = now() - interval '1 minute' WHERE id = $1`, gone.ID); err != nil {
		t.Fatal(err)
	}

	e.expect(e.call("GET", "/v1/instances", nil, ""), http.StatusUnauthorized)
	var got struct {
		Data []struct {
			ID, Host, Version, Listen, Role, State string
			PID                                    int
			InFlight                               int     `json:"in_flight"`
			RetriesInFlight                        int     `json:"retries_in_flight"`
			AttemptsPerSecond                      float64 `json:"attempts_per_second"`
			HeartbeatAge                           float64 `json:"heartbeat_age_seconds"`
			HeartbeatEvery                         float64 `json:"heartbeat_every_seconds"`
		}
	}
	e.expect(e.do("GET", "/v1/instances", nil), http.StatusOK).json(t, &got)
	if len(got.Data) != 2 {
		t.Fatalf("instances = %+v, want 2", got.Data)
	}
	l, g := got.Data[0], got.Data[1]
	if l.ID != leader.ID || l.State != "alive" || l.Role != "leader" || l.Host != "db-1" || l.PID != 4242 || l.Listen != "127.0.0.1:8080" ||
		l.InFlight != 3 || l.RetriesInFlight != 1 || l.AttemptsPerSecond != 9 || l.HeartbeatEvery != 5 {
		t.Errorf("first = %+v, want the alive leader", l)
	}
	if g.ID != gone.ID || g.State != "dead" || g.HeartbeatAge < 60 {
		t.Errorf("second = %+v, want the dead standby, silent for a minute", g)
	}

	_, token, err := e.store.CreateAPIToken(ctx, "acme", "portal")
	if err != nil {
		t.Fatal(err)
	}
	e.expect(e.call("GET", "/v1/instances", nil, token), http.StatusForbidden)
}
