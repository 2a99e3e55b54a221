package membership

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/walhook/walhook/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeStore records what the Member writes; the real SQL is tested in
// internal/store and through two relays in relay/members_test.go.
type fakeStore struct {
	mu     sync.Mutex
	beats  []store.Instance
	fail   bool
	peers  []store.Instance
	prune  []string
	left   []string
	beaten chan struct{}
	// release is what the next ReleaseDeadClaims returns; after what it
	// was last asked with.
	release map[string]int
	after   time.Duration
}

func (f *fakeStore) ReleaseDeadClaims(_ context.Context, after time.Duration) (map[string]int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.after = after
	r := f.release
	f.release = nil
	return r, nil
}

func (f *fakeStore) Heartbeat(_ context.Context, in store.Instance) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer func() {
		select {
		case f.beaten <- struct{}{}:
		default:
		}
	}()
	if f.fail {
		return errors.New("connection refused")
	}
	f.beats = append(f.beats, in)
	return nil
}

func (f *fakeStore) LeaveInstance(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.left = append(f.left, id)
	return nil
}

func (f *fakeStore) Instances(context.Context) ([]store.Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peers, nil
}

func (f *fakeStore) PruneInstances(context.Context, time.Duration) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := f.prune
	f.prune = nil
	for _, id := range ids {
		for i, in := range f.peers {
			if in.ID == id {
				f.peers = append(f.peers[:i:i], f.peers[i+1:]...)
				break
			}
		}
	}
	return ids, nil
}

// TestMemberBeats: each beat writes the role and load read then and the
// attempt rates since the last beat; a failing heartbeat is logged once
// per streak; a dead peer is logged once; its released leases are logged
// and counted; pruned peers are logged; Leave removes the row.
func TestMemberBeats(t *testing.T) {
	f := &fakeStore{beaten: make(chan struct{}, 1)}
	var logs bytes.Buffer
	var logMu sync.Mutex
	role := store.RoleStandby
	tookOver, alive := 0, 0
	m := New(Config{
		Alive:         func(n int) { alive = n },
		TakeOverAfter: func() time.Duration { return 30 * time.Second },
		TookOver:      func(n int) { tookOver += n },
		Store:         f, Self: store.Instance{ID: "ins_self", Host: "h", PID: 1, Version: "v"}, Every: time.Hour,
		Role:   func() string { return role },
		Load:   func() store.InstanceLoad { return store.InstanceLoad{InFlight: 4, RetriesInFlight: 1} },
		Logger: zerolog.New(lockedWriter{&logs, &logMu}),
	})
	f.peers = []store.Instance{{ID: "ins_self", Alive: true}, {ID: "ins_dead", Host: "x", Silent: time.Minute}}
	f.release = map[string]int{"ins_dead": 3}
	m.Attempted(store.Attempt{StatusCode: 200}, "")
	m.Attempted(store.Attempt{StatusCode: 500}, "")
	m.lastBeat = time.Now().Add(-time.Second)
	m.beat(context.Background())
	role = store.RoleLeader
	m.beat(context.Background())
	f.mu.Lock()
	f.fail = true
	f.mu.Unlock()
	m.beat(context.Background())
	m.beat(context.Background())
	f.mu.Lock()
	f.fail, f.prune = false, []string{"ins_dead"}
	f.mu.Unlock()
	m.beat(context.Background())

	if len(f.beats) != 3 {
		t.Fatalf("%d heartbeats recorded, want 3", len(f.beats))
	}
	first := f.beats[0]
	if first.ID != "ins_self" || first.Role != store.RoleStandby || first.HeartbeatEvery != time.Hour || first.Load.InFlight != 4 ||
		first.Load.RetriesInFlight != 1 || first.Load.AttemptsPerSecond < 1 || first.Load.AttemptsPerSecond > 2.1 ||
		first.Load.FailuresPerSecond <= 0 || first.Load.FailuresPerSecond > first.Load.AttemptsPerSecond {
		t.Errorf("first heartbeat = %+v, want standby with 2 attempts (1 failed) over about a second", first)
	}
	if second := f.beats[1]; second.Role != store.RoleLeader || second.Load.AttemptsPerSecond != 0 {
		t.Errorf("second heartbeat = %+v, want leader and no attempts since the first", second)
	}
	logMu.Lock()
	text := logs.String()
	logMu.Unlock()
	for what, want := range map[string]int{"an instance stopped heartbeating": 1, "heartbeat not recorded": 1,
		"heartbeat recorded again": 1, "removed a dead instance": 1, `"deliveries":3,"message":"took over the deliveries`: 1} {
		if got := strings.Count(text, what); got != want {
			t.Errorf("log has %q %d times, want %d:\n%s", what, got, want, text)
		}
	}
	if alive != 1 {
		t.Errorf("told %d instances alive, want 1 (itself; the other is dead)", alive)
	}
	if tookOver != 3 || f.after != 30*time.Second {
		t.Errorf("took over %d leases after %s, want 3 after 30s", tookOver, f.after)
	}
	m.Leave(context.Background())
	if len(f.left) != 1 || f.left[0] != "ins_self" {
		t.Errorf("left = %v", f.left)
	}
}

// TestMemberRunStops: Run beats at once and returns when its context ends.
func TestMemberRunStops(t *testing.T) {
	f := &fakeStore{beaten: make(chan struct{}, 1)}
	m := New(Config{Store: f, Self: store.Instance{ID: "ins_run"}, Role: func() string { return store.RolePoller },
		Load: func() store.InstanceLoad { return store.InstanceLoad{} }, Logger: zerolog.Nop()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	select {
	case <-f.beaten:
	case <-time.After(time.Minute):
		t.Fatal("no heartbeat at start")
	}
	cancel()
	<-done
	if m.cfg.Every != DefaultEvery || m.cfg.PruneAfter != DefaultPruneAfter {
		t.Errorf("defaults: every %s, prune after %s", m.cfg.Every, m.cfg.PruneAfter)
	}
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// TestRoleChangeBeatsAtOnce: with an hour between heartbeats, a change of
// role is still written within a moment (the instances list shows a new
// leader when it takes the slot, not at its next beat).
func TestRoleChangeBeatsAtOnce(t *testing.T) {
	f := &fakeStore{beaten: make(chan struct{}, 1)}
	var role atomic.Value
	role.Store(store.RoleStandby)
	m := New(Config{
		Store: f, Self: store.Instance{ID: "ins_self"}, Every: time.Hour,
		Role:   func() string { return role.Load().(string) },
		Load:   func() store.InstanceLoad { return store.InstanceLoad{} },
		Logger: zerolog.Nop(),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	<-f.beaten // the first beat, at start
	role.Store(store.RoleLeader)
	select {
	case <-f.beaten:
	case <-time.After(30 * time.Second): // an hour is the alternative
		t.Fatal("the change of role was not written")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.beats); n != 2 || f.beats[1].Role != store.RoleLeader {
		t.Errorf("beats %+v, want a second one as leader", f.beats)
	}
}
