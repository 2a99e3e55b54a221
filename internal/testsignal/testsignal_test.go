package testsignal

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSignal(t *testing.T) {
	t.Parallel()
	var off Signal[int]
	off.Emit(1) // off: nothing happens, nothing blocks
	if off.C() != nil {
		t.Fatal("an uninitialised signal has a channel")
	}

	var s Signal[int]
	s.Init()
	for i := 0; i < capacity+5; i++ {
		s.Emit(i) // never blocks, even past capacity
	}
	if got := <-s.C(); got != 0 {
		t.Errorf("first value %d, want 0", got)
	}
	if n := len(s.C()); n != capacity-1 {
		t.Errorf("%d values queued, want %d (the rest dropped)", n, capacity-1)
	}
}
