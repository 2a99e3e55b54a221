package backfill

import (
	"testing"
	"time"
)

func TestChunkSizer(t *testing.T) {
	t.Parallel()
	c := newChunkSizer(0, 0)
	if _, ok := c.expected(100); ok {
		t.Error("a sizer that timed no chunk claims to know how long one takes")
	}
	if c.size != firstChunkSize {
		t.Fatalf("starts at %d, want %d", c.size, firstChunkSize)
	}
	c.settled(500, 100*time.Millisecond) // 5,000 rows/s
	fit := int(5000 * chunkTarget.Seconds())
	if c.size != fit {
		t.Errorf("after a slow chunk: %d, want %d (what 5,000 rows/s deliver in %s)", c.size, fit, chunkTarget)
	}
	if d, ok := c.expected(100); !ok || d != 20*time.Millisecond {
		t.Errorf("100 rows are expected to take %s (%v), want 20ms", d, ok)
	}
	c.settled(fit, time.Millisecond) // very fast: grows, at most double
	if c.size != 2*fit {
		t.Errorf("after a fast chunk: %d, want %d (doubling)", c.size, 2*fit)
	}
	for i := 0; i < 10; i++ {
		c.settled(c.size, time.Millisecond)
	}
	if c.size != DefaultChunkSize {
		t.Errorf("grew to %d, want capped at %d", c.size, DefaultChunkSize)
	}
	c.settled(500, time.Hour)
	if c.size != minChunkSize {
		t.Errorf("after a very slow chunk: %d, want the minimum %d", c.size, minChunkSize)
	}
	if r := newChunkSizer(5000, 400); r.size != 20 {
		t.Errorf("with rate 400/s: %d, want 20 (its burst, a twentieth of a second)", r.size)
	}
	if r := newChunkSizer(10, 0); r.size != 10 {
		t.Errorf("chunk size 10: %d", r.size)
	}
	r := newChunkSizer(10, 0)
	r.settled(10, time.Hour)
	if r.size != 10 {
		t.Errorf("a chunk size below the minimum stays: %d", r.size)
	}
}
