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
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

// The big transaction test's size; docs/operations.md ("One big
// transaction") has the figures of larger runs made with these flags.
var (
	bigTxRows = flag.Int("bigtx.rows", 0, "rows of the big transaction test (0: its CI size)")
	bigTxPad  = flag.Int("bigtx.pad", 1, "bytes of first_name in each row of the big transaction")
	bigTxWait = flag.Duration("bigtx.wait", testkit.Timeout, "how long the big transaction test waits for every delivery")
)

// arrivals records when the first delivery came and when each row
// arrived first, in front of a sink.
type arrivals struct {
	next  http.Handler
	mu    sync.Mutex
	first time.Time
	last  time.Time
	rows  map[int64]time.Time
}

func (a *arrivals) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	a.next.ServeHTTP(w, r)
	var ev struct {
		Data struct {
			ID int64 `json:"id"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &ev)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.first.IsZero() {
		a.first = now
	}
	a.last = now
	if _, seen := a.rows[ev.Data.ID]; !seen {
		a.rows[ev.Data.ID] = now
	}
}

// TestBigTransactionBoundedMemory commits one transaction of many narrow
// rows, then a few live rows: walhook's peak RSS stays under 200 MB (it
// hands the transaction over in pieces), every row arrives under one id,
// and the live rows are delivered. It logs the figures docs/operations.md
// reports: run it with -bigtx.rows=1000000 for the full case.
func TestBigTransactionBoundedMemory(t *testing.T) {
	rows := *bigTxRows
	if rows == 0 {
		// The retry store drains a few hundred deliveries a second on a
		// small shared machine: the CI size keeps the test short.
		rows = 10000
		if raceEnabled {
			rows = 5000
		}
	}
	if testing.Short() {
		t.Skip("process test")
	}
	t.Parallel()
	s := newSink(signing.GenerateSecret(), 0)
	timing := &arrivals{next: s, rows: map[int64]time.Time{}}
	srv := httptest.NewServer(timing)
	t.Cleanup(srv.Close)
	db := testenv.NewDB(t)
	slot := testenv.Name(t, "slot")
	cfg := writeConfig(t, db, slot, srv.URL, s.secret, "")
	d := startDaemon(t, cfg)
	waitSlot(t, db, slot)

	began := time.Now()
	ctx := context.Background()
	var want []int64
	rs, err := db.Pool.Query(ctx, `INSERT INTO contacts (organization_id, first_name)
		SELECT 1, repeat('x', $2) FROM generate_series(1, $1) RETURNING id`, rows, *bigTxPad)
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var id int64
		if err := rs.Scan(&id); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	committed := time.Now()
	// Live rows, each its own transaction, right after the big one.
	liveCommitted := map[int64]time.Time{}
	for i := 0; i < 5; i++ {
		var id int64
		if err := db.Pool.QueryRow(ctx, `INSERT INTO contacts (organization_id, first_name) VALUES (1, 'live') RETURNING id`).Scan(&id); err != nil {
			t.Fatal(err)
		}
		liveCommitted[id] = time.Now()
		want = append(want, id)
	}

	deadline := time.NewTimer(*bigTxWait)
	defer deadline.Stop()
	peak := 0
	liveIDs := want[len(want)-len(liveCommitted):]
	liveDone := false
	progress := time.NewTicker(10 * time.Second)
	defer progress.Stop()
	for {
		peak = max(peak, vmHWM(t, d.cmd.Process.Pid))
		select {
		case <-progress.C:
			t.Logf("%s after the commit: %d rows delivered, peak RSS %d MB", time.Since(committed).Round(time.Second), s.count(), peak>>20)
		default:
		}
		if !liveDone && len(s.missing(liveIDs)) == 0 {
			liveDone = true
			timing.mu.Lock()
			first := timing.first
			timing.mu.Unlock()
			t.Logf("live rows delivered %s after the big transaction's commit (its first event %s after); %d rows delivered, peak RSS %d MB so far",
				time.Since(committed).Round(time.Millisecond), first.Sub(committed).Round(time.Millisecond), s.count(), peak>>20)
		}
		// Listing what is missing walks every row under the receiver's
		// lock: only once the count says all may be there, or it would
		// be the receiver's latency that the test measures.
		if s.count() >= len(want) && len(s.missing(want)) == 0 {
			break
		}
		select {
		case <-s.arrived:
		case <-time.After(time.Second):
		case <-deadline.C:
			missing := s.missing(want)
			t.Fatalf("%d of %d rows not delivered after %s (peak RSS %d MB), e.g. %v", len(missing), len(want), *bigTxWait, peak>>20, missing[:min(5, len(missing))])
		}
	}
	peak = max(peak, vmHWM(t, d.cmd.Process.Pid))
	if repeats := s.checkOnce(t); repeats > 0 {
		t.Logf("%d deliveries repeated an id", repeats)
	}
	if distinct := s.count(); distinct != len(want) {
		t.Errorf("%d distinct rows delivered, want %d", distinct, len(want))
	}
	timing.mu.Lock()
	var live []string
	for id, at := range liveCommitted {
		live = append(live, timing.rows[id].Sub(at).Round(time.Millisecond).String())
	}
	first, last := timing.first, timing.last
	timing.mu.Unlock()
	t.Logf("%d rows of %d bytes in one transaction: insert took %s; peak RSS %d MB; first event %s after the commit, last %s after; live rows delivered %s after their commit",
		rows, *bigTxPad, committed.Sub(began).Round(time.Millisecond), peak>>20,
		first.Sub(committed).Round(time.Millisecond), last.Sub(committed).Round(time.Millisecond), strings.Join(live, " "))
	if peak > 200<<20 {
		t.Errorf("walhook's peak RSS was %d MB for a transaction of %d rows, want under 200 MB", peak>>20, rows)
	}
	d.stop(t)
}

// count is how many distinct rows s received.
func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

// vmHWM is the peak resident set size of process pid, in bytes.
func vmHWM(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the status of walhook: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatalf("parsing %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/pid/status")
	return 0
}
