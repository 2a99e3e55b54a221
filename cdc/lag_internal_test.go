package cdc

import (
	"testing"
	"time"
)

func TestUnconfirmedCommits(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	var u unconfirmedCommits
	if !u.oldest().IsZero() {
		t.Fatal("an empty queue has an oldest commit")
	}
	for i := 1; i <= 5; i++ {
		u.push(LSN(i*100), base.Add(time.Duration(i)*time.Second))
	}
	u.push(300, base.Add(time.Hour)) // already covered: ignored
	if got := u.oldest(); !got.Equal(base.Add(time.Second)) || u.len() != 5 {
		t.Fatalf("oldest %v, %d pending", got, u.len())
	}
	u.drop(250) // settles the first two
	if got := u.oldest(); !got.Equal(base.Add(3*time.Second)) || u.len() != 3 {
		t.Fatalf("after drop(250): oldest %v, %d pending", got, u.len())
	}
	u.drop(500)
	if !u.oldest().IsZero() || u.len() != 0 {
		t.Fatalf("after drop(500): oldest %v, %d pending", u.oldest(), u.len())
	}
	// Pushing and dropping for long keeps the slice compact.
	for i := 0; i < 10*maxUnconfirmedTracked; i++ {
		u.push(LSN(1000+i), base)
		u.drop(LSN(1000 + i - 10))
	}
	if u.len() != 10 || cap(u.q) > 4*maxUnconfirmedTracked {
		t.Fatalf("steady state: %d pending, capacity %d", u.len(), cap(u.q))
	}
}

// TestUnconfirmedCommitsBounded: beyond the bound, new commits merge into
// the newest kept; the oldest stays exact and the merged entry settles
// only with the last transaction merged into it.
func TestUnconfirmedCommitsBounded(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	var u unconfirmedCommits
	n := maxUnconfirmedTracked + 100
	for i := 1; i <= n; i++ {
		u.push(LSN(i), base.Add(time.Duration(i)*time.Millisecond))
	}
	if u.len() != maxUnconfirmedTracked || !u.oldest().Equal(base.Add(time.Millisecond)) {
		t.Fatalf("%d kept, oldest %v", u.len(), u.oldest())
	}
	u.drop(LSN(maxUnconfirmedTracked - 1))
	last := base.Add(time.Duration(maxUnconfirmedTracked) * time.Millisecond)
	if u.len() != 1 || !u.oldest().Equal(last) {
		t.Fatalf("after settling all but the merged entry: %d kept, oldest %v, want %v", u.len(), u.oldest(), last)
	}
	u.drop(LSN(n - 1))
	if u.len() != 1 {
		t.Fatal("the merged entry settled before its last transaction")
	}
	u.drop(LSN(n))
	if u.len() != 0 {
		t.Fatal("the merged entry did not settle with its last transaction")
	}
}
