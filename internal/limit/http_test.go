package limit_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/limit"
	"github.com/walhook/walhook/internal/sender"
)

// drive runs workers that each take a permit from g, POST to url and
// report the result, until stop returns true. It returns how many
// attempts ended with each status.
func drive(t *testing.T, g *limit.Gate, url string, workers int, stop func() bool) map[int]int {
	t.Helper()
	client := sender.New(sender.Options{MaxIdleConnsPerHost: workers})
	defer client.Close()
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		wg       sync.WaitGroup
	)
	ctx := context.Background()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop() {
				p, err := g.Acquire(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				res := client.Send(ctx, sender.Request{URL: url, Body: []byte(`{}`), Timeout: 5 * time.Second})
				p.Done(res)
				mu.Lock()
				statuses[res.StatusCode]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return statuses
}

// A slow endpoint that does not queue (each request takes 50 ms however
// many arrive) lets the limit grow far past its start.
func TestGateGrowsOnASlowEndpoint(t *testing.T) {
	var inflight, peak atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(50 * time.Millisecond)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	g := limit.NewGate(limit.GateOptions{})
	var sent atomic.Int64
	statuses := drive(t, g, srv.URL, limit.DefaultCeiling, func() bool { return sent.Add(1) > 4000 })
	if statuses[http.StatusNoContent] < 3000 {
		t.Fatalf("statuses %v", statuses)
	}
	if g.Limit() < 4*limit.DefaultInitial || peak.Load() < 4*limit.DefaultInitial {
		t.Fatalf("limit %d, peak concurrency at the endpoint %d: want both at least %d", g.Limit(), peak.Load(), 4*limit.DefaultInitial)
	}
	t.Logf("limit %d, peak concurrency %d", g.Limit(), peak.Load())
}

// An endpoint that takes perSecond requests in each second of its clock
// and answers 429 beyond them, with or without a Retry-After saying when
// its window resets.
type rateLimited struct {
	perSecond  int
	retryAfter bool

	mu     sync.Mutex
	window int64
	n      int
	ok     int
	denied int
}

func (s *rateLimited) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now().Unix()
	s.mu.Lock()
	if now != s.window {
		s.window, s.n = now, 0
	}
	s.n++
	allowed := s.n <= s.perSecond
	if allowed {
		s.ok++
	} else {
		s.denied++
	}
	s.mu.Unlock()
	if !allowed {
		if s.retryAfter {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// counts returns and resets the accepted and refused counts.
func (s *rateLimited) counts() (ok, denied int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok, denied, s.ok, s.denied = s.ok, s.denied, 0, 0
	return ok, denied
}

// After the first refusals, a fast endpoint limited to 200 requests/s is
// sent about what it takes: few 429s, and most of its 200/s used.
func TestGateKeepsUnderAnEndpointsRateLimit(t *testing.T) {
	for _, retryAfter := range []bool{true, false} {
		name := "without Retry-After"
		if retryAfter {
			name = "with Retry-After"
		}
		t.Run(name, func(t *testing.T) {
			ep := &rateLimited{perSecond: 200, retryAfter: retryAfter}
			srv := httptest.NewServer(ep)
			defer srv.Close()
			g := limit.NewGate(limit.GateOptions{})
			learn := time.Now().Add(2 * time.Second)
			end := learn.Add(3 * time.Second)
			var learned atomic.Bool
			drive(t, g, srv.URL, 32, func() bool {
				now := time.Now()
				if now.After(learn) && learned.CompareAndSwap(false, true) {
					ep.counts() // the first two seconds are for learning
				}
				return now.After(end)
			})
			ok, denied := ep.counts()
			share := float64(denied) / float64(ok+denied)
			t.Logf("after learning: %d accepted, %d refused (%.1f%%); learned rate %.0f/s, limit %d", ok, denied, 100*share, g.LearnedRate(), g.Limit())
			if share >= 0.10 {
				t.Errorf("%.1f%% of requests refused after learning, want under 10%%", 100*share)
			}
			if ok < 150 {
				t.Errorf("only %d accepted in 3s by an endpoint taking 200/s", ok)
			}
		})
	}
}
