package store

import (
	"testing"
	"time"
)

// TestInstances: an instance registers with its first heartbeat, renews
// its role and load, turns dead once silent past DeadAfterBeats heartbeats
// and DeadMargin (by the database's clock), is pruned once dead for long
// enough, and leaves on a clean stop.
func TestInstances(t *testing.T) {
	t.Parallel()
	s, db := setup(t)
	a := Instance{ID: NewInstanceID(), Host: "a.example", PID: 11, Version: "v1", Listen: "127.0.0.1:8080", Role: RoleStandby, HeartbeatEvery: time.Second}
	b := Instance{ID: NewInstanceID(), Host: "b.example", PID: 22, Version: "v1", Role: RoleLeader, HeartbeatEvery: time.Second}
	for _, in := range []Instance{a, b} {
		if err := s.Heartbeat(ctx(t), in); err != nil {
			t.Fatal(err)
		}
	}
	a.Role, a.Load = RoleLeader, InstanceLoad{InFlight: 7, RetriesInFlight: 2, AttemptsPerSecond: 12.5, FailuresPerSecond: 0.5}
	b.Role = RoleStandby
	for _, in := range []Instance{a, b} {
		if err := s.Heartbeat(ctx(t), in); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Instances(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != a.ID || got[1].ID != b.ID {
		t.Fatalf("Instances = %+v, want a (the leader now) then b", got)
	}
	g := got[0]
	if !g.Alive || g.Role != RoleLeader || g.Load != a.Load || g.Host != "a.example" || g.PID != 11 || g.Listen != a.Listen ||
		g.HeartbeatEvery != time.Second || g.Silent < 0 || g.Silent > time.Minute {
		t.Fatalf("a = %+v, want alive leader with its load", g)
	}

	// b stops heartbeating: move its last heartbeat back past the limit.
	silent := DeadAfterBeats*time.Second + DeadMargin + time.Second
	db.Exec(t, `UPDATE `+s.quoted+`.instances SET heartbeat_at = now() - $2::bigint * interval '1 microsecond' WHERE id = $1`, b.ID, silent.Microseconds())
	got, err = s.Instances(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].Alive || got[1].ID != b.ID || got[1].Alive || got[1].Silent < silent {
		t.Fatalf("Instances = %+v, want a alive, b dead (silent for %s)", got, silent)
	}
	if ids, err := s.PruneInstances(ctx(t), time.Hour); err != nil || len(ids) != 0 {
		t.Fatalf("PruneInstances(1h) = %v, %v; want nothing pruned (b is dead for a second)", ids, err)
	}
	if ids, err := s.PruneInstances(ctx(t), 0); err != nil || len(ids) != 1 || ids[0] != b.ID {
		t.Fatalf("PruneInstances(0) = %v, %v; want b pruned", ids, err)
	}
	if err := s.LeaveInstance(ctx(t), a.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Instances(ctx(t)); err != nil || len(got) != 0 {
		t.Fatalf("after a left: %+v, %v", got, err)
	}
}

// BenchmarkHeartbeat is one instance's heartbeat as the Member makes it:
// the upsert, the prune and the list, with ten instances registered.
func BenchmarkHeartbeat(b *testing.B) {
	s, _ := setup(b)
	self := Instance{ID: NewInstanceID(), Host: "h", PID: 1, Version: "v", Role: RoleLeader, HeartbeatEvery: 5 * time.Second}
	for range 9 {
		if err := s.Heartbeat(ctx(b), Instance{ID: NewInstanceID(), Host: "p", Version: "v", Role: RoleStandby, HeartbeatEvery: 5 * time.Second}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if err := s.Heartbeat(ctx(b), self); err != nil {
			b.Fatal(err)
		}
		if _, err := s.PruneInstances(ctx(b), time.Hour); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Instances(ctx(b)); err != nil {
			b.Fatal(err)
		}
	}
}
