package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/testenv"
)

// Fault tests: the built binary, a real Postgres, a receiver that fails
// for a while, and a state database that is locked, cut off or hung.
// Each asserts that every committed row is delivered in the end.

// flaky answers 500 for a while after its first request, then passes on
// to the sink.
type flaky struct {
	next  http.Handler
	for_  time.Duration
	once  sync.Once
	until atomic.Int64 // unix nanos; requests before it fail
	down  atomic.Bool  // fail every request while set
	began chan struct{}
}

func newFlaky(next http.Handler, failFor time.Duration) *flaky {
	return &flaky{next: next, for_: failFor, began: make(chan struct{})}
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.once.Do(func() {
		f.until.Store(time.Now().Add(f.for_).UnixNano())
		close(f.began)
	})
	if f.down.Load() || time.Now().UnixNano() < f.until.Load() {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	f.next.ServeHTTP(w, r)
}

// insertBacklog commits rows in transactions of perTx rows (each row its
// own key) and returns their ids.
func insertBacklog(t *testing.T, db *testenv.DB, rows, perTx int) []int64 {
	t.Helper()
	ctx := context.Background()
	ids := make([]int64, 0, rows)
	for len(ids) < rows {
		rs, err := db.Pool.Query(ctx, `INSERT INTO contacts (organization_id, first_name) SELECT 1, 'c' FROM generate_series(1, $1) RETURNING id`, perTx)
		if err != nil {
			t.Fatal(err)
		}
		for rs.Next() {
			var id int64
			if err := rs.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// orderedConfig is writeConfig with the endpoint ordering by key and the
// given extra blocks.
func orderedConfig(t *testing.T, db *testenv.DB, slot, url, secret, extra string) string {
	t.Helper()
	path := writeConfig(t, db, slot, url, secret, extra)
	editConfig(t, path, `  events = ["*"]`, "  events = [\"*\"]\n  ordering = \"key\"")
	return path
}

// editConfig replaces old with new in the config file at path.
func editConfig(t *testing.T, path, old, new string) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), old) {
		t.Fatalf("config has no %q", old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(src), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestFaultsThroughTheBinary runs the fault scenarios side by side, and
// apart from the package's other process tests: they write a lot of WAL,
// and tests that compare a slot with the cluster-wide WAL position
// (pg_current_wal_lsn) must not see it move under them.
func TestFaultsThroughTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	for name, f := range map[string]func(*testing.T){
		"ordered backlog, endpoint failing a second":    testOrderedBacklogSurvivesOneFailingSecond,
		"ordered backlog, deliveries table locked":      testOrderedBacklogSurvivesALockedDeliveriesTable,
		"ordered backlog, state connections terminated": testOrderedBacklogSurvivesTerminatedStateConnections,
		"SIGTERM with the state database hung, restart": testSIGTERMWithTheStateDatabaseHungExitsInTime,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t)
		})
	}
}

// testOrderedBacklogSurvivesOneFailingSecond: an ordered endpoint, a
// 30,000-row backlog (100 rows per transaction, each row its own key) and
// the endpoint answering 500 for its first second. Every row is delivered.
func testOrderedBacklogSurvivesOneFailingSecond(t *testing.T) {
	runOrderedBacklog(t, 30000, time.Second, nil)
}

// testOrderedBacklogSurvivesALockedDeliveriesTable: the same with the
// deliveries table locked (ACCESS EXCLUSIVE) for 6s while the endpoint fails,
// so every store write waits.
func testOrderedBacklogSurvivesALockedDeliveriesTable(t *testing.T) {
	runOrderedBacklog(t, 10000, time.Second, func(t *testing.T, db *testenv.DB, _ <-chan struct{}) {
		ctx := context.Background()
		tx, err := db.Pool.Begin(ctx)
		if err != nil {
			t.Error(err)
			return
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(ctx, `LOCK TABLE walhook.deliveries IN ACCESS EXCLUSIVE MODE`); err != nil {
			t.Error(err)
			return
		}
		time.Sleep(6 * time.Second) // the fault being tested: a lock held this long
	})
}

// testOrderedBacklogSurvivesTerminatedStateConnections: the state
// database's connections are terminated three times while the endpoint
// fails and store writes are under way (after the backlog is committed,
// so that the test's own connections are not among the ones cut).
func testOrderedBacklogSurvivesTerminatedStateConnections(t *testing.T) {
	runOrderedBacklog(t, 10000, 3*time.Second, func(t *testing.T, db *testenv.DB, inserted <-chan struct{}) {
		<-inserted
		for range 3 {
			// Every client connection to the database but our own; the
			// walsender of the slot is left alone.
			if _, err := db.Pool.Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(300 * time.Millisecond) // spread the cuts over the failing second
		}
	})
}

// runOrderedBacklog commits rows to an ordered endpoint that fails for
// failFor after its first request; fault runs from that first request on,
// beside the inserts, and is given a channel closed once the backlog is
// committed.
func runOrderedBacklog(t *testing.T, rows int, failFor time.Duration, fault func(t *testing.T, db *testenv.DB, inserted <-chan struct{})) {
	db := testenv.NewDB(t)
	secret := signing.GenerateSecret()
	s := newSink(secret, 0)
	f := newFlaky(s, failFor)
	srv := httptest.NewServer(f)
	defer srv.Close()
	slot := testenv.Name(t, "slot")
	d := startDaemon(t, orderedConfig(t, db, slot, srv.URL, secret, ""))
	defer d.stop(t)
	waitSlot(t, db, slot)

	faulted, inserted := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(faulted)
		<-f.began
		if fault != nil {
			fault(t, db, inserted)
		}
	}()
	ids := insertBacklog(t, db, rows, 100)
	close(inserted)
	waitProgress(t, s, d, ids)
	<-faulted
}

// stallAfter is how long delivery may make no progress at all before a
// fault test calls it stalled; a slow machine only makes it take longer.
const stallAfter = 30 * time.Second

// waitProgress waits until the sink has every row of want, failing when
// no new row arrives for stallAfter (the bug these tests guard against is
// a stall, not slowness), with the progress seen and the daemon's log.
func waitProgress(t *testing.T, s *sink, d *daemon, want []int64) {
	t.Helper()
	began := time.Now()
	last, lastAt := len(want), time.Now()
	var history []string
	for {
		n := len(s.missing(want))
		if n == 0 {
			t.Logf("%d rows delivered in %s", len(want), time.Since(began).Round(time.Millisecond))
			return
		}
		if n < last {
			last, lastAt = n, time.Now()
			if len(history) < 40 {
				history = append(history, fmt.Sprintf("%s:%d", time.Since(began).Round(time.Second), n))
			}
		}
		if time.Since(lastAt) > stallAfter {
			_ = d.cmd.Process.Signal(syscall.SIGQUIT) // a goroutine dump for the log
			_ = d.cmd.Wait()
			t.Fatalf("stalled: %d of %d rows missing, none delivered for %s (missing over time: %v)\nlog:\n%s",
				n, len(want), stallAfter, history, d.log)
		}
		select {
		case <-s.arrived:
		case <-time.After(time.Second):
		}
	}
}

// hangProxy forwards TCP connections to a Postgres server until hang is
// called; from then on it forwards nothing, in either direction, on old
// or new connections, as a server that stopped answering would.
type hangProxy struct {
	l      net.Listener
	target string
	hung   atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newHangProxy(t *testing.T, target string) *hangProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &hangProxy{l: l, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *hangProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.track(c)
		if p.hung.Load() {
			continue // accepted, never answered
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.track(up)
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *hangProxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

// pipe copies until either side closes; once hung, it holds what it reads.
func (p *hangProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if p.hung.Load() {
			continue // swallowed
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

func (p *hangProxy) hang() { p.hung.Store(true) }

func (p *hangProxy) close() {
	_ = p.l.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *hangProxy) addr() string { return p.l.Addr().String() }

// testSIGTERMWithTheStateDatabaseHungExitsInTime: deliveries need the
// store (the endpoint fails), the state database stops answering, and
// SIGTERM comes: walhook exits within shutdown_timeout without confirming
// what it could not store, and a restart delivers every row.
func testSIGTERMWithTheStateDatabaseHungExitsInTime(t *testing.T) {
	db := testenv.NewDB(t)
	secret := signing.GenerateSecret()
	s := newSink(secret, 0)
	f := newFlaky(s, 0)
	f.down.Store(true)
	srv := httptest.NewServer(f)
	defer srv.Close()
	slot := testenv.Name(t, "slot")

	u, err := url.Parse(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newHangProxy(t, u.Host)
	stateURL := *u
	stateURL.Host = proxy.addr()
	const timeout = 4 * time.Second
	extra := fmt.Sprintf("state {\n  url = %q\n}\n", stateURL.String())
	cfg := orderedConfig(t, db, slot, srv.URL, secret, extra)
	editConfig(t, cfg, `shutdown_timeout = "10s"`, fmt.Sprintf("shutdown_timeout = %q", timeout.String()))

	d := startDaemon(t, cfg)
	waitSlot(t, db, slot)
	ids := insertBacklog(t, db, 2000, 100)
	<-f.began // deliveries are failing: they need the store now
	proxy.hang()
	began := time.Now()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- d.cmd.Wait() }()
	select {
	case <-exited:
	case <-time.After(timeout + 5*time.Second):
		_ = d.cmd.Process.Signal(syscall.SIGQUIT) // a goroutine dump for the log
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = d.cmd.Process.Kill()
			<-exited
		}
		t.Fatalf("still running %s after SIGTERM with shutdown_timeout %s\nlog:\n%s", time.Since(began), timeout, d.log)
	}
	took := time.Since(began)
	t.Logf("exited %s after SIGTERM (shutdown_timeout %s)", took, timeout)
	if took > timeout+2*time.Second {
		t.Errorf("exit took %s, shutdown_timeout is %s", took, timeout)
	}

	// The state database answers again, the endpoint too: a restart
	// delivers everything, the rows not settled before being read again.
	proxy.close()
	newHangProxyAt(t, proxy.addr(), u.Host)
	f.down.Store(false)
	d = startDaemon(t, cfg)
	defer d.stop(t)
	waitDelivered(t, s, ids)
}

// newHangProxyAt is newHangProxy listening on a given address (the one the
// config names), retrying while the old listener's port is released.
func newHangProxyAt(t *testing.T, addr, target string) *hangProxy {
	t.Helper()
	var l net.Listener
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; {
		if l, err = net.Listen("tcp", addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p := &hangProxy{l: l, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}
