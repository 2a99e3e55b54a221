package relay_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/walhook/walhook/internal/config"
	"github.com/walhook/walhook/internal/store"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/relay"
	"github.com/walhook/walhook/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// events are the rules most tests use, over the sample CRM schema.
const events = `
event "contact.created" {
  table = "contacts"
  on    = ["insert"]
}
event "contact.updated" {
  table = "contacts"
  on    = ["update"]
  when  = length(changed) > 0
}
event "deal.created" {
  table = "deals"
  on    = ["insert"]
}
event "deal.stage.changed" {
  table  = "deals"
  on     = ["update"]
  when   = old.stage != new.stage
  key    = new.id
  tenant = new.organization_id
  data   = merge(new, { previous_stage = old.stage })
}
`

// running is a relay running in this test process, with the test's own
// handle on its state store.
type running struct {
	db     *testenv.DB
	relay  *relay.Relay
	schema string
	slot   string
	cancel context.CancelFunc
	done   chan error

	stopOnce sync.Once
	stopErr  error

	storeOnce sync.Once
	store     *store.Store
	storeErr  error
}

// stateStore is the test's own handle on the relay's state store, opened
// on first use (benchmarks never pay for it).
func (h *running) stateStore(t testing.TB) *store.Store {
	t.Helper()
	h.storeOnce.Do(func() { h.store, h.storeErr = store.Open(context.Background(), h.db.Pool, h.schema) })
	if h.storeErr != nil {
		t.Fatal(h.storeErr)
	}
	return h.store
}

// start runs a relay on db with the given endpoint blocks (and the
// standard events) until the test ends.
func start(t *testing.T, db *testenv.DB, endpoints string, extra ...string) *running {
	t.Helper()
	slot := testenv.Name(t, "slot")
	rest := strings.Join(extra, "\n")
	if !strings.Contains(rest, "delivery {") {
		rest += "\ndelivery {\n  shutdown_timeout = \"10s\"\n}\n"
	}
	src := fmt.Sprintf(`
source "postgres" {
  url         = %q
  slot        = %q
  publication = %q
}
%s
%s
%s
`, db.URL, slot, slot, events, endpoints, rest)
	h := runConfig(t, db, src)
	h.waitStreaming(t)
	return h
}

// testOptions are the relay options tests run with: retries, heartbeats
// and the watcher's reads of the slot come quickly.
var testOptions = relay.Options{RetryPoll: 20 * time.Millisecond, HeartbeatInterval: 500 * time.Millisecond, WatchInterval: time.Second}

// runConfig parses a whole config and runs a relay from it until stop or
// the end of the test; opts default to testOptions. It is the one place
// tests build and run a relay.
func runConfig(t testing.TB, db *testenv.DB, src string, opts ...relay.Options) *running {
	t.Helper()
	return runConfigLogged(t, db, src, nil, opts...)
}

// runConfigLogged is runConfig that also writes the relay's log (warn
// level and up) to logs, unless it is nil.
func runConfigLogged(t testing.TB, db *testenv.DB, src string, logs io.Writer, opts ...relay.Options) *running {
	t.Helper()
	cfg, diags := config.Parse([]byte(src), "test.hcl")
	if diags.HasErrors() {
		t.Fatalf("config: %v", diags)
	}
	o := testOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out io.Writer = zerolog.NewTestWriter(t)
	if logs != nil {
		out = io.MultiWriter(out, logs)
	}
	log := zerolog.New(out).Level(zerolog.WarnLevel)
	switch os.Getenv("WALHOOK_TEST_LOG") {
	case "":
	case "stderr": // whole, unbuffered: benchmarks keep only part of their log
		log = zerolog.New(os.Stderr).Level(zerolog.DebugLevel)
	default:
		log = log.Level(zerolog.DebugLevel)
	}
	r, err := relay.New(ctx, cfg, log, o)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	h := &running{db: db, relay: r, schema: cfg.State.Schema, slot: cfg.Source.Slot, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- r.Run(ctx) }()
	t.Cleanup(func() {
		if err := h.stop(); errors.Is(err, errStuck) {
			t.Error(err)
		}
	})
	return h
}

var errStuck = errors.New("relay did not stop within 60s")

// stop stops the relay (once) and returns what Run returned.
func (h *running) stop() error {
	h.stopOnce.Do(func() {
		h.cancel()
		select {
		case h.stopErr = <-h.done:
		case <-time.After(60 * time.Second):
			h.stopErr = errStuck
		}
	})
	return h.stopErr
}

// ready reports whether the relay reads its source and reaches its store.
func (h *running) ready() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return h.relay.Ready(ctx)
}

func (h *running) waitStreaming(t *testing.T) {
	t.Helper()
	testkit.EventuallyWithin(t, 30*time.Second, "the relay to stream", func() bool { return h.ready() == nil })
}

// confirmedLSN reads the slot's confirmed_flush_lsn as text-comparable pg_lsn.
func confirmedPast(t *testing.T, db *testenv.DB, slot, lsn string) bool {
	t.Helper()
	var ok bool
	err := db.Pool.QueryRow(context.Background(),
		`SELECT coalesce(confirmed_flush_lsn >= $2::pg_lsn, false) FROM pg_replication_slots WHERE slot_name = $1`, slot, lsn).Scan(&ok)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func currentLSN(t *testing.T, db *testenv.DB) string {
	t.Helper()
	var lsn string
	if err := db.Pool.QueryRow(context.Background(), `SELECT pg_current_wal_lsn()::text`).Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	return lsn
}

// deliveries reads the store's deliveries of an endpoint.
func deliveries(t *testing.T, s *store.Store, endpointID string) []store.Delivery {
	t.Helper()
	var all []store.Delivery
	f := store.DeliveryFilter{EndpointID: endpointID, Limit: 500}
	for {
		ds, next, err := s.ListDeliveries(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ds...)
		if next == "" {
			return all
		}
		f.Cursor = next
	}
}

// counter is a fast receiver that only counts, for load tests.
type counter struct {
	mu    sync.Mutex
	n     int
	ids   map[string]int
	wake  chan struct{}
	fail  func() int
	delay time.Duration
}

func newCounter() *counter { return &counter{ids: map[string]int{}, wake: make(chan struct{}, 1)} }

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c.fail != nil {
		if code := c.fail(); code != 0 {
			w.WriteHeader(code)
			return
		}
	}
	c.mu.Lock()
	c.n++
	c.ids[r.Header.Get("webhook-id")]++
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusNoContent)
}

func (c *counter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func (c *counter) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ids)
}

// waitCount waits until the counter has n distinct event ids.
func (c *counter) waitDistinct(t *testing.T, n int, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for c.distinct() < n {
		select {
		case <-c.wake:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("received %d distinct events of %d within %v", c.distinct(), n, within)
		}
	}
}

// refusedURL is a URL on 127.0.0.1 where nothing listens.
func refusedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/hook"
}

func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}
