package admin

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Failed-authentication backoff, per client address, shared by every
// route that takes a token (the console login, /v1 bearer tokens): after
// backoffFree failures, each further attempt must wait twice as long as
// the last, from backoffFirst up to backoffMax; backoffForget without a
// failure forgets the address. A success does not reset the count: a
// client holding one valid token could otherwise guess others freely.
const (
	backoffFree    = 3
	backoffFirst   = time.Second
	backoffMax     = 5 * time.Minute
	backoffForget  = 15 * time.Minute
	backoffTracked = 10000
)

// Route labels of the backoff metrics.
const (
	RouteConsole = "console"
	RouteAPI     = "api"
)

// AuthBackoff slows repeated failed authentications from one client
// address. It is a prometheus.Collector of walhook_auth_failures_total
// and walhook_auth_throttled_total, by route.
type AuthBackoff struct {
	mu        sync.Mutex
	byAddr    map[string]*authFailures
	now       func() time.Time
	failures  *prometheus.CounterVec
	throttled *prometheus.CounterVec
}

type authFailures struct {
	n     int
	last  time.Time
	until time.Time // no attempt before this
}

var _ prometheus.Collector = (*AuthBackoff)(nil)

// NewAuthBackoff returns an empty backoff; now is time.Now outside tests.
func NewAuthBackoff(now func() time.Time) *AuthBackoff {
	return &AuthBackoff{
		byAddr: map[string]*authFailures{},
		now:    now,
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walhook_auth_failures_total", Help: "Wrong or unknown tokens presented, by route (console login or api).",
		}, []string{"route"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walhook_auth_throttled_total", Help: "Authentication attempts refused with 429 because their address failed too often, by route.",
		}, []string{"route"}),
	}
}

// Describe implements prometheus.Collector.
func (b *AuthBackoff) Describe(ch chan<- *prometheus.Desc) {
	b.failures.Describe(ch)
	b.throttled.Describe(ch)
}

// Collect implements prometheus.Collector.
func (b *AuthBackoff) Collect(ch chan<- prometheus.Metric) {
	b.failures.Collect(ch)
	b.throttled.Collect(ch)
}

// Wait returns how long addr must still wait before presenting a token
// on route; 0 when it may try now. A positive answer is counted as
// throttled.
func (b *AuthBackoff) Wait(addr, route string) time.Duration {
	now := b.now()
	b.mu.Lock()
	f, ok := b.byAddr[addr]
	var wait time.Duration
	if ok && now.Before(f.until) {
		wait = f.until.Sub(now)
	}
	b.mu.Unlock()
	if wait > 0 {
		b.throttled.WithLabelValues(route).Inc()
	}
	return wait
}

// Failed records a wrong token from addr on route.
func (b *AuthBackoff) Failed(addr, route string) {
	b.failures.WithLabelValues(route).Inc()
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	f, ok := b.byAddr[addr]
	if !ok || now.Sub(f.last) > backoffForget {
		if len(b.byAddr) >= backoffTracked {
			b.pruneLocked(now)
		}
		f = &authFailures{}
		b.byAddr[addr] = f
	}
	f.n++
	f.last = now
	if f.n >= backoffFree {
		wait := backoffFirst << min(f.n-backoffFree, 20)
		f.until = now.Add(min(wait, backoffMax))
	}
}

func (b *AuthBackoff) pruneLocked(now time.Time) {
	for a, f := range b.byAddr {
		if now.Sub(f.last) > backoffForget {
			delete(b.byAddr, a)
		}
	}
}
