package relay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/walhook/walhook/internal/metrics"
	"github.com/walhook/walhook/internal/receiver"
	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/relay"
	"github.com/walhook/walhook/testenv"
)

// watchOptions are testOptions with a fast watcher and no heartbeat (so
// that the WAL stands still once the tests stop writing), and a registry
// of their own to read the gauges from.
func watchOptions(reg *prometheus.Registry) relay.Options {
	o := testOptions
	o.WatchInterval = 100 * time.Millisecond
	o.HeartbeatInterval = -1
	o.Metrics = metrics.New(reg)
	return o
}

// watched is a relay capturing inserts into table items, delivering them
// to rec, with its log and its metrics at hand.
type watched struct {
	*running
	db   *testenv.DB
	src  string // the config
	rec  *receiver.Receiver
	reg  *prometheus.Registry
	logs *testkit.Buffer
}

// startWatched creates table items and runs a relay whose one event reads
// it; endpoint receives the events (nil: a receiver of the test's own).
func startWatched(t *testing.T, endpoint http.Handler) *watched {
	t.Helper()
	db := testenv.NewDB(t)
	db.Exec(t, `CREATE TABLE items (id bigserial PRIMARY KEY, n bigint NOT NULL)`)
	w := &watched{db: db, reg: prometheus.NewRegistry(), logs: &testkit.Buffer{}}
	if endpoint == nil {
		w.rec = receiver.New(receiver.Options{})
		endpoint = w.rec
	}
	srv := serve(t, endpoint)
	slot := testenv.Name(t, "slot")
	src := fmt.Sprintf(`
source "postgres" {
  url         = %q
  slot        = %q
  publication = %q
}
event "item.created" {
  table = "items"
  on    = ["insert"]
}
endpoint "app" {
  url    = %q
  events = ["*"]
  secret = %q
}
delivery {
  shutdown_timeout = "5s"
}
`, db.URL, slot, slot, srv.URL, signing.GenerateSecret())
	w.src = src
	w.running = runConfigLogged(t, db, src, w.logs, watchOptions(w.reg))
	w.waitStreaming(t)
	// The slot is created after the publication: once the watcher has read
	// the slot, it has seen the table in the publication too.
	testkit.EventuallyWithin(t, 30*time.Second, "the watcher to read the slot", func() bool {
		v, _ := w.gauge(t, `walhook_slot_wal_status{status="reserved"}`)
		return v == 1
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("relay log:\n%s", w.logs.String())
		}
	})
	return w
}

// gauge returns the value of a series of the relay's registry
// ("name" or `name{label="v"}`) and whether it is there.
func (w *watched) gauge(t *testing.T, series string) (float64, bool) {
	t.Helper()
	return seriesValue(t, w.reg, series)
}

// seriesValue returns the value of a series of reg ("name" or
// `name{label="v"}`) and whether it is there.
func seriesValue(t *testing.T, reg *prometheus.Registry, series string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			if len(m.GetLabel()) > 0 {
				var labels []string
				for _, l := range m.GetLabel() {
					labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
				name += "{" + strings.Join(labels, ",") + "}"
			}
			if name != series {
				continue
			}
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			}
		}
	}
	return 0, false
}

// slotGauges are the byte gauges as Postgres would compute them now.
type slotGauges struct{ lag, retained, confirmed float64 }

func (w *watched) pgSlot(t *testing.T) slotGauges {
	t.Helper()
	var g slotGauges
	err := w.db.Pool.QueryRow(context.Background(), `SELECT pg_current_wal_lsn() - confirmed_flush_lsn,
		pg_current_wal_lsn() - restart_lsn, confirmed_flush_lsn - '0/0'
		FROM pg_replication_slots WHERE slot_name = $1`, w.slot).Scan(&g.lag, &g.retained, &g.confirmed)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// walhookSlot is what the relay's gauges say.
func (w *watched) walhookSlot(t *testing.T) slotGauges {
	t.Helper()
	var g slotGauges
	g.lag, _ = w.gauge(t, "walhook_replication_lag_bytes")
	g.retained, _ = w.gauge(t, "walhook_slot_retained_wal_bytes")
	g.confirmed, _ = w.gauge(t, "walhook_confirmed_lsn")
	return g
}

// waitGaugesMatchSlot waits until the relay's byte gauges are those of
// pg_replication_slots (the watcher reads every 100ms; the WAL must be
// still) and returns them.
func (w *watched) waitGaugesMatchSlot(t *testing.T, what string) slotGauges {
	t.Helper()
	var got, want slotGauges
	testkit.EventuallyWithin(t, 60*time.Second, "the byte gauges to match pg_replication_slots "+what, func() bool {
		want = w.pgSlot(t)
		got = w.walhookSlot(t)
		return got == want
	})
	t.Logf("%s: lag %.0f bytes, retained %.0f bytes, confirmed %s", what, got.lag, got.retained, pglogrepl.LSN(uint64(got.confirmed)))
	return got
}

// walPosition is pg_current_wal_lsn().
func walPosition(t *testing.T, db *testenv.DB) pglogrepl.LSN {
	t.Helper()
	var lsn pglogrepl.LSN
	if err := db.Pool.QueryRow(context.Background(), `SELECT pg_current_wal_lsn()`).Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	return lsn
}

// itemWriter commits one row into items every few milliseconds until
// stopped, numbering them, and records which numbers committed.
type itemWriter struct {
	mu        sync.Mutex
	committed []int64
	cancel    context.CancelFunc
	done      chan struct{}
}

func startItemWriter(t *testing.T, db *testenv.DB) *itemWriter {
	t.Helper()
	conn := db.Conn(t)
	ctx, cancel := context.WithCancel(context.Background())
	iw := &itemWriter{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(iw.done)
		tick := time.NewTicker(3 * time.Millisecond)
		defer tick.Stop()
		for n := int64(1); ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			// Simple protocol: no prepared statement outlives the table.
			_, err := conn.Exec(ctx, `INSERT INTO items (n) VALUES ($1)`, pgx.QueryExecModeSimpleProtocol, n)
			if err == nil {
				iw.mu.Lock()
				iw.committed = append(iw.committed, n)
				iw.mu.Unlock()
			}
		}
	}()
	t.Cleanup(iw.stop)
	return iw
}

func (iw *itemWriter) stop() {
	iw.cancel()
	<-iw.done
}

// rows returns the numbers committed so far.
func (iw *itemWriter) rows() []int64 {
	iw.mu.Lock()
	defer iw.mu.Unlock()
	return append([]int64(nil), iw.committed...)
}

// receivedRows returns the n of each item.created received.
func (w *watched) receivedRows(t *testing.T) map[int64]bool {
	t.Helper()
	got := map[int64]bool{}
	for _, r := range w.rec.Received() {
		var body struct {
			Data struct {
				N json.Number `json:"n"`
			} `json:"data"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatalf("body %s: %v", r.Body, err)
		}
		n, err := body.Data.N.Int64()
		if err != nil {
			t.Fatalf("body %s: n: %v", r.Body, err)
		}
		got[n] = true
	}
	return got
}

// waitReceived waits until every row of want has arrived.
func (w *watched) waitReceived(t *testing.T, want []int64, what string) {
	t.Helper()
	var missing []int64
	testkit.EventuallyWithin(t, 60*time.Second, what, func() bool {
		got := w.receivedRows(t)
		missing = missing[:0]
		for _, n := range want {
			if !got[n] {
				missing = append(missing, n)
			}
		}
		return len(missing) == 0
	})
}

// TestTableRecreatedIsCapturedAgain: a watched table dropped and created
// again under its name while a writer commits into it is back in the
// publication within seconds; the gap is logged once at error level with
// what to run, and counted; every row committed after that arrives.
func TestTableRecreatedIsCapturedAgain(t *testing.T) {
	t.Parallel()
	w := startWatched(t, nil)
	iw := startItemWriter(t, w.db)
	testkit.EventuallyWithin(t, 60*time.Second, "rows to be written", func() bool { return len(iw.rows()) >= 50 })
	w.waitReceived(t, iw.rows(), "the rows before the drop to arrive")

	w.db.Exec(t, `DROP TABLE items`)
	w.db.Exec(t, `CREATE TABLE items (id bigserial PRIMARY KEY, n bigint NOT NULL)`)
	recreated := time.Now()
	testkit.EventuallyWithin(t, 60*time.Second, "the gap to be counted", func() bool {
		v, _ := w.gauge(t, `walhook_capture_gaps_total{reason="table_recreated"}`)
		return v == 1
	})
	t.Logf("re-created table counted as a gap %v after its creation", time.Since(recreated).Round(time.Millisecond))
	// Every row committed from now on is in the publication.
	after := len(iw.rows())
	testkit.EventuallyWithin(t, 60*time.Second, "more rows to be written", func() bool { return len(iw.rows()) >= after+100 })
	iw.stop()
	rows := iw.rows()
	w.waitReceived(t, rows[after:], "the rows written after the table was back in the publication to arrive")
	missed := len(rows) - len(w.receivedRows(t))
	t.Logf("%d rows committed, %d not captured (written to the new table before it was back in the publication)", len(rows), missed)

	log := w.logs.String()
	want := []string{`"level":"error"`, `"reason":"table_recreated"`, "table public.items was dropped and re-created",
		"walhook put it back at", "walhook backfill -c <config> --table public.items", `"republished_at":"`, `"rows_when_republished":"`}
	for _, s := range want {
		if !strings.Contains(log, s) {
			t.Errorf("log lacks %q", s)
		}
	}
	if n := strings.Count(log, "was dropped and re-created"); n != 1 {
		t.Errorf("the gap is logged %d times, want once", n)
	}
	if err := w.ready(); err != nil {
		t.Errorf("not ready once the table is back: %v", err)
	}
	if v, _ := w.gauge(t, "walhook_tables_not_captured"); v != 0 {
		t.Errorf("walhook_tables_not_captured = %v once the table is back", v)
	}
}

// TestTableRecreatedWhileStoppedIsReported: a watched table dropped and
// created again while walhook is stopped is compared at the next start
// with the oid the state schema recorded: the gap (rows written to the new
// table before walhook put it back in the publication) is logged once at
// error level, saying it happened while walhook was not running, and
// counted; rows written after that arrive.
func TestTableRecreatedWhileStoppedIsReported(t *testing.T) {
	t.Parallel()
	w := startWatched(t, nil)
	w.db.Exec(t, `INSERT INTO items (n) VALUES (1)`)
	w.waitReceived(t, []int64{1}, "the first row")
	var oid uint32
	w.db.Pool.QueryRow(context.Background(), `SELECT 'items'::regclass::oid`).Scan(&oid)
	testkit.EventuallyWithin(t, 30*time.Second, "the captured table to be recorded", func() bool {
		var recorded uint32
		err := w.db.Pool.QueryRow(context.Background(),
			fmt.Sprintf(`SELECT table_oid FROM %s.captured_tables WHERE slot_name = $1 AND table_name = 'public.items'`, w.schema), w.slot).Scan(&recorded)
		return err == nil && recorded == oid
	})
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}

	w.db.Exec(t, `DROP TABLE items`)
	w.db.Exec(t, `CREATE TABLE items (id bigserial PRIMARY KEY, n bigint NOT NULL)`)
	w.db.Exec(t, `INSERT INTO items (n) VALUES (2)`) // not in the publication: lost, and said so

	logs := &testkit.Buffer{}
	reg := prometheus.NewRegistry()
	again := runConfigLogged(t, w.db, w.src, logs, watchOptions(reg))
	again.waitStreaming(t)
	testkit.EventuallyWithin(t, 60*time.Second, "the gap to be counted", func() bool {
		v, _ := seriesValue(t, reg, `walhook_capture_gaps_total{reason="table_recreated"}`)
		return v == 1
	})
	w.db.Exec(t, `INSERT INTO items (n) VALUES (3)`)
	w.waitReceived(t, []int64{3}, "a row written after the restart")
	log := logs.String()
	for _, want := range []string{`"level":"error"`, `"reason":"table_recreated"`, "table public.items was dropped and re-created",
		"while walhook was not running", "walhook backfill -c <config> --table public.items"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if n := strings.Count(log, "was dropped and re-created"); n != 1 {
		t.Errorf("the gap is logged %d times, want once", n)
	}
}

// TestTableRenamedIsReported: a watched table renamed keeps streaming under
// its new name, which no rule reads: walhook says so once, /readyz fails
// with the old and new names, and the gauges show it until it is renamed
// back.
func TestTableRenamedIsReported(t *testing.T) {
	t.Parallel()
	w := startWatched(t, nil)
	w.db.Exec(t, `INSERT INTO items (n) VALUES (1)`)
	w.waitReceived(t, []int64{1}, "the first row")

	w.db.Exec(t, `ALTER TABLE items RENAME TO items_renamed`)
	w.db.Exec(t, `INSERT INTO items_renamed (n) VALUES (2)`)
	var reason string
	testkit.EventuallyWithin(t, 60*time.Second, "/readyz to report the rename", func() bool {
		err := w.ready()
		if err != nil {
			reason = err.Error()
		}
		return err != nil && strings.Contains(reason, "renamed")
	})
	for _, s := range []string{"table public.items", "was renamed to public.items_renamed", `Change table = "public.items" to "public.items_renamed"`} {
		if !strings.Contains(reason, s) {
			t.Errorf("/readyz reason lacks %q: %s", s, reason)
		}
	}
	if v, _ := w.gauge(t, "walhook_tables_not_captured"); v != 1 {
		t.Errorf("walhook_tables_not_captured = %v, want 1", v)
	}
	if v, _ := w.gauge(t, `walhook_capture_gaps_total{reason="table_renamed"}`); v != 1 {
		t.Errorf("renames counted: %v, want 1", v)
	}
	// Many polls later it is still logged once.
	gaps := func() float64 { v, _ := w.gauge(t, `walhook_capture_gaps_total{reason="table_renamed"}`); return v }
	w.db.Exec(t, `INSERT INTO items_renamed (n) VALUES (3)`)
	// The position just after the insert, read once: walhook's own writes
	// (heartbeats, its slot record) move the WAL's end on, and a position
	// past only those is recorded, so confirmed, every 30 s.
	target := currentLSN(t, w.db)
	testkit.EventuallyWithin(t, 60*time.Second, "the slot to pass the rows of the renamed table", func() bool {
		return confirmedPast(t, w.db, w.slot, target)
	})
	if n := strings.Count(w.logs.String(), "was renamed to public.items_renamed"); n != 1 || gaps() != 1 {
		t.Errorf("the rename is logged %d times and counted %v times, want once", n, gaps())
	}
	if got := w.receivedRows(t); got[2] || got[3] {
		t.Errorf("rows of the renamed table produced events: %v", got)
	}

	w.db.Exec(t, `ALTER TABLE items_renamed RENAME TO items`)
	testkit.EventuallyWithin(t, 60*time.Second, "/readyz to be ready again", func() bool { return w.ready() == nil })
	if v, _ := w.gauge(t, "walhook_tables_not_captured"); v != 0 {
		t.Errorf("walhook_tables_not_captured = %v after the rename back", v)
	}
	w.db.Exec(t, `INSERT INTO items (n) VALUES (4)`)
	w.waitReceived(t, []int64{4}, "a row after the rename back")
}

// TestTableDroppedIsReported: a watched table dropped is reported (log,
// /readyz, counter) until it is created again, then captured again.
func TestTableDroppedIsReported(t *testing.T) {
	t.Parallel()
	w := startWatched(t, nil)
	w.db.Exec(t, `DROP TABLE items`)
	testkit.EventuallyWithin(t, 60*time.Second, "/readyz to report the drop", func() bool {
		err := w.ready()
		return err != nil && strings.Contains(err.Error(), "table public.items (oid") && strings.Contains(err.Error(), "was dropped")
	})
	if v, _ := w.gauge(t, `walhook_capture_gaps_total{reason="table_dropped"}`); v != 1 {
		t.Errorf("drops counted: %v, want 1", v)
	}
	w.db.Exec(t, `CREATE TABLE items (id bigserial PRIMARY KEY, n bigint NOT NULL)`)
	testkit.EventuallyWithin(t, 60*time.Second, "/readyz to be ready again", func() bool { return w.ready() == nil })
	if v, _ := w.gauge(t, `walhook_capture_gaps_total{reason="table_recreated"}`); v != 1 {
		t.Errorf("re-creations counted: %v, want 1", v)
	}
	w.db.Exec(t, `INSERT INTO items (n) VALUES (7)`)
	w.waitReceived(t, []int64{7}, "a row of the table created again")
}

// TestLagGaugesFollowTheSlot: the byte gauges are pg_replication_slots'
// own numbers while streaming, while another client holds the slot (this
// instance does not stream), and while confirmation is held back because
// the state schema was dropped under a failing endpoint; lag_seconds is
// the age of the oldest unsettled commit; /readyz fails then, naming the
// state schema.
func TestLagGaugesFollowTheSlot(t *testing.T) {
	t.Parallel()
	var failing sync.Mutex
	fail := false
	endpoint := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		failing.Lock()
		defer failing.Unlock()
		if fail {
			rw.WriteHeader(http.StatusInternalServerError)
			return
		}
		rw.WriteHeader(http.StatusNoContent)
	})
	w := startWatched(t, endpoint)
	ctx := context.Background()

	// Streaming and caught up.
	w.db.Exec(t, `INSERT INTO items (n) SELECT i FROM generate_series(1, 1000) i`)
	target := currentLSN(t, w.db) // read once: see TestTableRenamedIsReported
	testkit.EventuallyWithin(t, 60*time.Second, "the slot to confirm the rows", func() bool {
		return confirmedPast(t, w.db, w.slot, target)
	})
	w.waitGaugesMatchSlot(t, "while streaming")
	if v, _ := w.gauge(t, `walhook_slot_wal_status{status="reserved"}`); v != 1 {
		t.Errorf(`walhook_slot_wal_status{status="reserved"} = %v`, v)
	}

	// Confirmation held back: the endpoint fails and the store is gone.
	failing.Lock()
	fail = true
	failing.Unlock()
	w.db.Exec(t, `DROP SCHEMA `+pgx.Identifier{w.schema}.Sanitize()+` CASCADE`)
	testkit.EventuallyWithin(t, 30*time.Second, "/readyz to name the state schema", func() bool {
		err := w.ready()
		return err != nil && strings.Contains(err.Error(), fmt.Sprintf("state store: no state schema %q", w.schema))
	})
	before := walPosition(t, w.db)
	w.db.Exec(t, `INSERT INTO items (n) SELECT i FROM generate_series(1001, 6000) i`)
	held := time.Now()
	txWAL := float64(walPosition(t, w.db) - before)
	testkit.EventuallyWithin(t, 60*time.Second, "lag_seconds to pass 2 s", func() bool {
		v, _ := w.gauge(t, "walhook_replication_lag_seconds")
		return v >= 2
	})
	lagSeconds, _ := w.gauge(t, "walhook_replication_lag_seconds")
	if max := time.Since(held).Seconds() + 1; lagSeconds > max {
		t.Errorf("lag_seconds %.1f is more than the %.1f s since the unsettled commit", lagSeconds, max)
	}
	g := w.waitGaugesMatchSlot(t, "while confirmation is held back")
	// The slot may confirm up to just before the commit record (nothing
	// was outstanding while the transaction ran), so lag_bytes can be
	// small; what the slot holds is the whole transaction's WAL.
	if g.retained < txWAL || g.retained < g.lag {
		t.Errorf("held back: retained %.0f bytes (lag %.0f), less than the %.0f bytes of the unsettled transaction", g.retained, g.lag, txWAL)
	}
	streaming, _ := w.gauge(t, "walhook_source_streaming")
	t.Logf("held back: lag_seconds %.1f, streaming %v", lagSeconds, streaming)
	if err := w.stop(); err != nil {
		t.Logf("relay stopped with %v", err)
	}

	// Not streaming: another client holds the slot and confirms nothing.
	pcfg, err := pgconn.ParseConfig(w.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	pcfg.RuntimeParams["replication"] = "database"
	holder, err := pgconn.ConnectConfig(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(context.Background())
	testkit.EventuallyWithin(t, 30*time.Second, "the test to hold the slot", func() bool {
		return pglogrepl.StartReplication(ctx, holder, w.slot, 0, pglogrepl.StartReplicationOptions{
			PluginArgs: []string{"proto_version '1'", "publication_names '" + w.slot + "'"}}) == nil
	})
	reg := prometheus.NewRegistry()
	standby := &watched{db: w.db, reg: reg, logs: &testkit.Buffer{}}
	standby.running = runConfigLogged(t, w.db, w.src, standby.logs, watchOptions(reg))
	testkit.EventuallyWithin(t, 30*time.Second, "the relay to find the slot in use", func() bool {
		err := standby.ready()
		return err != nil && strings.Contains(err.Error(), "in use")
	})
	before = walPosition(t, w.db)
	w.db.Exec(t, `INSERT INTO items (n) SELECT i FROM generate_series(6001, 8000) i`)
	txWAL = float64(walPosition(t, w.db) - before)
	g = standby.waitGaugesMatchSlot(t, "while not streaming")
	if streaming, _ := standby.gauge(t, "walhook_source_streaming"); streaming != 0 || g.lag < txWAL {
		t.Errorf("not streaming: streaming %v, lag %.0f bytes, less than the %.0f written since", streaming, g.lag, txWAL)
	}
	if g.retained < g.lag {
		t.Errorf("not streaming: retained %.0f < lag %.0f", g.retained, g.lag)
	}
}
