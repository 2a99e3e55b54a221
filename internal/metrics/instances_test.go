package metrics

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/store"
)

// TestInstanceGauges: the membership gauges count alive and dead
// instances, describe each one, keep the last list when a read fails, and
// are absent while no list is watched.
func TestInstanceGauges(t *testing.T) {
	t.Parallel()
	m := New(nil)
	if got := scrape(t, m.Handler()); got[`walhook_instances{state="alive"}`] != 0 || len(filter(got, "walhook_instance_info")) != 0 {
		t.Fatalf("without WatchInstances: %v", filter(got, "walhook_instance"))
	}
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m.instances.now = func() time.Time { return clock }
	fail := false
	m.WatchInstances(func(context.Context) ([]store.Instance, error) {
		if fail {
			return nil, errors.New("state database down")
		}
		return []store.Instance{
			{ID: "ins_a", Host: "a", PID: 10, Version: "1.0", Role: store.RoleLeader, Alive: true, Silent: 2 * time.Second,
				Load: store.InstanceLoad{InFlight: 5, AttemptsPerSecond: 40}},
			{ID: "ins_b", Host: "b", PID: 20, Version: "1.0", Role: store.RoleStandby, Alive: true, Silent: time.Second},
			{ID: "ins_c", Host: "c", PID: 30, Version: "0.9", Role: store.RoleStandby, Silent: time.Minute},
		}, nil
	})
	check := func(got map[string]float64) {
		t.Helper()
		want := map[string]float64{
			`walhook_instances{state="alive"}`: 2,
			`walhook_instances{state="dead"}`:  1,
			`walhook_instance_info{host="a",instance="ins_a",pid="10",role="leader",state="alive",version="1.0"}`: 1,
			`walhook_instance_info{host="c",instance="ins_c",pid="30",role="standby",state="dead",version="0.9"}`: 1,
			`walhook_instance_heartbeat_age_seconds{instance="ins_c"}`:                                            60,
			`walhook_instance_in_flight{instance="ins_a"}`:                                                        5,
			`walhook_instance_attempts_per_second{instance="ins_a"}`:                                              40,
		}
		for series, v := range want {
			if got[series] != v {
				t.Errorf("%s = %v, want %v", series, got[series], v)
			}
		}
	}
	check(scrape(t, m.Handler()))
	fail = true
	clock = clock.Add(3 * time.Second)
	got := scrape(t, m.Handler())
	check(got)
	if got["walhook_instances_read_errors_total"] != 1 {
		t.Errorf("read errors = %v, want 1", got["walhook_instances_read_errors_total"])
	}
}

// filter keeps the series whose name starts with prefix.
func filter(got map[string]float64, prefix string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range got {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			out[k] = v
		}
	}
	return out
}
