package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/walhook/walhook/cdc/outbox"
	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/outboxevents"
	"github.com/walhook/walhook/internal/store"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

const outboxTable = "public.webhook_outbox"

// outboxConfig is a polling config for db with one endpoint to url.
func outboxConfig(db *testenv.DB, url, poll, extra string) string {
	return outboxConfigBatch(db, url, poll, 50, extra)
}

// outboxConfigBatch is outboxConfig with a batch size.
func outboxConfigBatch(db *testenv.DB, url, poll string, batch int, extra string) string {
	return fmt.Sprintf(`
source "postgres" {
  url  = %q
  mode = "outbox"
  outbox {
    table         = %q
    poll_interval = %q
    batch_size    = %d
  }
}
delivery {
  shutdown_timeout = "10s"
}
endpoint "app" {
  url    = %q
  events = ["*"]
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
}
%s
`, db.URL, outboxTable, poll, batch, url, extra)
}

func initOutbox(t testing.TB, db *testenv.DB) {
	t.Helper()
	sql, err := outbox.TableSQL(outboxTable)
	if err != nil {
		t.Fatal(err)
	}
	db.Exec(t, sql)
}

// insertOutbox commits n outbox rows whose payload is {"n": first+i}.
func insertOutbox(t testing.TB, db *testenv.DB, first, n int) []int64 {
	t.Helper()
	ids, _ := insertOutboxEvents(t, db, first, n)
	return ids
}

// insertOutboxEvents is insertOutbox that also returns the event id each
// row's event has.
func insertOutboxEvents(t testing.TB, db *testenv.DB, first, n int) ([]int64, []string) {
	t.Helper()
	origin, err := outbox.ReadOrigin(context.Background(), db.Pool, outboxTable)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.Pool.Query(context.Background(),
		`INSERT INTO webhook_outbox (event_type, key, tenant, payload)
		 SELECT 'thing.created', 'k' || g, 'org1', jsonb_build_object('n', g)
		 FROM generate_series($1::int, $2::int) g RETURNING id, created_at`, first, first+n-1)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	var events []string
	for rows.Next() {
		var id int64
		var created time.Time
		if err := rows.Scan(&id, &created); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		events = append(events, outboxevents.EventID(origin, id, created, ""))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids, events
}

func outboxRows(t testing.TB, db *testenv.DB) int {
	t.Helper()
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM webhook_outbox`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOutboxPollingDeliversCommittedRowsOnce: committed rows are delivered
// once each, with the row's type, data and deterministic id, and deleted;
// rows of a rolled-back transaction never are.
func TestOutboxPollingDeliversCommittedRowsOnce(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	initOutbox(t, db)
	c := newCounter()
	srv := serve(t, c)
	var mu sync.Mutex
	bodies := map[string]json.RawMessage{}
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies[r.Header.Get("webhook-id")] = b
		mu.Unlock()
		c.ServeHTTP(w, r)
	})
	runConfig(t, db, outboxConfig(db, srv.URL, "200ms", ""))

	// A rolled-back transaction first: its rows must never appear.
	tx, err := db.Pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(context.Background(), `INSERT INTO webhook_outbox (event_type, payload) SELECT 'thing.rolledback', '{}' FROM generate_series(1, 20)`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	var events []string
	for i := 0; i < 10; i++ {
		is, es := insertOutboxEvents(t, db, i*20+1, 20)
		ids, events = append(ids, is...), append(events, es...)
	}
	c.waitDistinct(t, len(ids), 60*time.Second)
	testkit.EventuallyWithin(t, 30*time.Second, "the outbox to be emptied", func() bool { return outboxRows(t, db) == 0 })

	c.mu.Lock()
	defer c.mu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	if c.n != len(ids) {
		t.Errorf("%d deliveries for %d rows", c.n, len(ids))
	}
	for i, id := range ids {
		wid := events[i]
		if c.ids[wid] != 1 {
			t.Fatalf("row %d: %d deliveries with id %s", id, c.ids[wid], wid)
		}
		var body struct {
			Type string `json:"type"`
			Data struct {
				N int `json:"n"`
			} `json:"data"`
		}
		if err := json.Unmarshal(bodies[wid], &body); err != nil {
			t.Fatal(err)
		}
		if body.Type != "thing.created" || body.Data.N != i+1 {
			t.Errorf("row %d: body %s", id, bodies[wid])
		}
	}
}

// TestOutboxWakesOnNotify: with a poll interval of an hour, only the
// notification can deliver a new row; with notifications off (the trigger
// disabled), the fallback poll still does.
func TestOutboxWakesOnNotify(t *testing.T) {
	t.Parallel()
	t.Run("notify", func(t *testing.T) {
		t.Parallel()
		db := testenv.NewDB(t)
		initOutbox(t, db)
		c := newCounter()
		h := runConfig(t, db, outboxConfig(db, serve(t, c).URL, "1h", ""))
		testkit.EventuallyWithin(t, 30*time.Second, "the poller to listen", func() bool {
			return h.ready() == nil && listening(t, db)
		})
		for i := 1; i <= 3; i++ {
			insertOutbox(t, db, i, 1)
			c.waitDistinct(t, i, 30*time.Second)
		}
	})
	t.Run("fallback poll", func(t *testing.T) {
		t.Parallel()
		db := testenv.NewDB(t)
		initOutbox(t, db)
		db.Exec(t, `ALTER TABLE webhook_outbox DISABLE TRIGGER walhook_notify`)
		c := newCounter()
		runConfig(t, db, outboxConfig(db, serve(t, c).URL, "200ms", ""))
		for i := 1; i <= 3; i++ {
			insertOutbox(t, db, i, 1)
			c.waitDistinct(t, i, 30*time.Second)
		}
	})
}

// TestOutboxTwoPollers: two relays polling one table deliver every row,
// each exactly once when nothing crashes.
func TestOutboxTwoPollers(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	initOutbox(t, db)
	c := newCounter()
	url := serve(t, c).URL
	var h *running
	for range 2 {
		h = runConfig(t, db, outboxConfig(db, url, "100ms", ""))
	}
	testkit.Eventually(t, "both pollers registered", func() bool {
		ins, err := h.stateStore(t).Instances(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return len(ins) == 2 && ins[0].Alive && ins[0].Role == store.RolePoller && ins[1].Alive && ins[1].Role == store.RolePoller
	})
	var ids []int64
	var events []string
	for i := 0; i < 40; i++ {
		is, es := insertOutboxEvents(t, db, i*25+1, 25)
		ids, events = append(ids, is...), append(events, es...)
	}
	c.waitDistinct(t, len(ids), 60*time.Second)
	testkit.EventuallyWithin(t, 30*time.Second, "the outbox to be emptied", func() bool { return outboxRows(t, db) == 0 })
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, id := range ids {
		if n := c.ids[events[i]]; n != 1 {
			t.Errorf("row %d delivered %d times", id, n)
		}
	}
}

// TestOutboxThroughSlot: in logical mode, inserts into the outbox table
// arrive through the slot as ready-made events with the ids polling gives,
// next to rule events, and delete_consumed empties the table.
func TestOutboxThroughSlot(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	initOutbox(t, db)
	c := newCounter()
	slot := testenv.Name(t, "slot")
	h := runConfig(t, db, fmt.Sprintf(`
source "postgres" {
  url         = %q
  slot        = %q
  publication = %q
  outbox {
    table           = %q
    delete_consumed = true
  }
}
event "contact.created" {
  table = "contacts"
  on    = ["insert"]
}
endpoint "app" {
  url    = %q
  events = ["*"]
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
}
`, db.URL, slot, slot, outboxTable, serve(t, c).URL))
	h.waitStreaming(t)

	ids, events := insertOutboxEvents(t, db, 1, 30)
	db.Exec(t, `BEGIN; INSERT INTO contacts (organization_id, first_name) VALUES (1, 'a');
		INSERT INTO webhook_outbox (event_type, payload) VALUES ('contact.welcomed', '{"n": 0}'); COMMIT`)
	// One transaction the reader hands over in three pieces: its rows are
	// deleted once all of it is settled.
	more, moreEvents := insertOutboxEvents(t, db, 100, 2500)
	ids, events = append(ids, more...), append(events, moreEvents...)
	c.waitDistinct(t, len(ids)+2, 60*time.Second)
	testkit.EventuallyWithin(t, 30*time.Second, "consumed rows to be deleted", func() bool { return outboxRows(t, db) == 0 })
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, id := range ids {
		if n := c.ids[events[i]]; n != 1 {
			t.Errorf("row %d delivered %d times under its outbox id", id, n)
		}
	}
}

// changeEvents are rules over the sample schema and a table of many types,
// for comparing the trigger fallback with the slot.
const changeEvents = `
event "contact.created" {
  table = "contacts"
  on    = ["insert"]
}
event "contact.updated" {
  table = "contacts"
  on    = ["update"]
  when  = length(changed) > 0
  data  = { id = new.id, changed = changed, before = old.email, after = new.email }
}
event "contact.deleted" {
  table = "contacts"
  on    = ["delete"]
}
event "deal.stage.changed" {
  table  = "deals"
  on     = ["update"]
  when   = old.stage != new.stage
  key    = new.id
  tenant = new.organization_id
  data   = merge(new, { previous_stage = old.stage })
}
event "deal.created" {
  table = "deals"
  on    = ["insert"]
}
event "invoices.truncated" {
  table = "invoices"
  on    = ["truncate"]
}
event "thing.changed" {
  table = "things"
  on    = ["insert", "update", "delete"]
  data  = { op = op, new = new, old = old }
}
`

const thingsDDL = `
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE TABLE things (
    id     int PRIMARY KEY,
    name   text,
    flag   boolean,
    ratio  float8,
    small  real,
    amount numeric,
    born   date,
    at     timestamp,
    attz   timestamptz,
    blob   bytea,
    tags   text[],
    nums   int[],
    doc    jsonb,
    u      uuid,
    span   interval,
    feel   mood,
    feels  mood[]
);
`

const changeWrites = `
INSERT INTO contacts (organization_id, first_name, email, created_at, updated_at)
  VALUES (1, 'Ada', 'ada@example.com', '2024-01-02 03:04:05.678+00', '2024-01-02 03:04:05+00'),
         (2, 'Bob "the" builder', NULL, '2024-01-02 03:04:05+02', '2024-01-02 03:04:05+00');
UPDATE contacts SET email = 'ada@new.example' WHERE first_name = 'Ada';
UPDATE contacts SET phone = phone WHERE first_name = 'Ada';
INSERT INTO deals (organization_id, contact_id, title, amount, metadata)
  VALUES (7, 1, 'Big, deal', 1234.50, '{"source": "web", "n": [1, 2.5, null]}');
UPDATE deals SET stage = 'won', closed_at = '2024-02-03 04:05:06.000001+00' WHERE id = 1;
INSERT INTO invoices (deal_id, amount) VALUES (1, 10);
TRUNCATE invoices;
DELETE FROM contacts WHERE id = 2;
INSERT INTO things VALUES (1, 'x,y (z)', true, 1.5, 0.1, 12345678901234567890.123456789, '2024-03-04',
  '2024-03-04 05:06:07.5', '2024-03-04 05:06:07-05', '\x00ff10', '{"a b","c,d",NULL}', '{1,2,3}',
  '{"k": {"deep": true}}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1 day 02:00:00', 'happy', '{happy,sad}');
INSERT INTO things (id) VALUES (2);
UPDATE things SET name = NULL, ratio = 'NaN', born = 'infinity' WHERE id = 1;
DELETE FROM things WHERE id = 2;
`

// capturedEvent is what the comparison sees of an event.
type capturedEvent struct {
	Type   string          `json:"type"`
	Key    string          `json:"key"`
	Tenant string          `json:"tenant"`
	Data   json.RawMessage `json:"data"`
}

// recorder keeps the bodies it receives (type, key, tenant and data).
type recorder struct {
	mu     sync.Mutex
	events []string
	wake   chan struct{}
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var ev capturedEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var data any
	dec := json.NewDecoder(bytes.NewReader(ev.Data))
	dec.UseNumber() // compare numbers exactly
	_ = dec.Decode(&data)
	canon, _ := json.Marshal(map[string]any{"type": ev.Type, "key": ev.Key, "tenant": ev.Tenant, "data": data})
	rec.mu.Lock()
	rec.events = append(rec.events, string(canon))
	rec.mu.Unlock()
	select {
	case rec.wake <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rec *recorder) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		rec.mu.Lock()
		got := len(rec.events)
		rec.mu.Unlock()
		if got >= n {
			break
		}
		select {
		case <-rec.wake:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("received %d events of %d", got, n)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := append([]string(nil), rec.events...)
	sort.Strings(out)
	return out
}

const recordEndpoint = `
endpoint "rec" {
  url    = %q
  events = ["*"]
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
  body   = { type = event.type, key = event.key, tenant = event.tenant, data = event.data }
}
`

// TestTriggersMatchLogical runs the same writes on two databases, one read
// through the slot and one through the trigger fallback and polling, and
// compares the events: types, keys, tenants and data.
func TestTriggersMatchLogical(t *testing.T) {
	t.Parallel()
	const want = 11 // events changeWrites makes under changeEvents

	logicalDB := testenv.NewDB(t)
	logicalDB.Exec(t, thingsDDL)
	logicalDB.Exec(t, `ALTER TABLE things REPLICA IDENTITY FULL`)
	slotRec := &recorder{wake: make(chan struct{}, 1)}
	slot := testenv.Name(t, "slot")
	h := runConfig(t, logicalDB, fmt.Sprintf(`
source "postgres" {
  url         = %q
  slot        = %q
  publication = %q
}
%s
`+recordEndpoint, logicalDB.URL, slot, slot, changeEvents, serve(t, slotRec).URL))
	h.waitStreaming(t)

	triggerDB := testenv.NewDB(t)
	triggerDB.Exec(t, thingsDDL)
	triggerDB.Exec(t, `ALTER TABLE things REPLICA IDENTITY FULL`)
	initOutbox(t, triggerDB)
	cfgText := outboxConfig(triggerDB, "http://127.0.0.1:1/unused", "200ms", changeEvents)
	cfg, diags := config.Parse([]byte(cfgText), "t.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var tables []string
	for _, e := range cfg.Events {
		tables = append(tables, e.QualifiedTable())
	}
	sql, err := outbox.TriggersSQL(outboxTable, tables)
	if err != nil {
		t.Fatal(err)
	}
	triggerDB.Exec(t, sql)
	trigRec := &recorder{wake: make(chan struct{}, 1)}
	runConfig(t, triggerDB, fmt.Sprintf(`
source "postgres" {
  url  = %q
  mode = "outbox"
  outbox {
    table         = %q
    poll_interval = "200ms"
  }
}
%s
`+recordEndpoint, triggerDB.URL, outboxTable, changeEvents, serve(t, trigRec).URL))

	for _, db := range []*testenv.DB{logicalDB, triggerDB} {
		// Another session time zone and date style than the reader's.
		db.Exec(t, `SET TimeZone = 'America/New_York'; SET DateStyle = 'German';`+changeWrites)
	}
	fromSlot := slotRec.wait(t, want)
	fromTriggers := trigRec.wait(t, want)
	if len(fromSlot) != want || len(fromTriggers) != want {
		t.Errorf("slot gave %d events, triggers %d; want %d", len(fromSlot), len(fromTriggers), want)
	}
	if testing.Verbose() {
		for _, e := range fromTriggers {
			t.Log(e)
		}
	}
	for i := 0; i < max(len(fromSlot), len(fromTriggers)); i++ {
		var a, b string
		if i < len(fromSlot) {
			a = fromSlot[i]
		}
		if i < len(fromTriggers) {
			b = fromTriggers[i]
		}
		if a != b {
			t.Errorf("event %d differs:\n  slot:     %s\n  triggers: %s", i, a, b)
		}
	}
}

// listening reports whether a session of db has run LISTEN on the outbox
// channel and waits (the poller's listener).
func listening(t *testing.T, db *testenv.DB) bool {
	t.Helper()
	var n int
	err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state = 'idle' AND query = $1`, "LISTEN "+outbox.Channel).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}
