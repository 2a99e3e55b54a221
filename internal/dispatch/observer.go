package dispatch

import "github.com/walhook/walhook/internal/store"

// Observer is told what the dispatcher does, for metrics. Its methods are
// called on hot paths and must be cheap and safe for concurrent use.
type Observer interface {
	ChangesRead(n int)
	EventEmitted(eventType string)
	EvaluationsFailed(n int)
	// Attempted reports one finished HTTP attempt (a.Number is 1 for the
	// first); tenant is the event's tenant, empty when it has none.
	// a.DeliveryID is empty for a first attempt from memory (nothing
	// needs it unless it is stored or logged): store.DeliveryID of the
	// event and endpoint ids gives it.
	Attempted(a store.Attempt, tenant string)
	// Overflowed reports a delivery sent to the store because memory was full.
	Overflowed(endpointID string)
	// Outcome reports a delivery reaching a final or stored state:
	// "delivered", "retrying", "failed".
	Outcome(endpointID, outcome string)
	Disabled(endpointID string)
	// ConcurrencyLimit reports an endpoint's new adaptive concurrency
	// limit; 0 when the endpoint was removed. Called outside every lock of
	// the dispatcher, possibly out of order under concurrency.
	ConcurrencyLimit(endpointID string, limit int)
}

type nopObserver struct{}

func (nopObserver) ChangesRead(int)                 {}
func (nopObserver) EventEmitted(string)             {}
func (nopObserver) EvaluationsFailed(int)           {}
func (nopObserver) Attempted(store.Attempt, string) {}
func (nopObserver) Overflowed(string)               {}
func (nopObserver) Outcome(string, string)          {}
func (nopObserver) Disabled(string)                 {}
func (nopObserver) ConcurrencyLimit(string, int)    {}

// Observers tells each of its observers everything.
type Observers []Observer

var _ Observer = Observers(nil)

func (os Observers) ChangesRead(n int) {
	for _, o := range os {
		o.ChangesRead(n)
	}
}

func (os Observers) EventEmitted(eventType string) {
	for _, o := range os {
		o.EventEmitted(eventType)
	}
}

func (os Observers) EvaluationsFailed(n int) {
	for _, o := range os {
		o.EvaluationsFailed(n)
	}
}

func (os Observers) Attempted(a store.Attempt, tenant string) {
	for _, o := range os {
		o.Attempted(a, tenant)
	}
}

func (os Observers) Overflowed(endpointID string) {
	for _, o := range os {
		o.Overflowed(endpointID)
	}
}

func (os Observers) Outcome(endpointID, outcome string) {
	for _, o := range os {
		o.Outcome(endpointID, outcome)
	}
}

func (os Observers) Disabled(endpointID string) {
	for _, o := range os {
		o.Disabled(endpointID)
	}
}

func (os Observers) ConcurrencyLimit(endpointID string, limit int) {
	for _, o := range os {
		o.ConcurrencyLimit(endpointID, limit)
	}
}
