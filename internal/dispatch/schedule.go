package dispatch

import (
	"math/rand/v2"
	"time"
)

// maxRetryAfter bounds how far a Retry-After header may push an attempt.
const maxRetryAfter = 24 * time.Hour

// nextDelay returns how long to wait before the attempt after attempt
// number n (1-based) failed, or false when the schedule is exhausted.
//
// The delay is the schedule's, with ±10% jitter so that many deliveries
// failing together do not retry together. A Retry-After from the endpoint
// is honoured when it asks for longer, capped at maxRetryAfter: walhook never
// retries sooner than the schedule says.
func nextDelay(schedule []time.Duration, n int, retryAfter time.Duration) (time.Duration, bool) {
	if n < 1 || n > len(schedule) {
		return 0, false
	}
	d := jitter(schedule[n-1])
	if retryAfter > maxRetryAfter {
		retryAfter = maxRetryAfter
	}
	if retryAfter > d {
		d = retryAfter
	}
	return d, true
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	f := 0.9 + 0.2*rand.Float64()
	return time.Duration(float64(d) * f)
}
