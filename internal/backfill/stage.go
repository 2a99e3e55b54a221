package backfill

import (
	"fmt"
	"sync"
	"time"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/event"
)

// Stage sits in the slot source between reading and evaluation
// (relay/pipeline.go, docs/architecture.md): every transaction from the
// slot passes Intercept in stream order and, at each chunk's high
// watermark, gains the rows of the chunk the stream did not change (see
// windows.process). It also gives read rows their backfill's event ids and
// targets (Evaluate) and tells runners how far the slot's transactions are
// settled (Settled).
type Stage struct {
	mu      sync.Mutex // a leaf: held for map and slice operations only
	windows *windows
	waiting map[string]chan closed // per token, the runner waiting for the high watermark
	targets map[string]Target      // per running backfill id
	settled cdc.LSN
	// settleWaiters are runners waiting for the settled position to reach
	// a LSN.
	settleWaiters []*settleWaiter
}

// settleWaiter is closed once the settled position reaches lsn; at is
// when, and may be read once done is closed.
type settleWaiter struct {
	lsn  cdc.LSN
	done chan struct{}
	at   time.Time
}

// settled reports, without waiting, whether w is closed.
func (w *settleWaiter) settled() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// Target is what the events of a backfill's rows are and where they go.
type Target struct {
	// IDSeed goes into every event id (event.NewReadID).
	IDSeed string
	// Event, when set, is the only rule whose events are kept.
	Event string
	// EndpointID, when set, is the only endpoint the events go to.
	EndpointID string
}

// NewStage returns an empty Stage.
func NewStage() *Stage {
	return &Stage{windows: newWindows(), waiting: map[string]chan closed{}, targets: map[string]Target{}}
}

// Intercept applies tx (a transaction from the slot, in stream order) to
// the open windows and returns it with the rows of any chunk it closes
// appended. Call handedOver once the returned transaction is with the
// dispatcher (its events evaluated with Evaluate and taken by Dispatch, so
// that its end LSN settles only with them); transactions must be
// intercepted in stream order. handedOver never blocks.
func (s *Stage) Intercept(tx cdc.Transaction) (out cdc.Transaction, handedOver func()) {
	s.mu.Lock()
	tx, done := s.windows.process(tx)
	s.mu.Unlock()
	if len(done) == 0 {
		return tx, func() {}
	}
	return tx, func() {
		for _, c := range done {
			s.mu.Lock()
			ch := s.waiting[c.token]
			delete(s.waiting, c.token)
			s.mu.Unlock()
			if ch != nil {
				ch <- c // buffered, one send per token: the runner may have given up waiting
			}
		}
	}
}

// Settled records that everything up to lsn is settled; the slot source's
// settle.Tracker calls it beside the reader's Ack, with the tracker's lock
// held. It takes only the stage's own (leaf) lock, closes channels and
// never blocks.
func (s *Stage) Settled(lsn cdc.LSN) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if lsn <= s.settled {
		return
	}
	s.settled = lsn
	kept := s.settleWaiters[:0]
	for _, w := range s.settleWaiters {
		if w.lsn <= lsn {
			w.at = now
			close(w.done)
		} else {
			kept = append(kept, w)
		}
	}
	clear(s.settleWaiters[len(kept):])
	s.settleWaiters = kept
}

// watch returns a waiter closed once the settled position reaches lsn (at
// once when it has).
func (s *Stage) watch(lsn cdc.LSN) *settleWaiter {
	w := &settleWaiter{lsn: lsn, done: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	if lsn <= s.settled {
		w.at = time.Now()
		close(w.done)
		return w
	}
	s.settleWaiters = append(s.settleWaiters, w)
	return w
}

// openWindow registers a chunk's window before its low watermark is
// written; the returned channel receives the window's outcome once its
// high watermark went through Apply.
func (s *Stage) openWindow(w *window) <-chan closed {
	ch := make(chan closed, 1)
	s.mu.Lock()
	s.windows.add(w)
	s.waiting[w.token] = ch
	s.mu.Unlock()
	return ch
}

// setRows gives an open window its chunk and the chunk's snapshot.
func (s *Stage) setRows(token string, rows []cdc.Change, snap snapshot) error {
	s.mu.Lock()
	ok := s.windows.setRows(token, rows, snap)
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("backfill chunk %s has no open window", token)
	}
	return nil
}

// abandon forgets a window whose runner gave up on it.
func (s *Stage) abandon(token string) {
	s.mu.Lock()
	s.windows.remove(token)
	delete(s.waiting, token)
	s.mu.Unlock()
}

// setTarget registers (or with ok false forgets) a running backfill's
// target.
func (s *Stage) setTarget(id string, t Target, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok {
		s.targets[id] = t
	} else {
		delete(s.targets, id)
	}
}

// Evaluate wraps a change evaluator: events of read rows get the ids of
// their backfill (event.NewReadID over its seed, the row's primary key and
// the rule), only the backfill's event if it named one, and its endpoint
// if it named one. Other changes go to evaluate unchanged.
func (s *Stage) Evaluate(evaluate func(*cdc.Change, []event.Event) ([]event.Event, []event.Failure)) func(*cdc.Change, []event.Event) ([]event.Event, []event.Failure) {
	return func(c *cdc.Change, out []event.Event) ([]event.Event, []event.Failure) {
		if c.Op != cdc.OpRead {
			return evaluate(c, out)
		}
		s.mu.Lock()
		t, ok := s.targets[c.Backfill]
		s.mu.Unlock()
		n := len(out)
		out, failures := evaluate(c, out)
		if !ok {
			// A read row outlives its backfill only through a bug: keep
			// its events rather than drop them, under the backfill's id.
			t = Target{IDSeed: c.Backfill}
		}
		key, _ := rowKey(c.New, c.Key)
		kept := out[:n]
		for _, ev := range out[n:] {
			if t.Event != "" && ev.Type != t.Event {
				continue
			}
			ev.ID = event.NewReadID(t.IDSeed, []byte(key), ev.Type)
			ev.Endpoint = t.EndpointID
			kept = append(kept, ev)
		}
		fs := failures[:0]
		for _, f := range failures {
			if t.Event != "" && f.Rule != t.Event {
				continue
			}
			// A replay sends the event as this backfill would have.
			f.EventID, f.Endpoint = event.NewReadID(t.IDSeed, []byte(key), f.EventType), t.EndpointID
			fs = append(fs, f)
		}
		return kept, fs
	}
}
