package relay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

const backfillToken = "backfill-token-0123456789"

// itemEvents are the rules of the backfill tests: one event of table items
// for the operations given.
func itemEvents(ops string) string {
	return fmt.Sprintf(`
event "item.synced" {
  table = "items"
  on    = [%s]
  data  = { op = op, id = op == "delete" ? old.id : new.id, v = op == "delete" ? null : new.v }
}
`, ops)
}

// itemEvent is the body of an item.synced event.
type itemEvent struct {
	Data struct {
		Op string `json:"op"`
		ID int64  `json:"id"`
		V  *int64 `json:"v"`
	} `json:"data"`
}

// itemReceiver records item.synced events in arrival order, counting each
// webhook-id, and wakes waiters on every event.
type itemReceiver struct {
	mu     sync.Mutex
	byID   map[string]int // webhook-id -> times received
	events []itemEvent    // first arrival of each webhook-id, in order
	ids    map[string]itemEvent
	wake   chan struct{}
}

func newItemReceiver() *itemReceiver {
	return &itemReceiver{byID: map[string]int{}, ids: map[string]itemEvent{}, wake: make(chan struct{}, 1)}
}

func (c *itemReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var ev itemEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	id := r.Header.Get("webhook-id")
	c.mu.Lock()
	c.byID[id]++
	if c.byID[id] == 1 {
		c.events = append(c.events, ev)
		c.ids[id] = ev
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusNoContent)
}

// received returns the events received so far (first arrivals, in order)
// without copying them: the events are only ever appended to, so the
// returned prefix stays as it is. Read it, do not change it.
func (c *itemReceiver) received() []itemEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.events[:len(c.events):len(c.events)]
}

// deliveries returns the number of deliveries of each webhook-id.
func (c *itemReceiver) deliveries() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	counts := make(map[string]int, len(c.byID))
	for k, v := range c.byID {
		counts[k] = v
	}
	return counts
}

// waitFor waits, woken by the events, until cond holds over them. cond
// runs at most every 50ms, outside the receiver's lock, so a costly one
// does not slow deliveries down.
func (c *itemReceiver) waitFor(t *testing.T, within time.Duration, what string, cond func([]itemEvent) bool) {
	t.Helper()
	deadline := time.After(within)
	for {
		checked := time.Now()
		evs := c.received()
		if cond(evs) {
			return
		}
		select {
		case <-c.wake:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s (%d events received)", within, what, len(evs))
		}
		if wait := 50*time.Millisecond - time.Since(checked); wait > 0 {
			time.Sleep(wait) // a pace for cond, not a wait for a condition
		}
	}
}

// backfillAPI calls a relay's admin API.
type backfillAPI struct{ srv *httptest.Server }

func (a backfillAPI) call(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, a.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+backfillToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

// submit starts a backfill and returns its id.
func (a backfillAPI) submit(t *testing.T, body string) string {
	t.Helper()
	code, out := a.call(t, "POST", "/v1/backfills", body)
	if code != http.StatusCreated {
		t.Fatalf("POST /v1/backfills %s = %d %v", body, code, out)
	}
	return out["id"].(string)
}

// waitStatus polls the backfill until it has status (the API has no push).
func (a backfillAPI) waitStatus(t *testing.T, id, status string, within time.Duration) map[string]any {
	t.Helper()
	var out map[string]any
	testkit.EventuallyWithin(t, within, "backfill "+id+" to be "+status, func() bool {
		_, out = a.call(t, "GET", "/v1/backfills/"+id, "")
		if out["status"] == "failed" && status != "failed" {
			t.Fatalf("backfill failed: %v", out["last_error"])
		}
		return out["status"] == status
	})
	return out
}

// backfillRelay runs a relay over db with the given events and endpoint
// blocks and returns its admin API.
func backfillRelay(t *testing.T, db *testenv.DB, events, endpoints string) (*running, backfillAPI) {
	t.Helper()
	h := runConfig(t, db, backfillConfig(db, testenv.Name(t, "slot"), events, endpoints))
	h.waitStreaming(t)
	srv := httptest.NewServer(h.relay.AdminHandler())
	t.Cleanup(srv.Close)
	return h, backfillAPI{srv}
}

// backfillConfig is a whole config over db: source, admin API (token
// backfillToken), delivery, and the given events and endpoints.
func backfillConfig(db *testenv.DB, slot, events, endpoints string) string {
	return fmt.Sprintf(`
source "postgres" {
  url         = %q
  slot        = %q
  publication = %q
}
admin {
  listen = "127.0.0.1:0"
  token  = %q
}
delivery {
  shutdown_timeout = "10s"
}
%s
%s
`, db.URL, slot, slot, backfillToken, events, endpoints)
}

func endpointBlock(name, url, extra string) string {
	return fmt.Sprintf(`
endpoint %q {
  url    = %q
  events = ["item.synced"]
  secret = %q
  %s
}
`, name, url, signing.GenerateSecret(), extra)
}

func createItems(t *testing.T, db *testenv.DB, n int) {
	t.Helper()
	db.Exec(t, `CREATE TABLE items (id bigint PRIMARY KEY, v bigint NOT NULL DEFAULT 0, note text)`)
	db.Exec(t, `INSERT INTO items (id, note) SELECT i, 'row ' || i FROM generate_series(1, $1) i`, n)
}

// TestBackfillSendsEveryRowOnce: every row of the table arrives exactly
// once, as item.synced with op read, under ids derived from the backfill.
func TestBackfillSendsEveryRowOnce(t *testing.T) {
	t.Parallel()
	n := 100_000
	if raceEnabled || testing.Short() {
		n = 20_000
	}
	db := testenv.NewDB(t)
	createItems(t, db, n)
	rcv := newItemReceiver()
	srv := serve(t, rcv)
	_, api := backfillRelay(t, db, itemEvents(`"read"`), endpointBlock("sink", srv.URL, `concurrency = 32`))

	began := time.Now()
	id := api.submit(t, `{"table": "items"}`)
	rcv.waitFor(t, 3*time.Minute, fmt.Sprintf("%d read events", n), func(evs []itemEvent) bool { return len(evs) >= n })
	out := api.waitStatus(t, id, "completed", time.Minute)
	t.Logf("%d rows in %v", n, time.Since(began))

	evs, counts := rcv.received(), rcv.deliveries()
	seen := make(map[int64]bool, n)
	for _, ev := range evs {
		if ev.Data.Op != "read" {
			t.Fatalf("event with op %q, want read", ev.Data.Op)
		}
		if seen[ev.Data.ID] {
			t.Fatalf("row %d arrived under two ids", ev.Data.ID)
		}
		seen[ev.Data.ID] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct rows arrived, want %d", len(seen), n)
	}
	for wid, c := range counts {
		if c != 1 {
			t.Fatalf("event %s arrived %d times", wid, c)
		}
	}
	if out["rows_done"].(float64) != float64(n) || out["rows_sent"].(float64) != float64(n) || out["rows_total"].(float64) != float64(n) {
		t.Errorf("backfill progress %v, want %d rows total, done and sent", out, n)
	}
}

// TestBackfillConsistentWithConcurrentChanges: while a backfill reads the
// table, other transactions update, delete and insert rows. No row's
// events arrive out of order (a read never brings back an older v, or a
// deleted row), and applying the events in arrival order gives the table.
func TestBackfillConsistentWithConcurrentChanges(t *testing.T) {
	t.Parallel()
	n := 20_000
	if raceEnabled {
		n = 5_000
	}
	db := testenv.NewDB(t)
	createItems(t, db, n)
	rcv := newItemReceiver()
	srv := serve(t, rcv)
	_, api := backfillRelay(t, db, itemEvents(`"read", "insert", "update", "delete"`),
		endpointBlock("sink", srv.URL, `ordering = "key"`+"\n  concurrency = 16"))

	id := api.submit(t, `{"table": "items", "chunk_size": 500}`)
	ctx, stop := context.WithCancel(context.Background())
	writerDone := make(chan error, 1)
	go func() { writerDone <- churn(ctx, db, n) }()
	api.waitStatus(t, id, "completed", 3*time.Minute)
	stop()
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}

	// The table as it is now.
	want := map[int64]int64{}
	rows, err := db.Pool.Query(context.Background(), `SELECT id, v FROM items`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, v int64
		if err := rows.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		want[id] = v
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}

	var got map[int64]int64
	defer func() {
		if !t.Failed() {
			return
		}
		evs := rcv.received()
		shown := 0
		for k, v := range want {
			if g, ok := got[k]; (!ok || g != v) && shown < 5 {
				shown++
				var hist []string
				for _, ev := range evs {
					if ev.Data.ID == k {
						h := ev.Data.Op
						if ev.Data.V != nil {
							h += fmt.Sprint(" v=", *ev.Data.V)
						}
						hist = append(hist, h)
					}
				}
				t.Logf("row %d: table v=%d, received v=%d (%v); events %v", k, v, g, ok, hist)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok && shown < 10 {
				shown++
				t.Logf("row %d received but not in the table", k)
			}
		}
	}()
	rcv.waitFor(t, 2*time.Minute, "the received state to match the table", func(evs []itemEvent) bool {
		got = map[int64]int64{}
		for _, ev := range evs {
			if ev.Data.Op == "delete" {
				delete(got, ev.Data.ID)
			} else {
				got[ev.Data.ID] = *ev.Data.V
			}
		}
		if len(got) != len(want) {
			return false
		}
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	})

	// Per key, v never goes back and nothing follows a delete.
	evs := rcv.received()
	last := map[int64]int64{}
	deleted := map[int64]bool{}
	reads := 0
	for i, ev := range evs {
		k := ev.Data.ID
		if deleted[k] {
			t.Fatalf("event %d: %s of row %d after its delete", i, ev.Data.Op, k)
		}
		switch ev.Data.Op {
		case "delete":
			deleted[k] = true
		default:
			if v, ok := last[k]; ok && *ev.Data.V < v {
				t.Fatalf("event %d: %s of row %d with v %d after v %d", i, ev.Data.Op, k, *ev.Data.V, v)
			}
			last[k] = *ev.Data.V
		}
		if ev.Data.Op == "read" {
			reads++
		}
	}
	t.Logf("%d events, %d reads, %d rows at the end", len(evs), reads, len(want))
}

// churn updates (v = v + 1), deletes and inserts rows of items in small
// transactions until ctx is done.
func churn(ctx context.Context, db *testenv.DB, n int) error {
	next := int64(n) + 1
	tick := time.NewTicker(2 * time.Millisecond) // about 500 transactions a second
	defer tick.Stop()
	for i := 0; ctx.Err() == nil; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		id := int64(1 + (i*7919)%n)
		var err error
		switch i % 10 {
		case 0:
			_, err = db.Pool.Exec(ctx, `DELETE FROM items WHERE id = $1`, id)
		case 1:
			_, err = db.Pool.Exec(ctx, `INSERT INTO items (id, v) VALUES ($1, 1)`, next)
			next++
		default:
			_, err = db.Pool.Exec(ctx, `UPDATE items SET v = v + 1 WHERE id = $1 OR id = $2`, id, int64(1+(i*104729)%n))
		}
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("changing items: %w", err)
		}
	}
	return nil
}

// TestBackfillWhereAndEndpoint: where limits the rows and endpoint the
// subscriber; the other endpoint, subscribed to the same event, gets none.
func TestBackfillWhereAndEndpoint(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	createItems(t, db, 1000)
	a, b := newItemReceiver(), newItemReceiver()
	srvA, srvB := serve(t, a), serve(t, b)
	_, api := backfillRelay(t, db, itemEvents(`"read"`), endpointBlock("a", srvA.URL, "")+endpointBlock("b", srvB.URL, ""))

	id := api.submit(t, `{"table": "items", "where": "id % 10 = 0", "endpoint": "a"}`)
	out := api.waitStatus(t, id, "completed", time.Minute)
	// Completed means every chunk's deliveries settled: nothing is on its way.
	evs := a.received()
	if len(evs) != 100 {
		t.Fatalf("endpoint a received %d events, want the 100 rows with id %% 10 = 0", len(evs))
	}
	for _, ev := range evs {
		if ev.Data.ID%10 != 0 {
			t.Fatalf("row %d does not meet the where clause", ev.Data.ID)
		}
	}
	if evs := b.received(); len(evs) != 0 {
		t.Fatalf("endpoint b received %d events of a backfill aimed at a", len(evs))
	}
	if out["rows_total"].(float64) != 100 || out["endpoint_id"] != "cfg:a" {
		t.Errorf("backfill %v, want 100 rows total for cfg:a", out)
	}
}

// TestBackfillValidation: bad requests get a clear 400 before anything runs.
func TestBackfillValidation(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	createItems(t, db, 10)
	db.Exec(t, `CREATE TABLE nokey (a int)`)
	db.Exec(t, `CREATE SEQUENCE items_seq`)
	db.Exec(t, `CREATE TABLE bumps (n int)`)
	db.Exec(t, `CREATE FUNCTION bump() RETURNS int LANGUAGE sql AS 'INSERT INTO bumps VALUES (1) RETURNING n'`)
	rcv := newItemReceiver()
	_, api := backfillRelay(t, db, itemEvents(`"read"`)+`
event "contact.created" {
  table = "contacts"
  on    = ["insert"]
}`, endpointBlock("a", serve(t, rcv).URL, ""))
	for _, tc := range []struct{ body, want string }{
		{`{"table": "nope"}`, "unknown table"},
		{`{"table": "nokey"}`, "no primary key"},
		{`{"table": "items", "where": "missing_column > 1"}`, "where clause"},
		{`{"table": "items", "where": "true) UNION ALL (SELECT 1, 1, 'x'"}`, "one SQL condition"},
		{`{"table": "items", "event": "contact.created"}`, "does not read table public.items"},
		{`{"table": "items", "event": "nope"}`, "unknown event"},
		{`{"table": "contacts"}`, "no event reads table public.contacts"},
		{`{"table": "items", "endpoint": "nope"}`, "unknown endpoint"},
		{`{"table": "items", "webhook": "ep_nope"}`, "unknown webhook"},
		{`{"table": "items", "endpoint": "a", "webhook": "ep_x"}`, "not both"},
		// Clauses that would do more than filter rows, refused before
		// anything runs (docs/operations.md, backfills).
		{`{"table": "items", "where": "nextval('items_seq') > 0"}`, "function nextval"},
		{`{"table": "items", "where": "(select pg_sleep(6)) is not null"}`, "a subquery"},
		{`{"table": "items", "where": "bump() > 0"}`, "function bump()"},
		{`{"table": "items", "where": "(select count(*) from pg_stat_activity where pg_terminate_backend(pid)) >= 0"}`, "pg_terminate_backend"},
		// Passes every check, fails when run: refused with the database's message.
		{`{"table": "items", "where": "note::int > 0"}`, "invalid input syntax for type integer"},
	} {
		code, out := api.call(t, "POST", "/v1/backfills", tc.body)
		msg := fmt.Sprint(out["error"])
		if code != http.StatusBadRequest || !strings.Contains(msg, tc.want) {
			t.Errorf("POST %s = %d %s; want 400 saying %q", tc.body, code, msg, tc.want)
		}
	}
	if _, out := api.call(t, "GET", "/v1/backfills", ""); len(out["data"].([]any)) != 0 {
		t.Errorf("refused requests were stored: %v", out["data"])
	}
	var bumps int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM bumps`).Scan(&bumps); err != nil || bumps != 0 {
		t.Errorf("the refused function ran %d times (%v)", bumps, err)
	}
}

// TestBackfillFailuresDoNotHoldTheQueue: a backfill whose reads start
// failing for good fails with the database's message in last_error, one
// whose reads fail for a while says why while it waits, and the backfills
// queued behind either run meanwhile.
func TestBackfillFailuresDoNotHoldTheQueue(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	createItems(t, db, 3000)
	db.Exec(t, `CREATE TABLE others (id bigint PRIMARY KEY, v bigint NOT NULL DEFAULT 0)`)
	db.Exec(t, `INSERT INTO others (id) SELECT generate_series(1, 200)`)
	db.Exec(t, `UPDATE items SET note = id::text`)
	rcv := newItemReceiver()
	_, api := backfillRelay(t, db, itemEvents(`"read"`)+`
event "other.synced" {
  table = "others"
  on    = ["read"]
  data  = { op = op, id = new.id, v = new.v }
}`, fmt.Sprintf(`
endpoint "a" {
  url    = %q
  events = ["item.synced", "other.synced"]
  secret = %q
}`, serve(t, rcv).URL, signing.GenerateSecret()))
	ctx := context.Background()

	// Held: a transaction holds a lock every read of items waits for, so
	// its reads fail on lock_timeout (transient) until it ends.
	lock, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx)
	if _, err := lock.Exec(ctx, `LOCK TABLE items IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	// Submitting reads the table too, so submit before the lock is taken
	// for the first one: a second transaction takes the lock after.
	lock.Rollback(ctx)
	held := api.submit(t, `{"table": "items", "chunk_size": 500}`)
	lock, err = db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx)
	if _, err := lock.Exec(ctx, `LOCK TABLE items IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	behind := api.submit(t, `{"table": "others"}`)
	api.waitStatus(t, behind, "completed", time.Minute)
	_, out := api.call(t, "GET", "/v1/backfills/"+held, "")
	if out["status"] != "running" || !strings.Contains(fmt.Sprint(out["last_error"]), "resuming in") {
		t.Fatalf("the held backfill is %v with last_error %q: want running, saying why it waits", out["status"], out["last_error"])
	}
	lock.Rollback(ctx)
	api.waitStatus(t, held, "completed", time.Minute)

	// Broken: the clause worked when submitted, then a row makes it fail
	// for good: the backfill fails with the database's word and the next runs.
	// The rate makes the runner reach row 2,900 seconds after the update.
	broken := api.submit(t, `{"table": "items", "where": "note::int > 0", "rate": 500, "id_seed": "broken"}`)
	db.Exec(t, `UPDATE items SET note = 'not a number' WHERE id = 2900`)
	next := api.submit(t, `{"table": "others", "id_seed": "again"}`)
	out = api.waitStatus(t, broken, "failed", time.Minute)
	if !strings.Contains(fmt.Sprint(out["last_error"]), "invalid input syntax") {
		t.Errorf("failed backfill's last_error %q does not give the database's reason", out["last_error"])
	}
	api.waitStatus(t, next, "completed", time.Minute)
}

// TestBackfillPauseResumeCancel: a paused backfill stops sending until
// resumed, then completes; a cancelled one stops for good.
func TestBackfillPauseResumeCancel(t *testing.T) {
	t.Parallel()
	const n = 2000
	db := testenv.NewDB(t)
	createItems(t, db, n)
	rcv := newItemReceiver()
	_, api := backfillRelay(t, db, itemEvents(`"read"`), endpointBlock("a", serve(t, rcv).URL, ""))

	id := api.submit(t, `{"table": "items", "rate": 1000, "chunk_size": 100}`)
	rcv.waitFor(t, time.Minute, "a first chunk", func(evs []itemEvent) bool { return len(evs) > 0 })
	if code, out := api.call(t, "POST", "/v1/backfills/"+id+"/pause", ""); code != http.StatusOK || out["status"] != "paused" {
		t.Fatalf("pause = %d %v", code, out)
	}
	// The runner stops after recording the chunks already sent.
	testkit.EventuallyWithin(t, time.Minute, "the runner to stop", func() bool {
		_, out := api.call(t, "GET", "/v1/backfills/"+id, "")
		return out["active"] == false
	})
	paused := rcv.received()
	_, out := api.call(t, "GET", "/v1/backfills/"+id, "")
	if len(paused) >= n || out["rows_done"].(float64) != float64(len(paused)) {
		t.Fatalf("paused after %d events with progress %v; want a partial backfill whose progress counts what was sent", len(paused), out["rows_done"])
	}
	if code, _ := api.call(t, "POST", "/v1/backfills/"+id+"/pause", ""); code != http.StatusConflict {
		t.Errorf("pausing a paused backfill = %d, want 409", code)
	}
	// The same rows again while it is unfinished (a blank where is no
	// where): refused, naming it.
	if code, out := api.call(t, "POST", "/v1/backfills", `{"table": "items", "where": "   "}`); code != http.StatusBadRequest ||
		!strings.Contains(fmt.Sprint(out["error"]), id) {
		t.Errorf("a duplicate of %s = %d %v, want 400 naming it", id, code, out)
	}
	if code, out := api.call(t, "POST", "/v1/backfills/"+id+"/resume", ""); code != http.StatusOK || out["status"] != "pending" {
		t.Fatalf("resume = %d %v", code, out)
	}
	api.waitStatus(t, id, "completed", time.Minute)
	evs, counts := rcv.received(), rcv.deliveries()
	if len(evs) != n {
		t.Fatalf("%d events after resuming, want %d", len(evs), n)
	}
	for wid, c := range counts {
		if c != 1 {
			t.Fatalf("event %s arrived %d times across the pause", wid, c)
		}
	}

	id2 := api.submit(t, `{"table": "items", "rate": 500, "chunk_size": 100, "id_seed": "second"}`)
	rcv.waitFor(t, time.Minute, "a first chunk of the second backfill", func(evs []itemEvent) bool { return len(evs) > n })
	if code, out := api.call(t, "DELETE", "/v1/backfills/"+id2, ""); code != http.StatusOK || out["status"] != "cancelled" {
		t.Fatalf("cancel = %d %v", code, out)
	}
	testkit.EventuallyWithin(t, time.Minute, "the runner to stop", func() bool {
		_, out := api.call(t, "GET", "/v1/backfills/"+id2, "")
		return out["active"] == false
	})
	evs = rcv.received()
	if len(evs) >= 2*n {
		t.Errorf("the cancelled backfill sent all %d rows", n)
	}
	if code, _ := api.call(t, "POST", "/v1/backfills/"+id2+"/resume", ""); code != http.StatusConflict {
		t.Errorf("resuming a cancelled backfill = %d, want 409", code)
	}
}

// TestBackfillRate: with a rate, rows are read no faster than it allows
// (chunks of at most a quarter second of it, each when its time comes).
func TestBackfillRate(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	createItems(t, db, 600)
	rcv := newItemReceiver()
	_, api := backfillRelay(t, db, itemEvents(`"read"`), endpointBlock("a", serve(t, rcv).URL, ""))
	began := time.Now()
	id := api.submit(t, `{"table": "items", "rate": 1000}`)
	api.waitStatus(t, id, "completed", time.Minute)
	// 250 rows at 0s, 250 more at 0.25s, the last 100 at 0.5s at the soonest.
	if took := time.Since(began); took < 500*time.Millisecond {
		t.Errorf("600 rows at 1000/s took %v, less than the 0.5s the rate allows", took)
	}
	if evs := rcv.received(); len(evs) != 600 {
		t.Errorf("%d events, want 600", len(evs))
	}
}

// TestBackfillRateCapsEveryWindow: --rate caps the rows over any one-second
// window, also right after a stall (here the endpoint stops answering for
// 1.5 s): the backfill does not catch up in a burst.
func TestBackfillRateCapsEveryWindow(t *testing.T) {
	t.Parallel()
	const n, rate = 3000, 1000
	db := testenv.NewDB(t)
	createItems(t, db, n)
	var (
		mu       sync.Mutex
		arrivals []time.Time
		stall    = make(chan struct{})
		stalled  sync.Once
	)
	rcv := newItemReceiver()
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		k := len(arrivals)
		mu.Unlock()
		if k == 1000 {
			stalled.Do(func() { time.AfterFunc(1500*time.Millisecond, func() { close(stall) }) })
		}
		if k >= 1000 {
			<-stall
		}
		rcv.ServeHTTP(w, r)
	}))
	_, api := backfillRelay(t, db, itemEvents(`"read"`), endpointBlock("a", srv.URL, ""))
	id := api.submit(t, fmt.Sprintf(`{"table": "items", "rate": %d}`, rate))
	api.waitStatus(t, id, "completed", time.Minute)
	mu.Lock()
	defer mu.Unlock()
	// Every row once: arrivals may count a retried delivery twice, so
	// count the distinct ids.
	if got := len(rcv.received()); got != n {
		t.Fatalf("%d distinct events, want %d", got, n)
	}
	most, j := 0, 0
	for i := range arrivals {
		for arrivals[i].Sub(arrivals[j]) >= time.Second {
			j++
		}
		most = max(most, i-j+1)
	}
	// Reads are capped at rate + a twentieth of it over any second; the
	// deliveries of the chunk in flight when a second starts may land in
	// it too (two chunks of a twentieth each).
	if limit := rate + 3*rate/20; most > limit {
		t.Fatalf("%d events arrived within one second at --rate %d/s, want at most %d", most, rate, limit)
	}
	t.Logf("most events in any one-second window: %d at --rate %d/s", most, rate)
}

// TestBackfillSurvivesReconnects: the replication connection is cut twice
// while a backfill runs; the reader reconnects, the watermarks come
// through, and every row arrives under one id.
func TestBackfillSurvivesReconnects(t *testing.T) {
	t.Parallel()
	const n = 5000
	db := testenv.NewDB(t)
	createItems(t, db, n)
	rcv := newItemReceiver()
	h, api := backfillRelay(t, db, itemEvents(`"read"`), endpointBlock("a", serve(t, rcv).URL, ""))
	id := api.submit(t, `{"table": "items", "rate": 2500, "chunk_size": 200}`)
	for cut := 1; cut <= 2; cut++ {
		rcv.waitFor(t, time.Minute, fmt.Sprintf("%d rows before cut %d", cut*n/3, cut), func(evs []itemEvent) bool { return len(evs) >= cut*n/3 })
		db.Exec(t, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`, h.slot)
	}
	api.waitStatus(t, id, "completed", 2*time.Minute)
	evs, counts := rcv.received(), rcv.deliveries()
	rows := map[int64]bool{}
	for _, ev := range evs {
		rows[ev.Data.ID] = true
	}
	if len(rows) != n || len(evs) != n {
		t.Fatalf("%d rows under %d ids, want %d rows each under one id", len(rows), len(evs), n)
	}
	resent := 0
	for _, c := range counts {
		resent += c - 1
	}
	t.Logf("%d rows, %d deliveries repeated across 2 reconnections", n, resent)
}
