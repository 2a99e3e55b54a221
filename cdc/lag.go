package cdc

import "time"

// maxUnconfirmedTracked bounds the transactions unconfirmedCommits keeps
// apart; beyond it, a new one is merged into the newest kept (its commit
// time is older, so the age it reports can only be too high, never too low).
const maxUnconfirmedTracked = 4096

// unconfirmedCommits holds the end position and commit time of the
// transactions handed to the Sink and not yet acknowledged, oldest first:
// the age of the oldest is how far behind the consumer's settlement is,
// whatever the stream is doing. Reader.mu guards it.
type unconfirmedCommits struct {
	q    []pendingCommit
	head int // q[head:] are pending
}

type pendingCommit struct {
	end LSN
	at  time.Time
}

// push records a transaction handed over; ends come in increasing order,
// and one at or before the newest kept is already covered by it.
func (u *unconfirmedCommits) push(end LSN, at time.Time) {
	n := len(u.q) - u.head
	if n > 0 && end <= u.q[len(u.q)-1].end {
		return
	}
	if n >= maxUnconfirmedTracked {
		u.q[len(u.q)-1].end = end
		return
	}
	if u.head > 0 && u.head >= n { // more dead space than pending: compact
		u.q = u.q[:copy(u.q, u.q[u.head:])]
		u.head = 0
	}
	u.q = append(u.q, pendingCommit{end: end, at: at})
}

// drop forgets every transaction ending at or before acked.
func (u *unconfirmedCommits) drop(acked LSN) {
	for u.head < len(u.q) && u.q[u.head].end <= acked {
		u.head++
	}
	if u.head == len(u.q) {
		u.q, u.head = u.q[:0], 0
	}
}

// oldest is the commit time of the oldest pending transaction; zero when
// none is pending.
func (u *unconfirmedCommits) oldest() time.Time {
	if u.head == len(u.q) {
		return time.Time{}
	}
	return u.q[u.head].at
}

// len is the number of pending entries (merged ones count once).
func (u *unconfirmedCommits) len() int { return len(u.q) - u.head }

// handedOver records that the transaction ending at end, committed at at,
// is in the Sink's hands (Run calls it just before Apply).
func (r *Reader) handedOver(end LSN, at time.Time) {
	r.mu.Lock()
	r.unconfirmed.drop(r.acked)
	r.unconfirmed.push(end, at)
	r.mu.Unlock()
}

// OldestUnconfirmed returns the commit time of the oldest transaction
// handed to the Sink and not yet acknowledged with Ack (zero when every
// transaction handed over is acknowledged). It keeps its value while the
// reader is disconnected: those transactions are still not confirmed. Safe
// for concurrent use.
func (r *Reader) OldestUnconfirmed() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unconfirmed.drop(r.acked)
	return r.unconfirmed.oldest()
}
