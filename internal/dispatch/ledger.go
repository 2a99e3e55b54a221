package dispatch

import "sync"

// ledger owns, for one endpoint with ordering = "key", where each key's
// deliveries are: in memory (queued in a lane or being attempted), on their
// way to the store (handed to the persister, not yet committed), or in the
// store (pending there, as far as this process knows).
//
// The rules it keeps (docs/architecture.md):
//   - a key with deliveries in the store or on their way there is blocked:
//     its new deliveries go to the store behind them, never to memory;
//   - a stored delivery of a key is attempted only when nothing of its key
//     is in memory or on its way to the store (busy);
//   - a key is released (back to memory) only when the store has nothing
//     pending for it and no write of it started since the store was asked.
//
// Its mutex is a leaf: every method does a few map operations and returns.
// Nothing blocks, sends on a channel or does I/O while holding it, so the
// persister can report a commit (stored) from any goroutine without waiting
// on anyone but the ledger itself.
type ledger struct {
	mu   sync.Mutex
	keys map[string]*keyState
	gen  uint64
	// commits counts the writes that ended (stored), for committedSince.
	commits uint64
}

type keyState struct {
	inMemory  int    // deliveries queued in a lane or being attempted
	storing   int    // store writes handed to the persister, not yet committed
	stored    uint64 // generation of the last write; 0 when none is pending
	committed uint64 // the commits count at the key's last write that ended
}

func newLedger() *ledger { return &ledger{keys: map[string]*keyState{}} }

func (l *ledger) state(key string) *keyState {
	s := l.keys[key]
	if s == nil {
		s = &keyState{}
		l.keys[key] = s
	}
	return s
}

// forget drops a key's entry once nothing is known about it.
func (l *ledger) forget(key string, s *keyState) {
	if s.inMemory == 0 && s.storing == 0 && s.stored == 0 {
		delete(l.keys, key)
	}
}

func (s *keyState) blocked() bool { return s.stored != 0 || s.storing > 0 }

// toStoreLocked records a write of key on its way to the store.
func (l *ledger) toStoreLocked(s *keyState) {
	l.gen++
	s.storing++
	s.stored = l.gen
}

// admit decides where a new delivery of key goes: true means a lane
// (counted in memory), false means the store (counted on its way there;
// the caller must hand it to the persister, which calls stored).
func (l *ledger) admit(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.state(key)
	if s.blocked() {
		l.toStoreLocked(s)
		return false
	}
	s.inMemory++
	return true
}

// divert moves a delivery of key from memory to the store: the caller
// hands it to the persister, which calls stored.
func (l *ledger) divert(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.divertLocked(l.state(key))
}

func (l *ledger) divertLocked(s *keyState) {
	s.inMemory--
	l.toStoreLocked(s)
}

// takeDiverted takes the job at the head of q, if there is one, and
// counts it as on its way to the store (the caller hands it to the
// persister, which calls stored) in one step under the ledger's lock. A
// lane's worker asks beginAttempt about the job behind it under the same
// lock, so it finds the key blocked; were the job taken first and diverted
// after, the worker could attempt the next delivery of its key in between.
// The receive never waits (select with default), so the lock stays a leaf.
func (l *ledger) takeDiverted(q chan *job) *job {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case j := <-q:
		if j != nil {
			l.divertLocked(l.state(j.key))
		}
		return j
	default:
		return nil
	}
}

// beginAttempt is asked by a lane before a first attempt: true means
// go ahead; false means an earlier delivery of the key went to the store
// meanwhile, so this one was diverted and must be handed to the persister.
func (l *ledger) beginAttempt(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.state(key); s.blocked() {
		l.divertLocked(s)
		return false
	}
	return true
}

// finished notes that a delivery of key left memory without going to the
// store (accepted, or dropped at shutdown).
func (l *ledger) finished(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.state(key)
	s.inMemory--
	l.forget(key, s)
}

// stored notes that a write of key handed to the persister has ended:
// committed, or abandoned at shutdown. The key stays blocked until a sweep
// finds nothing pending for it.
func (l *ledger) stored(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.state(key)
	s.storing--
	l.commits++
	s.committed = l.commits
	l.forget(key, s)
}

// commitCount is how many writes have ended so far; the retry loop reads
// it before it claims (see committedSince).
func (l *ledger) commitCount() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.commits
}

// committedSince reports whether a write of key ended after commitCount
// returned since. A claim whose snapshot was taken before that write
// committed may have handed out a later delivery of the key as its first:
// the caller asks the store again (Store.FirstOfKey) before attempting it.
func (l *ledger) committedSince(key string, since uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.keys[key]
	return s != nil && s.committed > since
}

// busy reports whether a stored delivery of key must wait: something of
// its key is in memory or on its way to the store.
func (l *ledger) busy(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.keys[key]
	return s != nil && (s.inMemory > 0 || s.storing > 0)
}

// block marks keys as having deliveries pending in the store (found there
// at start-up).
func (l *ledger) block(keys []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		l.gen++
		l.state(k).stored = l.gen
	}
}

// sweepCandidates returns up to limit blocked keys with no write in
// progress, with the generation each was seen at.
func (l *ledger) sweepCandidates(limit int) map[string]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]uint64{}
	for k, s := range l.keys {
		if s.stored != 0 && s.storing == 0 {
			out[k] = s.stored
			if len(out) == limit {
				break
			}
		}
	}
	return out
}

// release unblocks the candidates the store has nothing pending for,
// unless a write of the key started after the candidate was taken.
func (l *ledger) release(candidates map[string]uint64, pending map[string]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, gen := range candidates {
		s := l.keys[k]
		if s == nil || pending[k] || s.stored != gen || s.storing != 0 {
			continue
		}
		s.stored = 0
		l.forget(k, s)
	}
}

// blockedKeys is how many keys are blocked (for tests and metrics).
func (l *ledger) blockedKeys() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.keys {
		if s.blocked() {
			n++
		}
	}
	return n
}
