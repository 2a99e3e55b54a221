package backfill

import (
	"testing"
	"time"
)

// TestTokenBucketCapsEveryWindow: however the takes are spaced (steady,
// after a long stall, in bursts), the rows read in any one-second window
// never exceed rate + burst.
func TestTokenBucketCapsEveryWindow(t *testing.T) {
	const rate = 1000
	burst := rateBurst(rate)
	start := time.Unix(0, 0)
	b := newTokenBucket(rate, burst, start)
	now := start
	var reads []time.Time // one entry per row, at the time its read starts
	read := func(n int) {
		now = now.Add(b.take(n, now))
		for range n {
			reads = append(reads, now)
		}
	}
	for range 100 {
		read(burst)
	}
	now = now.Add(8 * time.Second) // a stall: SIGSTOP, a lock, a slow endpoint
	for range 200 {
		read(burst)
	}
	now = now.Add(1500 * time.Millisecond)
	for range 50 {
		read(1)
		read(burst)
	}
	j := 0
	for i := range reads {
		for reads[i].Sub(reads[j]) >= time.Second {
			j++
		}
		if n := i - j + 1; n > rate+burst {
			t.Fatalf("%d rows read in the second before %v, want at most %d", n, reads[i].Sub(start), rate+burst)
		}
	}
	// And it is not slower than the rate: 300 chunks and 50 single rows
	// after 9.5 s of stalls take about that long at 1000/s.
	if busy := now.Sub(start) - 9500*time.Millisecond; busy > time.Duration(float64(len(reads))/rate*float64(time.Second))+time.Second {
		t.Errorf("%d rows took %v of reading time at %d/s", len(reads), busy, rate)
	}
}
