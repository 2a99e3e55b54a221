package cdc_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/walhook/walhook/cdc"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

// insertContact commits one contact with the given id.
func insertContact(t *testing.T, db *testenv.DB, id int) {
	t.Helper()
	db.Exec(t, `INSERT INTO contacts (id, organization_id, first_name) VALUES ($1, 1, $2)`, id, "c"+strconv.Itoa(id))
}

// contactIDs lists the contact ids inserted by txns, in order.
func contactIDs(txns []cdc.Transaction) []int64 {
	var ids []int64
	for _, c := range flatten(txns) {
		ids = append(ids, c.New["id"].(int64))
	}
	return ids
}

func equalIDs(got []int64, want ...int64) bool {
	return fmt.Sprint(got) == fmt.Sprint(want)
}

// TestResumeAfterTerminateAndReopen kills the walsender, then replaces
// the reader: nothing committed is missing and nothing at or before the
// last acknowledgement comes again.
func TestResumeAfterTerminateAndReopen(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	cfg := testConfig(t, db, "public.contacts")
	r1 := start(t, cfg, false)

	for id := 1; id <= 3; id++ {
		insertContact(t, db, id)
	}
	txns := r1.sink.waitTransactions(t, 3)
	r1.reader.Ack(txns[0].EndLSN) // 1 settled; 2 and 3 handed over, not settled
	waitConfirmed(t, db, cfg.Slot, txns[0].EndLSN)

	testkit.Await(t, "the first session", r1.signals.Streaming)
	pid := walsenderPID(t, db, cfg.Slot)
	db.Exec(t, `SELECT pg_terminate_backend($1)`, pid)
	insertContact(t, db, 4)
	testkit.Await(t, "a session on a new walsender", r1.signals.Streaming)
	insertContact(t, db, 5)
	txns = r1.sink.waitTransactions(t, 5)
	// A repeat of 2 or 3 would have come before 4 and 5.
	if ids := contactIDs(r1.sink.transactions()); !equalIDs(ids, 1, 2, 3, 4, 5) {
		t.Fatalf("after terminating the walsender got contacts %v, want [1 2 3 4 5] exactly once", ids)
	}
	acked := txns[1].EndLSN // settle 2; 3, 4 and 5 stay unsettled
	r1.reader.Ack(acked)
	r1.stop(t)
	// The walsender handles the final status as it exits, just after.
	waitConfirmed(t, db, cfg.Slot, acked)
	if got := confirmedFlush(t, db, cfg.Slot); got != acked {
		t.Errorf("after stopping, confirmed_flush_lsn is %s, want the last acknowledgement %s", got, acked)
	}

	insertContact(t, db, 6)
	r2 := run(t, cfg, true)
	got := r2.sink.waitTransactions(t, 4)
	if ids := contactIDs(got); !equalIDs(ids, 3, 4, 5, 6) {
		t.Fatalf("reopened reader got contacts %v, want [3 4 5 6]: everything after the last acknowledgement, nothing before", ids)
	}
	for _, tx := range got {
		if tx.EndLSN <= acked {
			t.Errorf("transaction ending at %s repeated although %s was acknowledged", tx.EndLSN, acked)
		}
	}
}

// TestConfirmedFlushNeverPassesUnacked holds a transaction unacknowledged
// while WAL moves on elsewhere, and checks the slot stays behind it.
func TestConfirmedFlushNeverPassesUnacked(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	other := testenv.NewEmptyDB(t)
	cfg := testConfig(t, db, "public.contacts")
	cfg.HeartbeatInterval = 50 * time.Millisecond
	r := start(t, cfg, false)

	insertContact(t, db, 1)
	a := r.sink.waitTransactions(t, 1)[0]
	r.reader.Ack(a.EndLSN)
	waitConfirmed(t, db, cfg.Slot, a.EndLSN)

	insertContact(t, db, 2)
	b := r.sink.waitTransactions(t, 2)[1]
	other.Exec(t, `CREATE TABLE noise AS SELECT generate_series(1, 10000) AS n`)
	db.Exec(t, `CREATE TABLE unpublished AS SELECT generate_series(1, 1000) AS n`)
	// Wait for several standby replies sent after all of that WAL was
	// decoded, then look at the slot.
	since := time.Now()
	walEnd := currentLSN(t, other)
	testkit.Eventually(t, "the walsender to pass the other database's WAL", func() bool { return r.reader.Status().ServerWALEnd >= walEnd })
	testkit.Eventually(t, "two standby replies", func() bool {
		var reply time.Time
		err := db.Pool.QueryRow(context.Background(), `SELECT coalesce(reply_time, '-infinity') FROM pg_stat_replication WHERE pid = $1`, walsenderPID(t, db, cfg.Slot)).Scan(&reply)
		return err == nil && reply.After(since.Add(2*cfg.StatusInterval))
	})
	if got := confirmedFlush(t, db, cfg.Slot); got >= b.EndLSN || got < a.EndLSN {
		t.Fatalf("confirmed_flush_lsn %s with %s acknowledged and %s not", got, a.EndLSN, b.EndLSN)
	}
	if st := r.reader.Status(); st.Acked >= b.EndLSN {
		t.Fatalf("status reports %s acknowledged, past the unacknowledged %s", st.Acked, b.EndLSN)
	}

	r.reader.Ack(b.EndLSN)
	waitConfirmed(t, db, cfg.Slot, b.EndLSN)
	// Once nothing is outstanding, heartbeats let the slot pass the WAL
	// written elsewhere.
	waitConfirmed(t, db, cfg.Slot, walEnd)
}

// TestIdleSlotAdvances writes WAL only in another database of the cluster:
// heartbeats must let the idle slot's confirmed position move past it.
func TestIdleSlotAdvances(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	other := testenv.NewEmptyDB(t)
	cfg := testConfig(t, db, "public.contacts")
	cfg.HeartbeatInterval = 100 * time.Millisecond
	r := start(t, cfg, true)
	testkit.Await(t, "streaming", r.signals.Streaming)
	before := confirmedFlush(t, db, cfg.Slot)
	other.Exec(t, `CREATE TABLE busy AS SELECT generate_series(1, 50000) AS n`)
	target := currentLSN(t, other)
	if target <= before {
		t.Fatalf("no WAL written: %s <= %s", target, before)
	}
	waitConfirmed(t, db, cfg.Slot, target)
	if n := len(r.sink.transactions()); n != 0 {
		t.Errorf("idle database produced %d transactions", n)
	}
}

// TestResumeAfterServerRestart crash-restarts the server while streaming.
// It is not parallel: the restart would break the other tests' sessions.
func TestResumeAfterServerRestart(t *testing.T) {
	db := testenv.NewDB(t)
	cfg := testConfig(t, db, "public.contacts")
	r := start(t, cfg, false)
	insertContact(t, db, 1)
	insertContact(t, db, 2)
	txns := r.sink.waitTransactions(t, 2)
	r.reader.Ack(txns[0].EndLSN)
	waitConfirmed(t, db, cfg.Slot, txns[0].EndLSN)

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := db.Cluster.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	db.Pool.Reset()
	insertContact(t, db, 3)
	r.sink.waitTransactions(t, 3)
	if ids := contactIDs(r.sink.transactions()); !equalIDs(ids, 1, 2, 3) {
		t.Fatalf("after a server restart got contacts %v, want [1 2 3]", ids)
	}
	st := r.reader.Status()
	if !st.Streaming {
		t.Errorf("status after restart: %+v", st)
	}
	r.reader.Ack(r.sink.transactions()[2].EndLSN)
	waitConfirmed(t, db, cfg.Slot, r.sink.transactions()[2].EndLSN)
}

// blockingSink holds its first Apply until released.
type blockingSink struct {
	*collector
	blocked chan struct{}
	release chan struct{}
	once    bool
}

func (s *blockingSink) Apply(ctx context.Context, tx cdc.Transaction) error {
	if !s.once {
		s.once = true
		close(s.blocked)
		<-s.release
	}
	return s.collector.Apply(ctx, tx)
}

// TestSlowSinkKeepsConnection blocks the consumer for several
// wal_sender_timeouts while transactions pile up: the reader must keep the
// connection alive with status updates and lose nothing.
func TestSlowSinkKeepsConnection(t *testing.T) {
	t.Parallel()
	db := testenv.NewDB(t)
	cfg := testConfig(t, db, "public.contacts")
	cfg.URL = db.URL + "&options=-c%20wal_sender_timeout%3D1s"
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := cdc.Prepare(ctx, "", cfg); err != nil {
		t.Fatal(err)
	}
	reader := cdc.NewReader(cfg)
	sink := &blockingSink{collector: newCollector(true), blocked: make(chan struct{}), release: make(chan struct{})}
	sink.reader = reader
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- reader.Run(runCtx, sink) }()
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(sink.release) }) }
	defer func() { release(); stop(); <-done }()

	const txns = 300
	for id := 1; id <= txns; id++ {
		insertContact(t, db, id)
	}
	select {
	case <-sink.blocked:
	case <-ctx.Done():
		t.Fatal("sink never called")
	}
	pid := walsenderPID(t, db, cfg.Slot)
	since := time.Now()
	testkit.Eventually(t, "standby replies for 3 wal_sender_timeouts", func() bool {
		var reply time.Time
		err := db.Pool.QueryRow(ctx, `SELECT coalesce(reply_time, '-infinity') FROM pg_stat_replication WHERE pid = $1`, pid).Scan(&reply)
		if err != nil {
			t.Fatalf("walsender %d gone while the sink was blocked: %v", pid, err)
		}
		return reply.After(since.Add(3 * time.Second))
	})
	release()
	got := sink.waitTransactions(t, txns)
	if ids := contactIDs(got); len(ids) != txns || ids[0] != 1 || ids[txns-1] != txns {
		t.Fatalf("got %d contacts, first %v", len(ids), ids[:min(len(ids), 5)])
	}
	if now := walsenderPID(t, db, cfg.Slot); now != pid {
		t.Errorf("walsender changed from %d to %d: the connection was dropped", pid, now)
	}
}
