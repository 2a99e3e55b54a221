// Package settle computes the WAL position walhook may confirm to Postgres
// (see docs/architecture.md).
//
// This is where the first promise of docs/architecture.md lives: the slot is
// confirmed only up to the end LSN of the newest transaction such that it,
// and every transaction before it, has every delivery settled: accepted by
// its endpoint with a 2xx, or durably written to the retry store. A crash at
// any moment then loses nothing: whatever was not settled is still in the
// slot and is decoded again on restart, with the same event ids.
package settle

import (
	"sync"

	"github.com/walhook/walhook/cdc"
)

// Tracker follows transactions from capture to settlement, in commit order,
// and reports each advance of the settled watermark.
type Tracker struct {
	mu      sync.Mutex
	pending []*Tx // transactions not yet settled or not yet acknowledged, in commit order
	head    int   // index of the first live entry in pending
	settled cdc.LSN
	ack     func(cdc.LSN)
}

// Tx is a transaction whose deliveries are outstanding.
type Tx struct {
	t           *Tracker // nil for a standalone Tx
	end         cdc.LSN
	outstanding int
	onDone      func()
	mu          sync.Mutex // guards a standalone Tx
}

// NewTx returns a Tx outside any Tracker: done is called (once, from the
// goroutine that settles the last delivery) when its n deliveries are
// settled, or at once when n is 0. Sources without a WAL position (the
// outbox poller) settle their batches this way.
func NewTx(n int, done func()) *Tx {
	tx := &Tx{outstanding: n, onDone: done}
	if n == 0 && done != nil {
		done()
	}
	return tx
}

// NewTracker returns a Tracker that calls ack with each new watermark. ack
// is called with the tracker's lock held, in increasing order: it must be
// quick and must not call back into the Tracker.
func NewTracker(ack func(cdc.LSN)) *Tracker { return &Tracker{ack: ack} }

// Begin registers a transaction ending at end with n outstanding
// deliveries. Transactions must be begun in commit order. With n == 0 the
// transaction is settled at once (once the ones before it are).
func (t *Tracker) Begin(end cdc.LSN, n int) *Tx {
	tx := &Tx{t: t, end: end, outstanding: n}
	t.mu.Lock()
	t.pending = append(t.pending, tx)
	t.advance()
	t.mu.Unlock()
	return tx
}

// Open registers a transaction whose end LSN is not known yet (one handed
// over in pieces, cdc.Transaction.Part), in commit order: the watermark
// does not pass it before Close, whatever Add and Done do meanwhile.
func (t *Tracker) Open() *Tx { return t.Begin(0, 1) }

// Close gives a transaction registered with Open its end LSN: from now on
// it is settled once its outstanding deliveries are. Call it once, after
// the last Add.
func (tx *Tx) Close(end cdc.LSN) {
	t := tx.t
	t.mu.Lock()
	tx.end = end
	t.mu.Unlock()
	tx.Done()
}

// Add adds n more outstanding deliveries to a transaction not yet settled.
func (tx *Tx) Add(n int) {
	if tx.t == nil {
		tx.mu.Lock()
		defer tx.mu.Unlock()
		if tx.outstanding <= 0 {
			panic("settle: Add on a settled transaction")
		}
		tx.outstanding += n
		return
	}
	tx.t.mu.Lock()
	if tx.outstanding <= 0 {
		tx.t.mu.Unlock()
		panic("settle: Add on a settled transaction")
	}
	tx.outstanding += n
	tx.t.mu.Unlock()
}

// Done marks one delivery of the transaction settled.
func (tx *Tx) Done() {
	if tx.t == nil {
		tx.mu.Lock()
		tx.outstanding--
		n := tx.outstanding
		tx.mu.Unlock()
		if n < 0 {
			panic("settle: Done called more times than deliveries")
		}
		if n == 0 && tx.onDone != nil {
			tx.onDone()
		}
		return
	}
	t := tx.t
	t.mu.Lock()
	tx.outstanding--
	if tx.outstanding < 0 {
		t.mu.Unlock()
		panic("settle: Done called more times than deliveries")
	}
	if tx.outstanding == 0 {
		t.advance()
	}
	t.mu.Unlock()
}

// End is the transaction's end LSN.
func (tx *Tx) End() cdc.LSN { return tx.end }

// advance pops the settled prefix and acknowledges its last end LSN.
func (t *Tracker) advance() {
	moved := false
	for t.head < len(t.pending) && t.pending[t.head].outstanding == 0 {
		if end := t.pending[t.head].end; end > t.settled {
			t.settled = end
			moved = true
		}
		t.pending[t.head] = nil
		t.head++
	}
	if t.head > 1024 && t.head*2 > len(t.pending) {
		n := copy(t.pending, t.pending[t.head:])
		t.pending = t.pending[:n]
		t.head = 0
	}
	if moved && t.ack != nil {
		t.ack(t.settled)
	}
}

// Settled is the current watermark.
func (t *Tracker) Settled() cdc.LSN {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.settled
}

// Outstanding is how many transactions are not yet settled.
func (t *Tracker) Outstanding() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending) - t.head
}
