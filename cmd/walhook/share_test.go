package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

// shareCase is one run of shareRun.
type shareCase struct {
	instances   int
	ordered     bool          // ordering = "key", the rows over 100 keys
	rows        int           // committed 100 per transaction
	concurrency int           // the endpoint's
	rate        string        // the endpoint's rate_limit; "" none
	latency     time.Duration // how long the receiver takes to answer
	// killAfter, when set, is how many rows must have arrived before
	// instance kill is sent SIGKILL.
	killAfter, kill int
	// retryAfter, when set, is the Retry-After (in seconds) of a 503 that
	// answers the first request.
	retryAfter int
}

// TestSharedDeliveryAcrossThreeInstances: three `walhook run` processes on
// one config with share = "all" deliver a backlog to a 200 ms endpoint
// (concurrency 64) completely, every row under one webhook-id, each
// instance sending at least a fifth of the deliveries (its own
// walhook_attempts_total), never more than 64 requests in flight at once
// across the three; a rate_limit holds for the three together; a SIGKILL
// of a non-leader or of the leader mid-backlog loses nothing and its
// leases are taken over; an ordered endpoint's keys arrive in commit
// order across the three; and a Retry-After one instance is answered
// pauses the endpoint for all three. Each case runs its own three
// processes, one case at a time (about 20-30 s each on 2 cores).
func TestSharedDeliveryAcrossThreeInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	t.Parallel()
	t.Run("unordered", func(t *testing.T) {
		run := shareRun(t, shareCase{instances: 3, rows: 3000, concurrency: 64, latency: 200 * time.Millisecond})
		t.Logf("3 instances delivered %d rows in %s (%.0f rows/s)", run.rows, run.took.Round(10*time.Millisecond), float64(run.rows)/run.took.Seconds())
	})
	t.Run("rate_limit", func(t *testing.T) {
		// 150/s over three is 50/s each: together no faster than 150/s.
		run := shareRun(t, shareCase{instances: 3, rows: 1500, concurrency: 64, rate: "150/s"})
		rate := run.steadyRate()
		if rate > 1.1*150 {
			t.Errorf("three instances sent %.1f requests/s to an endpoint of rate_limit 150/s", rate)
		}
		t.Logf("three instances sent %.1f requests/s to an endpoint of rate_limit 150/s (between the 10th and 90th percentile of arrivals)", rate)
	})
	t.Run("kill -9 of a non-leader", func(t *testing.T) {
		// Mid-backlog: nothing lost, a row sent again keeps its id, the
		// dead instance's leases taken over by a live one.
		shareRun(t, shareCase{instances: 3, rows: 3000, concurrency: 64, latency: 200 * time.Millisecond, killAfter: 500, kill: 2})
	})
	t.Run("kill -9 of the leader", func(t *testing.T) {
		shareRun(t, shareCase{instances: 3, rows: 3000, concurrency: 64, latency: 200 * time.Millisecond, killAfter: 500, kill: 0})
	})
	t.Run("ordered", func(t *testing.T) {
		run := shareRun(t, shareCase{instances: 3, ordered: true, rows: 2000, concurrency: 64, latency: 200 * time.Millisecond})
		t.Logf("3 instances delivered %d rows of 100 keys in order in %s", run.rows, run.took.Round(10*time.Millisecond))
	})
	t.Run("Retry-After", func(t *testing.T) {
		// The first request is answered 503 with Retry-After: 6. Its
		// instance pauses the endpoint for all three (docs/scaling.md,
		// "Limits across the cluster"): once the others have heard of it
		// (the outcome of their requests in flight, or their health
		// refresh every 2 s), no request reaches the endpoint until the
		// 6 s are over.
		const after, heard = 6 * time.Second, 2500 * time.Millisecond
		run := shareRun(t, shareCase{instances: 3, rows: 1000, concurrency: 64, latency: 200 * time.Millisecond, retryAfter: int(after / time.Second)})
		var early, during int
		var last time.Duration // of the early ones
		for _, at := range run.arrivals {
			switch since := at.Sub(run.refused); {
			case since <= 0:
			case since < heard:
				early, last = early+1, since
			case since < after-50*time.Millisecond: // 50 ms for the clocks
				during++
			}
		}
		if during > 0 {
			t.Errorf("%d requests arrived between %s and %s after the 503 with Retry-After: %d", during, heard, after, int(after/time.Second))
		}
		t.Logf("%d requests arrived within %s of the 503 (sent before their instance heard of the pause), the last %s after it; %d rows in %s",
			early, heard, last.Round(time.Millisecond), run.rows, run.took.Round(10*time.Millisecond))
	})
}

var (
	shareSpeedUp = flag.Bool("share.speedup", false, "TestSharedDeliverySpeedUp: measure one against three instances with share = \"all\"")
	shareRows    = flag.Int("share.rows", 3000, "TestSharedDeliverySpeedUp: backlog rows")
)

// TestSharedDeliverySpeedUp logs how much faster three instances with
// share = "all" deliver the same backlog (-share.rows, 3,000 by default)
// to a 200 ms endpoint than one. The endpoint's concurrency (192) is shared
// by the instances, so one instance is held by its own retry_workers (64)
// and three by the endpoint. It asserts nothing about time (the figure
// belongs in docs/scaling.md); run it on purpose:
//
//	go test -run TestSharedDeliverySpeedUp -v ./cmd/walhook/ -args -share.speedup
func TestSharedDeliverySpeedUp(t *testing.T) {
	if !*shareSpeedUp {
		t.Skip("a measurement: run with -args -share.speedup")
	}
	var took [2]time.Duration
	for i, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("instances=%d", n), func(t *testing.T) {
			run := shareRun(t, shareCase{instances: n, rows: *shareRows, concurrency: 192, latency: 200 * time.Millisecond})
			took[i] = run.took
			t.Logf("%d instance(s): %d rows in %s, %.0f rows/s", n, run.rows, run.took.Round(10*time.Millisecond), float64(run.rows)/run.took.Seconds())
		})
	}
	if took[0] > 0 && took[1] > 0 {
		t.Logf("speed-up of 3 instances over 1: %.2f×", took[0].Seconds()/took[1].Seconds())
	}
}

// sharedResult is one shareRun: rows delivered, from the first insert to
// the last row received.
type sharedResult struct {
	rows int
	took time.Duration
	// arrivals are the receiver's request times, in order.
	arrivals []time.Time
	// refused is when the 503 with Retry-After was sent (retryAfter).
	refused time.Time
}

// steadyRate is requests per second between the 10th and the 90th
// percentile of arrivals (leaving out the start and the tail).
func (r sharedResult) steadyRate() float64 {
	n := len(r.arrivals)
	lo, hi := n/10, n*9/10
	if hi <= lo {
		return 0
	}
	return float64(hi-lo) / r.arrivals[hi].Sub(r.arrivals[lo]).Seconds()
}

// shareRun starts n instances on one config with share = "all", commits
// rows (100 per transaction; with ordered, over 100 keys, on an ordered
// endpoint) and waits until every row arrived. It checks that each row
// came under one webhook-id, every signature held, and keys kept commit
// order (ordered); unordered with n > 1, that each instance made at least
// a fifth of the accepted attempts.
func shareRun(t *testing.T, c shareCase) sharedResult {
	t.Helper()
	n, ordered, rows, concurrency := c.instances, c.ordered, c.rows, c.concurrency
	if testing.Short() {
		t.Skip("process test")
	}
	s := newSink(signing.GenerateSecret(), c.latency)
	order := &keyOrder{next: s, last: map[int64]int64{}}
	var h http.Handler = s
	if ordered {
		h = order
	}
	refuse := &refuseFirst{next: h, retryAfter: c.retryAfter}
	if c.retryAfter > 0 {
		h = refuse
	}
	peak := &inFlight{next: h}
	srv := httptest.NewServer(peak)
	t.Cleanup(srv.Close)
	db := testenv.NewDB(t)
	slot := testenv.Name(t, "slot")
	var cfgs []string
	var addrs []string
	for range n {
		addr := freeAddr(t)
		cfg := writeConfig(t, db, slot, srv.URL, s.secret, adminBlock(addr))
		editConfig(t, cfg, `  shutdown_timeout = "10s"`, "  shutdown_timeout = \"10s\"\n  share = \"all\"")
		attrs := fmt.Sprintf("  concurrency = %d", concurrency)
		if c.rate != "" {
			attrs += fmt.Sprintf("\n  rate_limit = %q", c.rate)
		}
		if c.killAfter > 0 {
			// A dead instance's leases are taken over once it is silent
			// for the dead threshold (20 s) and the longest timeout.
			attrs += "\n  timeout = \"2s\""
		}
		if ordered {
			attrs += "\n  ordering = \"key\""
			editConfig(t, cfg, `  on    = ["insert"]`, "  on    = [\"insert\"]\n  key   = new.organization_id")
		}
		editConfig(t, cfg, `  events = ["*"]`, "  events = [\"*\"]\n"+attrs)
		cfgs, addrs = append(cfgs, cfg), append(addrs, addr)
	}
	daemons := []*daemon{startDaemon(t, cfgs[0])}
	waitSlot(t, db, slot)
	for _, cfg := range cfgs[1:] {
		daemons = append(daemons, startDaemon(t, cfg))
	}
	// Each instance takes its share of the endpoint's limits from the
	// instances it finds alive at a heartbeat: wait until every one has
	// beaten since the last one registered.
	testkit.Eventually(t, fmt.Sprintf("%d instances alive, each heartbeating since the last started", n), func() bool {
		ins := statusJSON(t, cfgs[0]).Instances
		var last time.Time
		for _, in := range ins {
			if in.StartedAt.After(last) {
				last = in.StartedAt
			}
		}
		for _, in := range ins {
			if in.State != "alive" || in.HeartbeatAt.Before(last) {
				return false
			}
		}
		return len(ins) == n
	})

	began := time.Now()
	var want []int64
	for len(want) < rows {
		want = append(want, insertKeyed(t, db, 100)...)
	}
	if c.killAfter > 0 {
		testkit.Eventually(t, fmt.Sprintf("%d rows received", c.killAfter), func() bool {
			return rows-len(s.missing(want)) >= c.killAfter
		})
		victim := daemons[c.kill]
		if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = victim.cmd.Wait()
		killed := time.Now()
		waitDelivered(t, s, want)
		t.Logf("every row received %s after SIGKILL of instance %d", time.Since(killed).Round(100*time.Millisecond), c.kill)
		// What it had in flight reached the receiver, but it never heard
		// back: those rows stay pending under its lease (34 s: twice the
		// timeout and 30 s) until a live instance takes them over.
		testkit.Eventually(t, "no delivery pending in the store", func() bool {
			var pending int
			if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM walhook.deliveries WHERE status = 'pending'`).Scan(&pending); err != nil {
				t.Fatal(err)
			}
			return pending == 0
		})
		t.Logf("nothing pending %s after SIGKILL (the leases would have ended after 34 s)", time.Since(killed).Round(100*time.Millisecond))
		tookOver := false
		for i, d := range daemons {
			tookOver = tookOver || (i != c.kill && strings.Contains(d.log.String(), "took over the deliveries a dead instance had claimed"))
		}
		if !tookOver {
			t.Errorf("no live instance logged taking over the killed one's deliveries")
		}
		daemons = append(daemons[:c.kill:c.kill], daemons[c.kill+1:]...)
		addrs = append(addrs[:c.kill:c.kill], addrs[c.kill+1:]...)
	}
	waitDelivered(t, s, want)
	took := time.Since(began)

	if repeats := s.checkOnce(t); repeats > 0 {
		t.Logf("%d deliveries repeated (same webhook-id)", repeats)
	}
	// The endpoint's concurrency holds across the instances, each keeping
	// to its share (a request is counted from arrival to answer).
	if p := peak.peak(); p > concurrency {
		t.Errorf("%d requests in flight at once from %d instances, more than the endpoint's concurrency %d", p, n, concurrency)
	} else {
		t.Logf("at most %d requests in flight at once (concurrency %d)", p, concurrency)
	}
	if bad := order.violations(); len(bad) > 0 {
		t.Errorf("%d keys out of commit order, e.g. %v", len(bad), bad[:min(5, len(bad))])
	}
	if n > 1 && c.killAfter == 0 {
		total := 0.0
		sent := make([]float64, n)
		for i, addr := range addrs {
			sent[i] = attempts2xx(t, addr)
			total += sent[i]
		}
		for i := range sent {
			// A key's next delivery is claimed first by the instance that
			// completed its head (its completer wakes its own retry loop;
			// the others see it at their next poll), so an ordered
			// endpoint's work need not spread evenly.
			if !ordered && sent[i] < 0.2*total {
				t.Errorf("instance %d sent %.0f of %.0f deliveries, less than a fifth", i, sent[i], total)
			}
		}
		t.Logf("deliveries sent per instance: %v", sent)
	}
	for _, d := range daemons {
		d.stop(t)
	}
	return sharedResult{rows: len(want), took: took, arrivals: peak.times(), refused: refuse.at()}
}

// insertKeyed commits perTx contacts in one transaction, spread over
// organizations 1 to 100 (the keys of the ordered endpoint, each key's
// rows in commit order by id), and returns their ids.
func insertKeyed(t *testing.T, db *testenv.DB, perTx int) []int64 {
	t.Helper()
	rs, err := db.Pool.Query(context.Background(), `INSERT INTO contacts (organization_id, first_name)
		SELECT 1 + i % 100, 'c' FROM generate_series(1, $1) i RETURNING id`, perTx)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var ids []int64
	for rs.Next() {
		var id int64
		if err := rs.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// attempts2xx reads an instance's accepted attempts from its /metrics.
func attempts2xx(t *testing.T, addr string) float64 {
	t.Helper()
	var sum float64
	for _, m := range attemptsLine.FindAllStringSubmatch(metricsText(t, addr), -1) {
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		sum += v
	}
	return sum
}

var attemptsLine = regexp.MustCompile(`(?m)^walhook_attempts_total\{[^}]*result="2xx"[^}]*\} (\S+)$`)

// keyOrder checks, before handing a request on, that the first receipt of
// each row comes after every earlier row (lower id) of its organization
// received so far: the per-key order of an ordered endpoint keyed by
// organization. Repeats of a row already received are not checked.
type keyOrder struct {
	next http.Handler
	mu   sync.Mutex
	last map[int64]int64 // organization -> highest contact id received
	seen map[int64]bool
	bad  []string
}

func (k *keyOrder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var ev struct {
		Data struct {
			ID  int64 `json:"id"`
			Org int64 `json:"organization_id"`
		} `json:"data"`
	}
	if json.Unmarshal(body, &ev) == nil {
		k.mu.Lock()
		if k.seen == nil {
			k.seen = map[int64]bool{}
		}
		if !k.seen[ev.Data.ID] {
			k.seen[ev.Data.ID] = true
			if ev.Data.ID < k.last[ev.Data.Org] {
				k.bad = append(k.bad, fmt.Sprintf("organization %d: row %d after row %d", ev.Data.Org, ev.Data.ID, k.last[ev.Data.Org]))
			}
			k.last[ev.Data.Org] = max(k.last[ev.Data.Org], ev.Data.ID)
		}
		k.mu.Unlock()
	}
	k.next.ServeHTTP(w, r)
}

func (k *keyOrder) violations() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.bad...)
}

// inFlight counts the requests being served at once and keeps the peak,
// and the time each request arrived.
type inFlight struct {
	next    http.Handler
	mu      sync.Mutex
	now, hi int
	arrived []time.Time
}

func (f *inFlight) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.arrived = append(f.arrived, time.Now())
	f.now++
	f.hi = max(f.hi, f.now)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.now--
		f.mu.Unlock()
	}()
	f.next.ServeHTTP(w, r)
}

func (f *inFlight) peak() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hi
}

func (f *inFlight) times() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.arrived...)
}

// refuseFirst answers the first request 503 with a Retry-After of
// retryAfter seconds, and hands every later one on.
type refuseFirst struct {
	next       http.Handler
	retryAfter int
	refused    atomic.Bool
	when       atomic.Pointer[time.Time] // when the 503 was sent
}

func (f *refuseFirst) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.refused.CompareAndSwap(false, true) {
		w.Header().Set("Retry-After", strconv.Itoa(f.retryAfter))
		w.WriteHeader(http.StatusServiceUnavailable)
		now := time.Now()
		f.when.Store(&now)
		return
	}
	f.next.ServeHTTP(w, r)
}

// at is when the 503 was sent; zero before.
func (f *refuseFirst) at() time.Time {
	if t := f.when.Load(); t != nil {
		return *t
	}
	return time.Time{}
}
