package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

// sink records, per contact id, the webhook ids it was delivered with (the
// event ids, for events in a batch).
type sink struct {
	secret  string
	slow    time.Duration
	arrived testkit.Notifier // a delivery was recorded
	mu      sync.Mutex
	ids     map[int64]map[string]int
	bad     int
	// batches counts batch requests, largest the most events one held.
	batches, largest int
}

// newSink returns a sink verifying signatures with secret and answering
// each delivery after slow.
func newSink(secret string, slow time.Duration) *sink {
	return &sink{secret: secret, slow: slow, arrived: testkit.NewNotifier(), ids: map[int64]map[string]int{}}
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := signing.Verify(signing.StandardWebhooks, []string{s.secret}, r.Header, body, time.Now(), 5*time.Minute); err != nil {
		s.mu.Lock()
		s.bad++
		s.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	type contactEvent struct {
		ID   string `json:"id"`
		Data struct {
			ID int64 `json:"id"`
		} `json:"data"`
	}
	// A batch ({"type":"batch","data":[…]}) records each event inside
	// under its own id: a batch may be made up differently after a crash.
	var ev struct {
		contactEvent
		Type  string          `json:"type"`
		Batch json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	events, ids := []contactEvent{ev.contactEvent}, []string{r.Header.Get("webhook-id")}
	if ev.Type == "batch" {
		events, ids = nil, nil
		if err := json.Unmarshal(ev.Batch, &events); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		for _, e := range events {
			ids = append(ids, e.ID)
		}
	} else if err := json.Unmarshal(ev.Batch, &events[0].Data); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if s.slow > 0 {
		time.Sleep(s.slow)
	}
	s.mu.Lock()
	if ev.Type == "batch" {
		s.batches++
		s.largest = max(s.largest, len(events))
	}
	for i, e := range events {
		if s.ids[e.Data.ID] == nil {
			s.ids[e.Data.ID] = map[string]int{}
		}
		s.ids[e.Data.ID][ids[i]]++
	}
	s.mu.Unlock()
	s.arrived.Notify()
	w.WriteHeader(http.StatusNoContent)
}

// checkOnce checks that every row arrived under one webhook-id only, and
// every delivery was signed, and returns how many deliveries repeated one.
func (s *sink) checkOnce(t *testing.T) (repeats int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, wids := range s.ids {
		if len(wids) != 1 {
			t.Errorf("row %d was delivered under %d different webhook-ids: %v", id, len(wids), wids)
		}
		for _, n := range wids {
			repeats += n - 1
		}
	}
	if s.bad > 0 {
		t.Errorf("%d deliveries failed signature verification", s.bad)
	}
	return repeats
}

func (s *sink) missing(want []int64) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int64
	for _, id := range want {
		if len(s.ids[id]) == 0 {
			out = append(out, id)
		}
	}
	return out
}

// daemon is a walhook run process.
type daemon struct {
	cmd *exec.Cmd
	log *testkit.Buffer
}

// startDaemon starts `walhook run`; when the test ends the process is
// killed if still running, and its log shown if the test failed.
func startDaemon(t *testing.T, cfgPath string) *daemon {
	t.Helper()
	cmd := exec.Command(binary(t), "run", "-c", cfgPath, "--log-level", "warn")
	d := &daemon{cmd: cmd, log: &testkit.Buffer{}}
	cmd.Stderr, cmd.Stdout = d.log, d.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			t.Logf("walhook run (pid %d) log:\n%s", cmd.Process.Pid, d.log)
		}
	})
	return d
}

// stop sends SIGTERM and checks that walhook drains and exits 0.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Wait(); err != nil {
		t.Errorf("walhook exited with %v after SIGTERM", err)
	}
}

func writeConfig(t *testing.T, db *testenv.DB, slot, url, secret, extra string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "walhook.hcl")
	src := fmt.Sprintf(`
source "postgres" {
  url         = %q
  slot        = %q
  publication = %q
}
delivery {
  shutdown_timeout = "10s"
}
event "contact.created" {
  table = "contacts"
  on    = ["insert"]
}
endpoint "app" {
  url    = %q
  events = ["*"]
  secret = %q
  retry {
    schedule = ["100ms", "200ms", "500ms", "1s", "1s", "1s", "1s", "1s", "1s", "1s"]
  }
}
%s
`, db.URL, slot, slot, url, secret, extra)
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitSlot waits until walhook streams from slot: rows committed before the
// slot reached its consistent point are not captured (they predate it).
func waitSlot(t *testing.T, db *testenv.DB, slot string) {
	t.Helper()
	testkit.Eventually(t, "walhook to stream from slot "+slot, func() bool {
		var n int
		if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND active AND confirmed_flush_lsn IS NOT NULL`, slot).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	})
}

// TestKilledAtRandomMomentsLosesNothing kills the built binary with SIGKILL
// five times under a steady write load, restarting it each time: every
// committed row is delivered at least once, and a row delivered twice
// carries the same webhook-id both times.
func TestKilledAtRandomMomentsLosesNothing(t *testing.T) {
	db, s, url := processTest(t, 0)
	slot := testenv.Name(t, "slot")
	cfg := writeConfig(t, db, slot, url, s.secret, "")

	d := startDaemon(t, cfg)
	waitSlot(t, db, slot)
	stopWriting := writeSteadily(t, func(context.Context, int64) ([]int64, error) {
		rows, err := db.Pool.Query(context.Background(),
			`INSERT INTO contacts (organization_id, first_name) SELECT 1, 'c' FROM generate_series(1, 5) RETURNING id`)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, pgx.RowTo[int64])
	})
	d = killRepeatedly(t, d, cfg, 5)
	want := stopWriting()

	waitDelivered(t, s, want)
	d.stop(t)
	t.Logf("%d rows committed across 5 SIGKILLs, all delivered; %d duplicate deliveries (same webhook-id)", len(want), s.checkOnce(t))
}

// TestKilledMidBatchLosesNothing is TestKilledAtRandomMomentsLosesNothing
// with an endpoint taking batches of up to 20 events, answering each after
// 20 ms: batches are in flight at each SIGKILL, and every committed row is
// still delivered, a row delivered twice with the same event id.
func TestKilledMidBatchLosesNothing(t *testing.T) {
	db, s, url := processTest(t, 20*time.Millisecond)
	slot := testenv.Name(t, "slot")
	cfg := writeConfig(t, db, slot, url, s.secret, "")
	editConfig(t, cfg, `  events = ["*"]`, "  events = [\"*\"]\n  batch {\n    max_events = 20\n    max_wait = \"20ms\"\n  }")

	d := startDaemon(t, cfg)
	waitSlot(t, db, slot)
	stopWriting := writeSteadily(t, func(context.Context, int64) ([]int64, error) {
		rows, err := db.Pool.Query(context.Background(),
			`INSERT INTO contacts (organization_id, first_name) SELECT 1, 'c' FROM generate_series(1, 5) RETURNING id`)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, pgx.RowTo[int64])
	})
	d = killRepeatedly(t, d, cfg, 3)
	want := stopWriting()

	waitDelivered(t, s, want)
	d.stop(t)
	t.Logf("%d rows committed across 3 SIGKILLs, all delivered in batches; %d duplicate deliveries (same event id)", len(want), s.checkOnce(t))
}

// TestSIGTERMDrainsAndExitsZero: on SIGTERM walhook stops reading, lets the
// deliveries in memory finish, confirms the slot and exits 0.
func TestSIGTERMDrainsAndExitsZero(t *testing.T) {
	db, s, url := processTest(t, 100*time.Millisecond)
	slot := testenv.Name(t, "slot")
	d := startDaemon(t, writeConfig(t, db, slot, url, s.secret, ""))
	waitSlot(t, db, slot)

	// end is a WAL position inside the transaction, before its commit
	// record: the slot confirmed past the transaction is past it. (The
	// WAL's end after the commit would also count other databases' WAL,
	// which walhook has no reason to confirm before it stops.)
	ctx := context.Background()
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := tx.Query(ctx, `INSERT INTO contacts (organization_id, first_name) SELECT 1, 'c' FROM generate_series(1, 50) RETURNING id`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	var end string
	if err := tx.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&end); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// Once deliveries are under way, ask it to stop.
	testkit.AwaitCond(t, testkit.Timeout, "a first delivery", s.arrived, func() bool { return len(s.missing(ids)) < len(ids) })
	d.stop(t)
	if m := s.missing(ids); len(m) > 0 {
		t.Errorf("%d of %d events not delivered by the drain", len(m), len(ids))
	}
	var confirmed bool
	if err := db.Pool.QueryRow(context.Background(), `SELECT confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1`, slot, end).Scan(&confirmed); err != nil {
		t.Fatal(err)
	}
	if !confirmed {
		t.Errorf("the slot was not confirmed past the drained events")
	}
}

// killRepeatedly SIGKILLs the daemon n times at random moments, restarting
// it each time, and returns the one left running.
func killRepeatedly(t *testing.T, d *daemon, cfg string, n int) *daemon {
	t.Helper()
	for kill := 0; kill < n; kill++ {
		// A random moment: this is the crash being tested, not a wait.
		time.Sleep(time.Duration(200+rand.IntN(1200)) * time.Millisecond)
		if err := d.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = d.cmd.Wait()
		d = startDaemon(t, cfg)
	}
	return d
}

// processTest starts a test of the walhook binary (skipped with -short):
// a database, and a sink answering after slow behind an HTTP server at
// url, with a fresh secret.
func processTest(t *testing.T, slow time.Duration) (db *testenv.DB, s *sink, url string) {
	t.Helper()
	if testing.Short() {
		t.Skip("process test")
	}
	t.Parallel()
	s = newSink(signing.GenerateSecret(), slow)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return testenv.NewDB(t), s, srv.URL
}

// waitDelivered waits until the sink has every row of want.
func waitDelivered(t *testing.T, s *sink, want []int64) {
	t.Helper()
	// A long backlog may take longer than testkit.Timeout in all; what
	// must not pass is that long without one more row arriving.
	deadline := time.NewTimer(testkit.Timeout)
	defer deadline.Stop()
	// Rows are counted before they are looked up: listing the missing
	// ones of a long backlog on every arrival holds the receiver's lock
	// long enough to slow what is measured.
	seen := -1
	for {
		if n := s.count(); n >= len(want) {
			if len(s.missing(want)) == 0 {
				return
			}
		} else if n > seen {
			seen = n
			deadline.Reset(testkit.Timeout)
		}
		select {
		case <-s.arrived:
		case <-deadline.C:
			missing := s.missing(want)
			t.Fatalf("%d of %d committed rows not delivered, none for %s, e.g. %v", len(missing), len(want), testkit.Timeout, missing[:min(5, len(missing))])
		}
	}
}

// writeSteadily calls insert (with 0, 5, 10...) every few milliseconds
// until the returned stop is called; stop returns the ids of the rows
// committed. A failed insert fails the test.
func writeSteadily(t *testing.T, insert func(ctx context.Context, base int64) ([]int64, error)) (stop func() []int64) {
	t.Helper()
	var committed []int64
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for base := int64(0); ; base += 5 {
			select {
			case <-quit:
				return
			default:
			}
			ids, err := insert(context.Background(), base)
			if err != nil {
				t.Errorf("insert: %v", err)
				return
			}
			committed = append(committed, ids...)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return func() []int64 {
		close(quit)
		<-done
		return committed
	}
}
