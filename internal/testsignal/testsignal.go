// Package testsignal lets code tell a test that something happened, so the
// test waits for that moment instead of sleeping or polling (the idea of
// river's TestSignal). A Signal is off until a test calls Init; then every
// Emit is queued for the test to receive (see internal/testkit.Await).
//
// It does not import testing: production code holds Signals, and the
// walhook binary must not link testing.
package testsignal

// capacity bounds the signals queued for a test that does not read them.
const capacity = 1000

// Signal is one kind of event a component reports to tests. The zero value
// is off: Emit does nothing, at the cost of a nil check.
type Signal[T any] struct {
	ch chan T
}

// Init turns the signal on. Call it before the code that emits it starts
// (it is not safe to race with Emit).
func (s *Signal[T]) Init() { s.ch = make(chan T, capacity) }

// Emit reports v to the test, if the signal is on. It never blocks: when
// the test has let capacity signals pile up, v is dropped.
func (s *Signal[T]) Emit(v T) {
	if s.ch == nil {
		return
	}
	select {
	case s.ch <- v:
	default:
	}
}

// C is the channel the emitted values arrive on (nil while off).
func (s *Signal[T]) C() <-chan T { return s.ch }
