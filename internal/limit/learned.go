package limit

import (
	"math"
	"time"
)

// An endpoint that answers 429 limits requests per second, which no
// concurrency limit can express: a fast endpoint takes thousands of
// requests a second through one connection. So the Gate learns a rate too.
// On a 429 it paces the endpoint at 90% of what it accepted over
// the last second, then lets the pace grow 5% a second; once it has grown
// twentyfold (a minute without refusal) it is dropped.
const (
	learnedShare  = 0.9
	learnedGrowth = 1.05 // per second
	learnedSpan   = 20   // dropped once this many times its starting rate
	okSlot        = 100 * time.Millisecond
	okSlots       = 10 // one second of accepted-request counts
)

// learnedRate is the pace a Gate learned from refusals. The Gate's mutex
// guards it.
type learnedRate struct {
	perSecond float64   // starting rate; 0: none
	since     time.Time // when it was learned
	pacer     pacer

	slot [okSlots]struct {
		id int64 // which okSlot of time the count is for
		n  int
	}
}

// accepted counts an accepted request at now.
func (l *learnedRate) accepted(now time.Time) {
	id := now.UnixNano() / int64(okSlot)
	s := &l.slot[id%okSlots]
	if s.id != id {
		s.id, s.n = id, 0
	}
	s.n++
}

// acceptedLastSecond is the number of requests accepted in the last second.
func (l *learnedRate) acceptedLastSecond(now time.Time) int {
	id := now.UnixNano() / int64(okSlot)
	n := 0
	for _, s := range l.slot {
		if s.id > id-okSlots && s.id <= id {
			n += s.n
		}
	}
	return n
}

// refused learns a rate from a refusal at now, and reports whether it did.
func (l *learnedRate) refused(now time.Time) bool {
	cur := l.current(now)
	if cur > 0 && now.Sub(l.since) < time.Second {
		return false // the refusals of one burst teach once
	}
	r := float64(l.acceptedLastSecond(now))
	if cur > 0 {
		r = math.Min(r, cur)
	}
	l.perSecond, l.since = math.Max(1, learnedShare*r), now
	return true
}

// follow adopts a rate a peer learned (perSecond, since) when it is lower
// now than the rate this one paces at (or it paces at none), and reports
// whether it did. A peer's rate grows and is dropped like one learned here.
func (l *learnedRate) follow(now time.Time, perSecond float64, since time.Time) bool {
	if perSecond <= 0 {
		return false
	}
	peer := learnedRate{perSecond: perSecond, since: since}
	r := peer.current(now)
	if r == 0 {
		return false // grown past its span: dropped
	}
	if cur := l.current(now); cur > 0 && cur <= r {
		return false
	}
	l.perSecond, l.since = perSecond, since
	return true
}

// current is the learned rate at now; 0 when there is none.
func (l *learnedRate) current(now time.Time) float64 {
	if l.perSecond == 0 {
		return 0
	}
	r := l.perSecond * math.Pow(learnedGrowth, now.Sub(l.since).Seconds())
	if r > learnedSpan*l.perSecond {
		l.perSecond = 0
		return 0
	}
	return r
}

// reserve takes a token at the learned rate and returns the wait for it.
func (l *learnedRate) reserve(now time.Time) time.Duration {
	r := l.current(now)
	if r == 0 {
		return 0
	}
	return l.pacer.reserve(now, r)
}
