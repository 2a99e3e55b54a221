package cdc_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/rs/zerolog"
	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// waitTimeout bounds every wait for a signal in these tests.
const waitTimeout = testkit.Timeout

// collector is a Sink that records transactions and, with autoAck,
// acknowledges each one as soon as it is applied.
type collector struct {
	reader  *cdc.Reader
	autoAck bool

	mu     sync.Mutex
	txns   []cdc.Transaction
	notify chan struct{}
}

func newCollector(autoAck bool) *collector {
	return &collector{autoAck: autoAck, notify: make(chan struct{}, 1)}
}

func (c *collector) Apply(_ context.Context, tx cdc.Transaction) error {
	c.mu.Lock()
	c.txns = append(c.txns, tx)
	c.mu.Unlock()
	if c.autoAck {
		c.reader.Ack(tx.EndLSN)
	}
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return nil
}

// transactions returns a copy of what was applied so far.
func (c *collector) transactions() []cdc.Transaction {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]cdc.Transaction(nil), c.txns...)
}

// waitTransactions waits until at least n transactions were applied.
func (c *collector) waitTransactions(t *testing.T, n int) []cdc.Transaction {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		if txns := c.transactions(); len(txns) >= n {
			return txns
		}
		select {
		case <-c.notify:
		case <-deadline:
			t.Fatalf("timed out waiting for %d transactions; have %d", n, len(c.transactions()))
		}
	}
}

// running is a Reader running in the background.
type running struct {
	reader  *cdc.Reader
	signals cdc.ReaderTestSignals
	sink    *collector
	logs    *testkit.Buffer
	cancel  context.CancelFunc
	done    chan error
}

// stop cancels the reader and waits for Run to return.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
		r.done <- nil
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return after cancel")
	}
}

// testConfig returns a reader config for db with fresh slot and
// publication names and short intervals.
func testConfig(t *testing.T, db *testenv.DB, tables ...string) cdc.ReaderConfig {
	return cdc.ReaderConfig{
		URL:               db.URL,
		Slot:              testenv.Name(t, "slot"),
		Publication:       testenv.Name(t, "pub"),
		Tables:            tables,
		StatusInterval:    100 * time.Millisecond,
		HeartbeatInterval: -1,
		MaxBackoff:        time.Second,
	}
}

// start prepares the slot (so changes made after start returns are
// captured) and runs a reader on cfg in the background until the test ends.
func start(t *testing.T, cfg cdc.ReaderConfig, autoAck bool) *running {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := cdc.Prepare(ctx, "", cfg); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	return run(t, cfg, autoAck)
}

// run runs a reader on cfg in the background until the test ends.
func run(t *testing.T, cfg cdc.ReaderConfig, autoAck bool) *running {
	t.Helper()
	logs := &testkit.Buffer{}
	cfg.Logger = zerolog.New(logs).Level(zerolog.InfoLevel)
	r := &running{reader: cdc.NewReader(cfg), sink: newCollector(autoAck), logs: logs, done: make(chan error, 1)}
	r.sink.reader = r.reader
	r.signals = r.reader.InitTestSignals()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.reader.Run(ctx, r.sink) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(waitTimeout):
			t.Error("Run did not return after cancel")
		}
		if t.Failed() {
			t.Logf("reader logs:\n%s", logs.String())
		}
	})
	return r
}

// currentLSN returns pg_current_wal_insert_lsn() (the write position lags
// behind it with synchronous_commit=off).
func currentLSN(t *testing.T, db *testenv.DB) cdc.LSN {
	t.Helper()
	var s string
	if err := db.Pool.QueryRow(context.Background(), `SELECT pg_current_wal_insert_lsn()::text`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	lsn, err := pglogrepl.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return lsn
}

// confirmedFlush returns the slot's confirmed_flush_lsn.
func confirmedFlush(t *testing.T, db *testenv.DB, slot string) cdc.LSN {
	t.Helper()
	var s string
	err := db.Pool.QueryRow(context.Background(), `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&s)
	if err != nil {
		t.Fatalf("reading confirmed_flush_lsn of %s: %v", slot, err)
	}
	lsn, err := pglogrepl.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return lsn
}

// waitConfirmed waits until the slot's confirmed_flush_lsn reaches lsn.
func waitConfirmed(t *testing.T, db *testenv.DB, slot string, lsn cdc.LSN) {
	t.Helper()
	testkit.Eventually(t, "confirmed_flush_lsn >= "+lsn.String(), func() bool { return confirmedFlush(t, db, slot) >= lsn })
}

// walsenderPID returns the pid of the walsender using slot, or 0.
func walsenderPID(t *testing.T, db *testenv.DB, slot string) int32 {
	t.Helper()
	var pid *int32
	err := db.Pool.QueryRow(context.Background(), `SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&pid)
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if pid == nil {
		return 0
	}
	return *pid
}

// flatten returns the changes of txns in order.
func flatten(txns []cdc.Transaction) []cdc.Change {
	var out []cdc.Change
	for _, tx := range txns {
		out = append(out, tx.Changes...)
	}
	return out
}

func describe(c cdc.Change) string {
	return string(c.Op) + " " + c.Schema + "." + c.Table
}
