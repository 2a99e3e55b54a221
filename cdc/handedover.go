package cdc

import "fmt"

// handedOver is what a Reader handed to its Sink: the last transaction,
// and, while its pieces are still coming, how many of its changes. After
// a reconnection the server sends again every transaction not yet
// acknowledged, an interrupted one from its start; trim drops what the
// Sink already has, so no piece is handed over twice in one process.
type handedOver struct {
	xid    uint32
	commit LSN  // CommitLSN of the last transaction handed over (or skipped)
	open   bool // its final piece has not been handed over yet
	// next is the number of the open transaction's changes handed over.
	next int
	// skipped: the open transaction was settled before and is dropped
	// piece by piece.
	skipped bool
	// resent counts the interrupted transactions the server sent again.
	resent int
}

// trim removes from tx what was handed over already and reports whether
// anything is left to hand over. acked is the acknowledged position.
func (h *handedOver) trim(tx *Transaction, acked LSN) (bool, error) {
	if h.open && h.skipped && tx.CommitLSN != h.commit {
		h.open = false // the settled transaction was not sent again
	}
	if h.open {
		if tx.CommitLSN != h.commit {
			return false, fmt.Errorf("transaction %d committed at %s was handed over in part (%d changes), but the stream went on with the transaction committed at %s",
				h.xid, h.commit, h.next, tx.CommitLSN)
		}
		if h.skipped {
			h.open = tx.More
			return false, nil
		}
		// Sent again from its start after a reconnection, or the next
		// piece. A piece ends right after a change, so a message at the
		// position of the first change not handed over was not handed
		// over either.
		if tx.Part == 0 && h.next > 0 {
			h.resent++
		}
		tx.Changes = dropChanges(tx.Changes, h.next)
		tx.Messages = dropMessages(tx.Messages, h.next)
		return !tx.More || len(tx.Changes) > 0 || len(tx.Messages) > 0, nil
	}
	if h.commit != 0 && tx.CommitLSN <= h.commit {
		return false, nil // handed over before a reconnection
	}
	settled := tx.CommitLSN < acked
	if !tx.More {
		settled = tx.EndLSN <= acked
	}
	if settled {
		// Settled before this process read it (or before a
		// reconnection): drop it, every piece of it.
		h.xid, h.commit, h.open, h.skipped, h.next = tx.XID, tx.CommitLSN, tx.More, true, 0
		return false, nil
	}
	return true, nil
}

// record notes that tx (after trim) was handed over.
func (h *handedOver) record(tx *Transaction) {
	if !h.open || h.commit != tx.CommitLSN {
		h.next = 0
	}
	h.xid, h.commit, h.open, h.skipped = tx.XID, tx.CommitLSN, tx.More, false
	if n := len(tx.Changes); n > 0 {
		h.next = tx.Changes[n-1].Position + 1
	}
}

// dropChanges drops the changes before position next.
func dropChanges(cs []Change, next int) []Change {
	i := 0
	for i < len(cs) && cs[i].Position < next {
		i++
	}
	return cs[i:]
}

// dropMessages drops the messages before position next.
func dropMessages(ms []Message, next int) []Message {
	i := 0
	for i < len(ms) && ms[i].Position < next {
		i++
	}
	return ms[i:]
}
