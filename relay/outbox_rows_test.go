package relay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walhook/walhook/cdc/outbox"
	"github.com/walhook/walhook/internal/metrics"
	"github.com/walhook/walhook/internal/outboxevents"
	"github.com/walhook/walhook/internal/receiver"
	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/store"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

// handMadeOutbox is an outbox table as an application might make it by
// hand: every column but the id nullable, the payload text.
const handMadeOutbox = `CREATE TABLE webhook_outbox (
	id         bigserial PRIMARY KEY,
	event_type text,
	key        text,
	tenant     text,
	payload    text,
	created_at timestamptz NOT NULL DEFAULT now()
)`

// badRows are the bad rows the tests insert, by row id, with the reason
// their failed evaluation gives in mode ("polling" or "slot"). Rows 1, 8
// and 9 are good; row 7 is of a type no endpoint wants.
func badRows(mode string) map[int]string {
	rows := map[int]string{
		2: "outbox row 2: event_type is NULL",
		3: "outbox row 3: event_type is empty",
		4: "outbox row 4: payload is not a JSON object or array: invalid character 'n'",
		5: "outbox row 5: payload is not a JSON object or array: it is a JSON string",
		6: "outbox row 6: payload is NULL",
		// A captured change (trigger fallback) that is not one: polling
		// says so; the slot path does not decode captured changes.
		10: "outbox row 10: it is not a captured change",
	}
	if mode == "slot" {
		rows[10] = "outbox row 10: it holds a captured change"
	}
	return rows
}

// TestOutboxBadRows: in polling and through the slot, bad rows among good
// ones (no event_type, a payload that is not a JSON object or array, a
// captured change that cannot be read) become failed evaluations with
// their row id and reason, a row no
// endpoint wants is counted as skipped, the good rows around them arrive
// with well-formed bodies, and every row is consumed. A replay of a bad
// row evaluates it again (and fails again).
func TestOutboxBadRows(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"polling", "slot"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			db := testenv.NewDB(t)
			db.Exec(t, handMadeOutbox)
			secret := signing.GenerateSecret()
			rec := receiver.New(receiver.Options{Secrets: []string{secret}})
			source := fmt.Sprintf(`
  mode = "outbox"
  outbox {
    table         = %q
    poll_interval = "100ms"
  }`, outboxTable)
			if mode == "slot" {
				slot := testenv.Name(t, "slot")
				source = fmt.Sprintf(`
  slot        = %q
  publication = %q
  outbox {
    table           = %q
    delete_consumed = true
  }`, slot, slot, outboxTable)
			}
			reg := prometheus.NewRegistry()
			opts := testOptions
			opts.Metrics = metrics.New(reg)
			h := runConfig(t, db, fmt.Sprintf(`
source "postgres" {
  url = %q
  %s
}
endpoint "app" {
  url    = %q
  events = ["thing.*"]
  secret = %q
}
delivery {
  shutdown_timeout = "10s"
}
`, db.URL, source, serve(t, rec).URL, secret), opts)
			if mode == "slot" {
				h.waitStreaming(t)
			}
			db.Exec(t, `INSERT INTO webhook_outbox (event_type, key, tenant, payload) VALUES
				('thing.created', 'a', 'org_1', '{"n": 1}'),
				(NULL, 'a', NULL, '{"n": 2}'),
				('', NULL, NULL, '{"n": 3}'),
				('thing.created', 'a', NULL, '{not json}'),
				('thing.created', NULL, NULL, '"scalar"'),
				('thing.created', NULL, NULL, NULL),
				('other.thing', NULL, NULL, '{"n": 7}'),
				('thing.created', 'a', NULL, '[8]')`)
			db.Exec(t, `INSERT INTO webhook_outbox (id, event_type, payload) VALUES (10, '[walhook.change]', '{"schema": "public"}')`)
			db.Exec(t, `INSERT INTO webhook_outbox (id, event_type, payload) VALUES (9, 'thing.created', '{"n": 9}')`)

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := rec.WaitFor(ctx, 3); err != nil {
				t.Fatal(err)
			}
			var datas []string
			for _, r := range rec.Received() {
				var body struct {
					Type string          `json:"type"`
					Data json.RawMessage `json:"data"`
				}
				if !r.Verified || json.Unmarshal(r.Body, &body) != nil || body.Type != "thing.created" {
					t.Errorf("delivery %s (verified %t): %s", r.ID, r.Verified, r.Body)
				}
				datas = append(datas, string(body.Data))
			}
			sort.Strings(datas)
			if want := []string{`[8]`, `{"n": 1}`, `{"n": 9}`}; strings.Join(datas, " ") != strings.Join(want, " ") {
				t.Errorf("delivered data %v, want %v", datas, want)
			}

			st := h.stateStore(t)
			bad := badRows(mode)
			var fs []store.FailedEvaluation
			testkit.EventuallyWithin(t, 30*time.Second, "the bad rows' failed evaluations", func() bool {
				var err error
				fs, _, err = st.ListEvaluations(ctx, store.EvaluationFilter{Rule: "outbox"})
				return err == nil && len(fs) == len(bad)
			})
			for _, f := range fs {
				var row struct {
					ID int `json:"id"`
				}
				if err := json.Unmarshal(f.Row, &row); err != nil || !strings.HasPrefix(f.Error, bad[row.ID]) {
					t.Errorf("failed evaluation of row %d: %q, want %q (row %s)", row.ID, f.Error, bad[row.ID], f.Row)
				}
				if f.Table != outboxTable || !f.Replayable || f.EventID == "" {
					t.Errorf("failed evaluation %+v: not kept for a replay", f)
				}
			}
			testkit.EventuallyWithin(t, 30*time.Second, "every row consumed and the skip counted", func() bool {
				skipped, _ := seriesValue(t, reg, `walhook_outbox_rows_skipped_total{reason="no_subscriber"}`)
				return outboxRows(t, db) == 0 && skipped == 1
			})
			if n := len(rec.Received()); n != 3 {
				t.Errorf("%d deliveries, want 3", n)
			}

			// A replay evaluates the kept row again, with today's checks:
			// still no event_type, so it fails again and says so.
			var null store.FailedEvaluation
			for _, f := range fs {
				if strings.Contains(f.Error, "event_type is NULL") {
					null = f
				}
			}
			if q, err := st.RequestReplays(ctx, []int64{null.ID}); err != nil || len(q) != 1 {
				t.Fatalf("RequestReplays: %v, %v", q, err)
			}
			h.relay.WakeReplays()
			testkit.EventuallyWithin(t, 30*time.Second, "the replay to fail again", func() bool {
				f, err := st.GetEvaluation(ctx, null.ID)
				return err == nil && f.Status == store.EvaluationFailed && f.Replays == 1 && strings.Contains(f.Error, "event_type is NULL")
			})
		})
	}
}

// TestOutboxIDsAreUnique: row 1 of the outbox of two databases on one
// cluster, and row 1 again after TRUNCATE ... RESTART IDENTITY, are three
// events with three ids, each the id EventID gives the row.
func TestOutboxIDsAreUnique(t *testing.T) {
	t.Parallel()
	c := newCounter()
	url := serve(t, c).URL
	dbs := []*testenv.DB{testenv.NewDB(t), testenv.NewDB(t)}
	var want []string
	for _, db := range dbs {
		initOutbox(t, db)
		runConfig(t, db, outboxConfig(db, url, "100ms", ""))
		ids, events := insertOutboxEvents(t, db, 1, 1)
		if ids[0] != 1 {
			t.Fatalf("first row id %d", ids[0])
		}
		want = append(want, events[0])
	}
	c.waitDistinct(t, 2, 60*time.Second)
	testkit.EventuallyWithin(t, 30*time.Second, "the first outbox to be emptied", func() bool { return outboxRows(t, dbs[0]) == 0 })
	dbs[0].Exec(t, `TRUNCATE webhook_outbox RESTART IDENTITY`)
	ids, events := insertOutboxEvents(t, dbs[0], 1, 1)
	if ids[0] != 1 {
		t.Fatalf("row id after the reset %d", ids[0])
	}
	want = append(want, events[0])
	c.waitDistinct(t, 3, 60*time.Second)
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, id := range want {
		if c.ids[id] != 1 {
			t.Errorf("row 1 (%d): %d deliveries with id %s; got %v", i, c.ids[id], id, c.ids)
		}
	}
}

// TestOutboxSlotAndPollingGiveOneID: a row delivered through the slot,
// then claimed again by polling (the slot path leaves it in the table), is
// delivered under the same webhook-id both times.
func TestOutboxSlotAndPollingGiveOneID(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	initOutbox(t, db)
	c := newCounter()
	url := serve(t, c).URL
	slot := testenv.Name(t, "slot")
	h := runConfig(t, db, fmt.Sprintf(`
source "postgres" {
  url         = %q
  slot        = %q
  publication = %q
  outbox {
    table = %q
  }
}
endpoint "app" {
  url    = %q
  events = ["*"]
  secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
}
`, db.URL, slot, slot, outboxTable, url))
	h.waitStreaming(t)
	_, events := insertOutboxEvents(t, db, 1, 3)
	c.waitDistinct(t, 3, 60*time.Second)
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if n := outboxRows(t, db); n != 3 {
		t.Fatalf("%d rows left by the slot path, want 3", n)
	}
	runConfig(t, db, outboxConfig(db, url, "100ms", ""))
	testkit.EventuallyWithin(t, 60*time.Second, "polling to deliver the rows again", func() bool { return c.count() == 6 })
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range events {
		if c.ids[id] != 2 {
			t.Errorf("event %s delivered %d times under its id; got %v", id, c.ids[id], c.ids)
		}
	}
}

// TestOutboxBacklog: the backlog is read exactly up to the cap and
// estimated beyond it; a running poller whose endpoint holds its batch
// shows the rows waiting and the age of the oldest in /metrics, and both
// fall to 0 once the rows are delivered.
func TestOutboxBacklog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("read", func(t *testing.T) {
		t.Parallel()
		db := testenv.NewDB(t)
		initOutbox(t, db)
		b, err := outbox.ReadBacklog(ctx, db.Pool, outboxTable)
		if err != nil || b.Rows != 0 || b.Estimated || b.OldestAge != 0 {
			t.Fatalf("empty table: %+v, %v", b, err)
		}
		db.Exec(t, `INSERT INTO webhook_outbox (event_type, payload, created_at)
			SELECT 'thing.created', '{}', now() - interval '1 hour' + g * interval '1 second' FROM generate_series(1, 3) g`)
		b, err = outbox.ReadBacklog(ctx, db.Pool, outboxTable)
		if err != nil || b.Rows != 3 || b.Estimated || b.OldestAge < 3590*time.Second || b.OldestAge > 3700*time.Second {
			t.Fatalf("three rows, the oldest an hour old: %+v, %v", b, err)
		}
		db.Exec(t, `INSERT INTO webhook_outbox (event_type, payload) SELECT 'thing.created', '{}' FROM generate_series(1, 20000)`)
		db.Exec(t, `ANALYZE webhook_outbox`)
		b, err = outbox.ReadBacklog(ctx, db.Pool, outboxTable)
		if err != nil || !b.Estimated || b.Rows < 15000 || b.Rows > 25000 {
			t.Fatalf("20003 rows: %+v, %v", b, err)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		t.Parallel()
		db := testenv.NewDB(t)
		initOutbox(t, db)
		release := make(chan struct{})
		held := make(chan struct{}, 1)
		c := newCounter()
		srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case held <- struct{}{}:
			default:
			}
			<-release
			c.ServeHTTP(w, r)
		}))
		reg := prometheus.NewRegistry()
		opts := testOptions
		opts.Metrics = metrics.New(reg)
		runConfig(t, db, outboxConfig(db, srv.URL, "100ms", ""), opts)
		var once sync.Once
		releaseAll := func() { once.Do(func() { close(release) }) }
		t.Cleanup(releaseAll) // before the relay stops, should the test fail first
		db.Exec(t, `INSERT INTO webhook_outbox (event_type, payload, created_at)
			SELECT 'thing.created', '{}', now() - interval '90 seconds' FROM generate_series(1, 5)`)
		<-held
		testkit.EventuallyWithin(t, 30*time.Second, "the gauges to show the held rows", func() bool {
			waiting, ok := seriesValue(t, reg, "walhook_outbox_rows_waiting")
			age, _ := seriesValue(t, reg, "walhook_outbox_oldest_age_seconds")
			return ok && waiting == 5 && age >= 90
		})
		releaseAll()
		c.waitDistinct(t, 5, 30*time.Second)
		testkit.EventuallyWithin(t, 30*time.Second, "the gauges to fall to 0", func() bool {
			waiting, _ := seriesValue(t, reg, "walhook_outbox_rows_waiting")
			age, ok := seriesValue(t, reg, "walhook_outbox_oldest_age_seconds")
			return ok && waiting == 0 && age == 0
		})
	})
}

// TestTriggerRuleFailureReplay: with the trigger fallback, a rule that
// fails on a captured change is a failed evaluation; the same rule failing
// again on a replay replaces it (it is kept under the row's position, not
// a new one); after a restart with the rule fixed, the replay delivers the
// event under the id the row's event would have had.
func TestTriggerRuleFailureReplay(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	initOutbox(t, db)
	sql, err := outbox.TriggersSQL(outboxTable, []string{"public.contacts"})
	if err != nil {
		t.Fatal(err)
	}
	db.Exec(t, sql)
	rec := receiver.New(receiver.Options{Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}) // outboxConfig's
	url := serve(t, rec).URL
	config := func(when string) string {
		return outboxConfig(db, url, "100ms", fmt.Sprintf(`
event "contact.numbered" {
  table = "contacts"
  on    = ["insert"]
  when  = %s
}`, when))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	origin, err := outbox.ReadOrigin(ctx, db.Pool, outboxTable)
	if err != nil {
		t.Fatal(err)
	}
	broken := runConfig(t, db, config(`tonumber(new.first_name) > 0`))
	db.Exec(t, `INSERT INTO contacts (organization_id, first_name) VALUES (1, '42'), (1, 'Ada')`)
	var rowID int64
	var created time.Time
	if err := db.Pool.QueryRow(ctx, `SELECT id, created_at FROM webhook_outbox WHERE payload->>'new' LIKE '%Ada%'`).Scan(&rowID, &created); err != nil {
		t.Fatal(err)
	}
	if err := rec.WaitFor(ctx, 1); err != nil {
		t.Fatal(err)
	}
	st := broken.stateStore(t)
	var fs []store.FailedEvaluation
	testkit.EventuallyWithin(t, 30*time.Second, "the rule's failed evaluation", func() bool {
		fs, _, err = st.ListEvaluations(ctx, store.EvaluationFilter{Rule: "contact.numbered"})
		return err == nil && len(fs) == 1
	})
	want := outboxevents.EventID(origin, rowID, created, "contact.numbered")
	if f := fs[0]; f.EventID != want || !f.Replayable || f.Table != "public.contacts" {
		t.Fatalf("failed evaluation %+v, want event %s", f, want)
	}
	if q, err := st.RequestReplays(ctx, []int64{fs[0].ID}); err != nil || len(q) != 1 {
		t.Fatalf("RequestReplays: %v, %v", q, err)
	}
	broken.relay.WakeReplays()
	testkit.EventuallyWithin(t, 30*time.Second, "the replay to fail again, in place", func() bool {
		f, err := st.GetEvaluation(ctx, fs[0].ID)
		all, _, lerr := st.ListEvaluations(ctx, store.EvaluationFilter{})
		return err == nil && lerr == nil && f.Status == store.EvaluationFailed && f.Replays == 1 && len(all) == 1
	})
	testkit.EventuallyWithin(t, 30*time.Second, "the outbox to be emptied", func() bool { return outboxRows(t, db) == 0 })
	if err := broken.stop(); err != nil {
		t.Fatal(err)
	}

	fixed := runConfig(t, db, config(`try(tonumber(new.first_name) > 0, true)`))
	if q, err := fixed.stateStore(t).RequestReplays(ctx, []int64{fs[0].ID}); err != nil || len(q) != 1 {
		t.Fatalf("RequestReplays: %v, %v", q, err)
	}
	fixed.relay.WakeReplays()
	if err := rec.WaitFor(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if got := rec.Received()[1]; got.ID != want || !got.Verified || !strings.Contains(string(got.Body), `"Ada"`) {
		t.Errorf("replayed %s (verified %t): %s; want %s", got.ID, got.Verified, got.Body, want)
	}
}
