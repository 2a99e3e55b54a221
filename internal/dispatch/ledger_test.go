package dispatch

import "testing"

func TestLedgerKeyGoesToMemoryUntilAWriteOfItStarts(t *testing.T) {
	l := newLedger()
	if !l.admit("a") || !l.admit("a") {
		t.Fatal("a key with nothing stored is refused memory")
	}
	if !l.beginAttempt("a") {
		t.Fatal("first attempt refused while nothing of the key is stored")
	}
	// The first attempt failed: it leaves memory for the store.
	l.divert("a")
	if l.admit("a") {
		t.Fatal("a new delivery of a key on its way to the store went to memory")
	}
	if l.beginAttempt("a") {
		t.Fatal("the delivery queued behind a failed one was attempted before it")
	}
	if !l.busy("a") {
		t.Fatal("a stored delivery may be retried while its key has writes in progress")
	}
	// The three writes commit.
	l.stored("a")
	l.stored("a")
	l.stored("a")
	if l.busy("a") {
		t.Fatal("key still busy once every write committed and nothing is in memory")
	}
	if l.admit("a") {
		t.Fatal("key released before a sweep found nothing pending")
	}
	l.stored("a") // the admit above counted a fourth write
	if l.blockedKeys() != 1 {
		t.Fatalf("%d blocked keys, want 1", l.blockedKeys())
	}
}

func TestLedgerReleaseSkipsKeysWrittenDuringTheSweep(t *testing.T) {
	l := newLedger()
	l.block([]string{"a", "b", "c"})
	c := l.sweepCandidates(10)
	if len(c) != 3 {
		t.Fatalf("%d candidates, want 3", len(c))
	}
	// While the store is asked, a delivery of b goes to the store.
	if l.admit("b") {
		t.Fatal("blocked key admitted to memory")
	}
	l.release(c, map[string]bool{"c": true})
	if !l.admit("a") {
		t.Fatal("a has nothing pending and no write since the sweep: it should be released")
	}
	if l.admit("b") {
		t.Fatal("b was released although a write of it started during the sweep")
	}
	if l.admit("c") {
		t.Fatal("c was released although the store has it pending")
	}
	// Clean up the counted writes; b is then a candidate again.
	l.stored("b")
	l.stored("b")
	l.stored("c")
	c = l.sweepCandidates(10)
	if _, ok := c["b"]; !ok {
		t.Fatal("b not a candidate once its writes ended")
	}
}

func TestLedgerForgetsIdleKeys(t *testing.T) {
	l := newLedger()
	for range 3 {
		l.admit("k")
	}
	for range 3 {
		if !l.beginAttempt("k") {
			t.Fatal("attempt refused")
		}
		l.finished("k")
	}
	if n := len(l.keys); n != 0 {
		t.Fatalf("ledger keeps %d entries after every delivery was accepted", n)
	}
}

// TestLedgerTakeDivertedBlocksTheKeyAsItTakes: pacing takes a queued job
// for the store and the ledger counts it as on its way there in the same
// step, so the lane's worker, taking the next job of the key, is told to
// divert it too rather than attempt it ahead of the first.
func TestLedgerTakeDivertedBlocksTheKeyAsItTakes(t *testing.T) {
	l := newLedger()
	q := make(chan *job, 4)
	for range 2 {
		if !l.admit("a") {
			t.Fatal("a key with nothing stored is refused memory")
		}
		q <- &job{key: "a"}
	}
	first := l.takeDiverted(q)
	if first == nil || first.key != "a" {
		t.Fatalf("took %v, want the head of the queue", first)
	}
	next := <-q
	if l.beginAttempt(next.key) {
		t.Fatal("the job behind one taken for the store was attempted ahead of it")
	}
	if got := l.takeDiverted(q); got != nil {
		t.Fatalf("took %v from an empty queue", got)
	}
	close(q)
	if got := l.takeDiverted(q); got != nil {
		t.Fatalf("took %v from a closed queue", got)
	}
	l.stored("a")
	l.stored("a")
	if l.busy("a") {
		t.Fatal("key busy once both writes ended")
	}
}

// TestLedgerCommittedSince: a write of a key that ends after the retry
// loop read the commit count is reported, so the loop asks the store who
// is first of the key before attempting what its claim returned.
func TestLedgerCommittedSince(t *testing.T) {
	l := newLedger()
	if !l.admit("a") {
		t.Fatal("a key with nothing stored is refused memory")
	}
	l.divert("a") // its first attempt failed: on its way to the store
	since := l.commitCount()
	if l.committedSince("a", since) || l.committedSince("b", since) {
		t.Fatal("no write ended yet")
	}
	l.stored("a")
	if !l.committedSince("a", since) {
		t.Fatal("a write of the key ended after the count was read, and was not reported")
	}
	if l.committedSince("a", l.commitCount()) {
		t.Fatal("a write that ended before the count was read is reported")
	}
}
