package settle

import (
	"fmt"
	"math/rand"
	"sync"
	"testing"

	"github.com/walhook/walhook/cdc"
)

func TestWatermarkWaitsForEarlierTransactions(t *testing.T) {
	var acks []cdc.LSN
	tr := NewTracker(func(l cdc.LSN) { acks = append(acks, l) })
	a := tr.Begin(100, 2)
	b := tr.Begin(200, 1)
	c := tr.Begin(300, 0)
	b.Done() // later transaction settles first: nothing may be confirmed
	if len(acks) != 0 {
		t.Fatalf("acked %v before transaction 100 settled", acks)
	}
	a.Done()
	if len(acks) != 0 {
		t.Fatalf("acked %v with one delivery of 100 outstanding", acks)
	}
	a.Done()
	if got := tr.Settled(); got != 300 {
		t.Fatalf("settled = %v, want 300 (all three done)", got)
	}
	if len(acks) != 1 || acks[0] != 300 {
		t.Fatalf("acks = %v, want one ack of 300", acks)
	}
	_ = c
	d := tr.Begin(400, 0)
	if tr.Settled() != 400 || d.End() != 400 {
		t.Fatalf("empty transaction not settled at once: %v", tr.Settled())
	}
	if tr.Outstanding() != 0 {
		t.Fatalf("outstanding = %d", tr.Outstanding())
	}
}

func TestAddKeepsTransactionOpen(t *testing.T) {
	tr := NewTracker(nil)
	a := tr.Begin(10, 1)
	a.Add(1)
	a.Done()
	if tr.Settled() != 0 {
		t.Fatal("settled with an added delivery outstanding")
	}
	a.Done()
	if tr.Settled() != 10 {
		t.Fatal("not settled after all deliveries")
	}
}

func TestDoneTooOftenPanics(t *testing.T) {
	tr := NewTracker(nil)
	a := tr.Begin(10, 1)
	a.Done()
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	a.Done()
}

// TestConcurrentSettlementNeverPassesUnsettled settles deliveries from many
// goroutines in random order and checks every ack against what was settled.
func TestConcurrentSettlementNeverPassesUnsettled(t *testing.T) {
	const n = 5000
	var mu sync.Mutex
	done := make([]bool, n)
	var last cdc.LSN
	tr := NewTracker(func(l cdc.LSN) {
		if l <= last {
			t.Errorf("ack went backwards: %v after %v", l, last)
		}
		last = l
		mu.Lock()
		defer mu.Unlock()
		for i := 0; i < int(l/10); i++ {
			if !done[i] {
				t.Errorf("acked %v but transaction %d is not settled", l, i)
			}
		}
	})
	txs := make([]*Tx, n)
	type item struct{ i int }
	var items []item
	for i := 0; i < n; i++ {
		k := rand.Intn(3)
		if k == 0 {
			mu.Lock()
			done[i] = true // settled by Begin itself, which may ack at once
			mu.Unlock()
		}
		txs[i] = tr.Begin(cdc.LSN((i+1)*10), k)
		for j := 0; j < k; j++ {
			items = append(items, item{i})
		}
	}
	rand.Shuffle(len(items), func(a, b int) { items[a], items[b] = items[b], items[a] })
	remaining := make([]int, n)
	for _, it := range items {
		remaining[it.i]++
	}
	var wg sync.WaitGroup
	ch := make(chan item)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range ch {
				mu.Lock()
				remaining[it.i]--
				if remaining[it.i] == 0 {
					done[it.i] = true
				}
				mu.Unlock()
				txs[it.i].Done()
			}
		}()
	}
	for _, it := range items {
		ch <- it
	}
	close(ch)
	wg.Wait()
	if tr.Settled() != cdc.LSN(n*10) {
		t.Fatalf("settled = %v, want %v", tr.Settled(), n*10)
	}
}

func TestStandaloneTx(t *testing.T) {
	calls := 0
	tx := NewTx(2, func() { calls++ })
	tx.Done()
	if calls != 0 {
		t.Fatal("done before both deliveries settled")
	}
	tx.Done()
	if calls != 1 {
		t.Fatalf("done called %d times", calls)
	}
	NewTx(0, func() { calls++ })
	if calls != 2 {
		t.Fatal("empty standalone Tx not done at once")
	}
}

// TestOpenHoldsWatermarkUntilClose: a transaction handed over in pieces
// blocks the watermark while its end is unknown, even when every piece
// handed over so far is settled, and settles at its end once closed.
func TestOpenHoldsWatermarkUntilClose(t *testing.T) {
	var acks []cdc.LSN
	tr := NewTracker(func(l cdc.LSN) { acks = append(acks, l) })
	before := tr.Begin(100, 1)
	open := tr.Open()
	after := tr.Begin(300, 0)
	open.Add(1) // first piece
	open.Done()
	open.Add(1) // second piece
	before.Done()
	if got := tr.Settled(); got != 100 {
		t.Fatalf("settled = %v, want 100: the open transaction holds the watermark", got)
	}
	open.Done()
	if got := tr.Settled(); got != 100 {
		t.Fatalf("settled = %v with every piece settled but the transaction not closed, want 100", got)
	}
	open.Add(1) // last piece
	open.Close(200)
	if got := tr.Settled(); got != 100 {
		t.Fatalf("settled = %v with the last piece outstanding, want 100", got)
	}
	open.Done()
	if got := tr.Settled(); got != 300 || open.End() != 200 {
		t.Fatalf("settled = %v (end %v), want 300 once the closed transaction settled", got, open.End())
	}
	if fmt.Sprint(acks) != "[0/64 0/12C]" {
		t.Fatalf("acks = %v, want 100 then 300", acks)
	}
	_ = after
}
