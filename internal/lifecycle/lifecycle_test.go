package lifecycle_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/walhook/walhook/internal/lifecycle"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStopAndWaitEndsEveryLoop(t *testing.T) {
	g := lifecycle.New(context.Background())
	started := make(chan struct{}, 3)
	stopped := 0
	done := make(chan struct{}, 3)
	for range 3 {
		g.Go(func(ctx context.Context) {
			started <- struct{}{}
			<-ctx.Done()
			done <- struct{}{}
		})
	}
	for range 3 {
		<-started
	}
	g.StopAndWait()
	for len(done) > 0 {
		<-done
		stopped++
	}
	if stopped != 3 {
		t.Fatalf("%d loops returned before StopAndWait did, want 3", stopped)
	}
}

func TestParentEndStopsLoops(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	g := lifecycle.New(parent)
	g.Go(func(ctx context.Context) { <-ctx.Done() })
	cancel()
	g.Wait()
	if g.Context().Err() == nil {
		t.Fatal("the group's context is still live after its parent ended")
	}
}

func TestEveryCallsUntilStopped(t *testing.T) {
	g := lifecycle.New(context.Background())
	calls := make(chan struct{})
	g.Every(time.Millisecond, time.Millisecond, func(ctx context.Context) {
		select {
		case calls <- struct{}{}:
		case <-ctx.Done():
		}
	})
	for range 3 {
		<-calls // called again after each call returns
	}
	g.StopAndWait() // returns only once the loop has ended (goleak checks it)
}
