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
