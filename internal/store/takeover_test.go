package store

import (
	"slices"
	"testing"
	"time"
)

// TestReleaseDeadClaims: ClaimDue records the claiming instance; a
// completion clears it; the leases of an instance silent past the dead
// threshold and past the given time are made due at once, once, with the
// same ids; an alive instance's leases are left alone; an instance that
// leaves cleanly hands its leases back.
func TestReleaseDeadClaims(t *testing.T) {
	t.Parallel()
	sa, db := setup(t)
	sb, err := Open(ctx(t), db.Pool, oddSchema)
	if err != nil {
		t.Fatal(err)
	}
	a := Instance{ID: NewInstanceID(), Host: "a", Version: "v", Role: RoleStandby, HeartbeatEvery: time.Second}
	b := Instance{ID: NewInstanceID(), Host: "b", Version: "v", Role: RoleLeader, HeartbeatEvery: time.Second}
	sa.SetInstance(a.ID)
	sb.SetInstance(b.ID)
	for _, in := range []Instance{a, b} {
		if err := sa.Heartbeat(ctx(t), in); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 6 {
		mustPersist(t, sa, delivery(i, "cfg:hook", ""))
	}
	heldByA := claimIDs(t, sa, 3, time.Hour)
	heldByB := claimIDs(t, sb, 3, time.Hour)
	if len(heldByA) != 3 || len(heldByB) != 3 {
		t.Fatalf("claimed %v and %v, want 3 each", heldByA, heldByB)
	}
	// a delivers one: its lease is over, nothing to take over.
	done := mustGet(t, sa, heldByA[0])
	if _, err := sa.Complete(ctx(t), done, Attempt{Number: 1, StatusCode: 200}, Outcome{Status: StatusDelivered}); err != nil {
		t.Fatal(err)
	}
	heldByA = heldByA[1:]

	if got, err := sb.ReleaseDeadClaims(ctx(t), 0); err != nil || len(got) != 0 {
		t.Fatalf("ReleaseDeadClaims with everyone alive = %v, %v; want nothing", got, err)
	}
	silent := DeadAfterBeats*time.Second + DeadMargin + 2*time.Second
	db.Exec(t, `UPDATE `+sa.quoted+`.instances SET heartbeat_at = now() - $2::bigint * interval '1 microsecond' WHERE id = $1`, a.ID, silent.Microseconds())
	if got, err := sb.ReleaseDeadClaims(ctx(t), time.Minute); err != nil || len(got) != 0 {
		t.Fatalf("ReleaseDeadClaims(1m) with a silent for %s = %v, %v; want nothing yet (an attempt may still run)", silent, got, err)
	}
	got, err := sb.ReleaseDeadClaims(ctx(t), time.Second)
	if err != nil || len(got) != 1 || got[a.ID] != 2 {
		t.Fatalf("ReleaseDeadClaims(1s) = %v, %v; want a's 2 leases", got, err)
	}
	if got, err := sa.ReleaseDeadClaims(ctx(t), time.Second); err != nil || len(got) != 0 {
		t.Fatalf("ReleaseDeadClaims again = %v, %v; want nothing (released once)", got, err)
	}
	// b takes them over, well before the hour's lease: the same ids.
	retaken := claimIDs(t, sb, 10, time.Hour)
	slices.Sort(retaken)
	slices.Sort(heldByA)
	if !slices.Equal(retaken, heldByA) {
		t.Fatalf("b claimed %v, want a's leases %v", retaken, heldByA)
	}

	// b leaves cleanly: all its leases (its own three and a's two) are due.
	if err := sb.LeaveInstance(ctx(t), b.ID); err != nil {
		t.Fatal(err)
	}
	back := claimIDs(t, sa, 10, time.Hour)
	want := append(slices.Clone(heldByB), heldByA...)
	slices.Sort(back)
	slices.Sort(want)
	if !slices.Equal(back, want) {
		t.Fatalf("after b left, claimed %v, want %v", back, want)
	}
	// A postpone clears the lease's holder: a dying now releases nothing.
	for _, id := range back {
		if err := sa.Postpone(ctx(t), id, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := sb.ReleaseDeadClaims(ctx(t), time.Second); err != nil || len(got) != 0 {
		t.Fatalf("ReleaseDeadClaims after postponing = %v, %v; want nothing", got, err)
	}
}
