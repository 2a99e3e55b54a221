package testkit

import (
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/walhook/walhook/internal/testsignal"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// failure records a Fatalf instead of ending the test, so the failing
// paths can be checked.
type failure struct {
	testing.TB
	failed atomic.Bool
}

func (f *failure) Helper() {}
func (f *failure) Fatalf(string, ...any) {
	f.failed.Store(true)
	panic(f)
}

// fails runs wait and reports whether it failed the test.
func fails(t *testing.T, wait func(tb testing.TB)) (failed bool) {
	f := &failure{TB: t}
	defer func() {
		if r := recover(); r != nil && r != any(f) {
			panic(r)
		}
		failed = f.failed.Load()
	}()
	wait(f)
	return false
}

func TestEventually(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	Eventually(t, "the third check", func() bool { return n.Add(1) == 3 })
	if !fails(t, func(tb testing.TB) { EventuallyWithin(tb, 30*time.Millisecond, "never", func() bool { return false }) }) {
		t.Error("EventuallyWithin did not fail on a condition that never holds")
	}
}

func TestAwait(t *testing.T) {
	t.Parallel()
	var s testsignal.Signal[string]
	s.Init()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Emit("connecting")
		s.Emit("streaming")
	}()
	if got := Await(t, "the first status", s.C()); got != "connecting" {
		t.Errorf("Await = %q", got)
	}
	<-done
	s.Emit("idle")
	if got := AwaitMatch(t, "idle", s.C(), func(v string) bool { return v == "idle" }); got != "idle" {
		t.Errorf("AwaitMatch = %q", got)
	}
	var off testsignal.Signal[int]
	if !fails(t, func(tb testing.TB) { Await(tb, "an uninitialised signal", off.C()) }) {
		t.Error("Await on an uninitialised signal did not fail")
	}
}

func TestAwaitCond(t *testing.T) {
	t.Parallel()
	n := NewNotifier()
	var count atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 5; i++ {
			count.Add(1)
			n.Notify()
		}
	}()
	AwaitCond(t, Timeout, "five arrivals", n, func() bool { return count.Load() == 5 })
	<-done
	if !fails(t, func(tb testing.TB) {
		AwaitCond(tb, 30*time.Millisecond, "nothing", NewNotifier(), func() bool { return false })
	}) {
		t.Error("AwaitCond did not fail when nothing arrives")
	}
}
