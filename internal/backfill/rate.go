package backfill

import "time"

// tokenBucket caps the rows a backfill reads over any window of time: at
// most burst + rate×window rows in a window of any length. The bucket
// starts full and holds at most burst tokens, so neither a stall (a paused
// process, a slow endpoint, a lock) nor a restart lets the runner catch up
// in a burst, as an average since the start would.
type tokenBucket struct {
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

func newTokenBucket(rate, burst int, now time.Time) *tokenBucket {
	return &tokenBucket{rate: float64(rate), burst: float64(burst), tokens: float64(burst), at: now}
}

// take takes n tokens (at most burst are ever asked for at once) and
// returns how long to wait before reading them: zero when they were
// there.
func (b *tokenBucket) take(n int, now time.Time) time.Duration {
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens = min(b.burst, b.tokens+elapsed.Seconds()*b.rate)
		b.at = now
	}
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	// The deficit is paid back by the time the read may start; tokens
	// stays negative until then, so later takes wait their turn too.
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// rateBurst is the burst a rate allows: a twentieth of a second of it
// (at least one row), which also bounds the chunk size, so that over any
// second at most 5% more than the rate is read.
func rateBurst(rate int) int { return max(1, rate/20) }
