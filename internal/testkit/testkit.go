// Package testkit is what walhook's tests share for waiting: on a signal
// from the code (internal/testsignal) where the code can give one, and
// polling only for state the code cannot announce, such as a replication
// slot's position in pg_replication_slots.
package testkit

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// Timeout bounds every wait of this package: generous, because the test
// machine is shared and slow; a wait that ends does so as soon as its
// condition holds.
const Timeout = 90 * time.Second

// pollInterval is how often Eventually checks its condition.
const pollInterval = 10 * time.Millisecond

// Eventually polls cond until it holds, failing tb (with what it waited
// for) after Timeout. Use it only for state no code can signal.
func Eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	EventuallyWithin(tb, Timeout, what, cond)
}

// EventuallyWithin is Eventually with its own deadline.
func EventuallyWithin(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(pollInterval)
	}
}

// Await receives the next value from a signal's channel (testsignal's
// Signal.C), failing tb after Timeout.
func Await[T any](tb testing.TB, what string, c <-chan T) T {
	tb.Helper()
	return AwaitMatch(tb, what, c, func(T) bool { return true })
}

// AwaitMatch receives values from c until one satisfies match and returns
// it, failing tb after Timeout.
func AwaitMatch[T any](tb testing.TB, what string, c <-chan T, match func(T) bool) T {
	tb.Helper()
	if c == nil {
		tb.Fatalf("waiting for %s on a signal that was not initialised (call Init first)", what)
	}
	timeout := time.NewTimer(Timeout)
	defer timeout.Stop()
	for {
		select {
		case v := <-c:
			if match(v) {
				return v
			}
		case <-timeout.C:
			tb.Fatalf("timed out after %v waiting for %s", Timeout, what)
		}
	}
}

// AwaitCond waits until cond holds, checking it at once and again each
// time changed delivers (a test server's "something arrived" signal);
// it fails tb after within.
func AwaitCond(tb testing.TB, within time.Duration, what string, changed <-chan struct{}, cond func() bool) {
	tb.Helper()
	timeout := time.NewTimer(within)
	defer timeout.Stop()
	for !cond() {
		select {
		case <-changed:
		case <-timeout.C:
			tb.Fatalf("timed out after %v waiting for %s", within, what)
		}
	}
}

// Notifier is a "something changed" signal for test servers and sinks:
// Notify never blocks, and one pending notification stands for any number.
type Notifier chan struct{}

// NewNotifier returns a Notifier.
func NewNotifier() Notifier { return make(Notifier, 1) }

// Notify wakes whoever waits on the Notifier.
func (n Notifier) Notify() {
	select {
	case n <- struct{}{}:
	default:
	}
}

// Buffer is a bytes.Buffer that one goroutine (a handler, a logger, a
// process's output copier) writes while the test reads it.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
