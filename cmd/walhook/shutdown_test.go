package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/walhook/walhook/internal/pgcluster"
	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/internal/testkit"
	"github.com/walhook/walhook/testenv"
)

// Shutdown tests: the source database (holding the state schema too), or
// a separate state database, is shut down while walhook works through a
// backlog it cannot settle, and must not be held up by it
// (docs/architecture.md, "Letting go of a database that shuts down").
// Each runs its own cluster, since it stops it.

// failFirst answers 500 to every delivery's first attempt, after a delay,
// and passes the others on.
type failFirst struct {
	next  http.Handler
	delay time.Duration
}

func (f failFirst) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Webhook-Attempt") == "1" {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(f.delay)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	f.next.ServeHTTP(w, r)
}

// TestFastShutdownOfTheSourceDatabaseIsNotHeldUp: a slow endpoint failing
// every first attempt, a 20,000-row backlog and the state schema in the
// source database, shut down with `pg_ctl stop -m fast`. The shutdown
// finishes (pg_ctl waits up to 60 s; the time taken is logged), and once
// the database is back every row is delivered, under one webhook-id.
func TestFastShutdownOfTheSourceDatabaseIsNotHeldUp(t *testing.T) {
	testShutdownIsNotHeldUp(t, "fast", 20000, false)
}

// TestSmartShutdownOfTheSourceDatabaseIsNotHeldUp: the same with
// `pg_ctl stop -m smart`, which waits for every open session to end,
// walhook's state pool, LISTEN and watch connections included, and only
// refuses new ones; walhook notices within its probe interval (5 s) and
// closes them.
func TestSmartShutdownOfTheSourceDatabaseIsNotHeldUp(t *testing.T) {
	testShutdownIsNotHeldUp(t, "smart", 5000, false)
}

// TestSmartShutdownOfASeparateStateDatabaseIsNotHeldUp: the state schema
// in a database of another cluster (state.url), shut down with
// `pg_ctl stop -m smart` while failed deliveries need it. walhook's state
// pool and LISTEN connections are released within its probe interval.
func TestSmartShutdownOfASeparateStateDatabaseIsNotHeldUp(t *testing.T) {
	testShutdownIsNotHeldUp(t, "smart", 2000, true)
}

// TestSmartShutdownOfAnOutboxDatabaseIsNotHeldUp: polling mode
// (mode = "outbox", state in the same database), `pg_ctl stop -m smart`
// while a backlog of outbox rows goes to an endpoint taking 100 ms and
// failing every first attempt. The poller's LISTEN, pooled and claiming
// sessions are let go of within its probe interval (5 s), a claimed
// batch rolling back unsettled; once the database is back every row is
// delivered, a repeated one under the same webhook-id.
func TestSmartShutdownOfAnOutboxDatabaseIsNotHeldUp(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	t.Parallel()
	pg := ownCluster(t)
	secret := signing.GenerateSecret()
	s := newSink(secret, 100*time.Millisecond)
	srv := httptest.NewServer(failFirst{next: s, delay: 100 * time.Millisecond})
	defer srv.Close()
	cfg := writeOutboxConfig(t, pg.db, srv.URL, secret)
	if out, err := exec.Command(binary(t), "outbox", "init", "-c", cfg).CombinedOutput(); err != nil {
		t.Fatalf("walhook outbox init: %v\n%s", err, out)
	}
	d := startDaemon(t, cfg)

	const rows = 6000
	pg.db.Exec(t, `INSERT INTO webhook_outbox (event_type, key, payload)
		SELECT 'thing.created', g::text, jsonb_build_object('id', g) FROM generate_series(1, $1) g`, rows)
	ids := make([]int64, rows)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	testkit.AwaitCond(t, testkit.Timeout, "a first delivery", s.arrived, func() bool { return len(s.missing(ids)) < len(ids) })
	pg.db.Pool.Close() // the test's own sessions must not be what the shutdown waits for

	began := time.Now()
	if out, err := pg.ctl(t, "stop", "-w", "-t", "60", "-m", "smart").CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl stop -m smart: %v\n%s\npostgres log:\n%s\nwalhook log:\n%s", err, out, pg.log(t), d.log.String())
	}
	t.Logf("pg_ctl stop -m smart with walhook polling took %s (%d of %d rows delivered by then)",
		time.Since(began).Round(10*time.Millisecond), len(ids)-len(s.missing(ids)), len(ids))
	if out, err := pg.ctl(t, "start", "-w", "-t", "60", "-l", filepath.Join(pg.cluster.Dir(), "postgres.log")).CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl start: %v\n%s", err, out)
	}
	waitProgress(t, s, d, ids)
	d.stop(t)
	t.Logf("%d duplicate deliveries (same webhook-id)", s.checkOnce(t))
}

// testShutdownIsNotHeldUp shuts the source database (or, with
// separateState, a state database of its own) down with pg_ctl in mode
// while walhook works through a backlog of rows.
func testShutdownIsNotHeldUp(t *testing.T, mode string, rows int, separateState bool) {
	if testing.Short() {
		t.Skip("process test")
	}
	t.Parallel()
	pg := ownCluster(t)
	stopped, extra := pg, ""
	if separateState {
		stopped = ownCluster(t)
		extra = fmt.Sprintf("state {\n  url = %q\n}\n", stopped.db.URL)
	}
	secret := signing.GenerateSecret()
	s := newSink(secret, 100*time.Millisecond)
	srv := httptest.NewServer(failFirst{next: s, delay: 100 * time.Millisecond})
	defer srv.Close()
	slot := testenv.Name(t, "slot")
	d := startDaemon(t, writeConfig(t, pg.db, slot, srv.URL, secret, extra))
	waitSlot(t, pg.db, slot)

	ids := insertBacklog(t, pg.db, rows, 100)
	testkit.AwaitCond(t, testkit.Timeout, "a first delivery", s.arrived, func() bool { return len(s.missing(ids)) < len(ids) })
	stopped.db.Pool.Close() // the test's own sessions must not be what a shutdown waits for

	began := time.Now()
	if out, err := stopped.ctl(t, "stop", "-w", "-t", "60", "-m", mode).CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl stop -m %s: %v\n%s\npostgres log:\n%s", mode, err, out, stopped.log(t))
	}
	t.Logf("pg_ctl stop -m %s with walhook attached took %s (%d of %d rows delivered by then)",
		mode, time.Since(began).Round(10*time.Millisecond), len(ids)-len(s.missing(ids)), len(ids))
	for _, line := range strings.Split(d.log.String(), "\n") {
		if strings.Contains(line, "letting go") || strings.Contains(line, "state database is shutting down") {
			t.Logf("walhook: %s", line)
		}
	}
	if out, err := stopped.ctl(t, "start", "-w", "-t", "60", "-l", filepath.Join(stopped.cluster.Dir(), "postgres.log")).CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl start: %v\n%s", err, out)
	}
	waitProgress(t, s, d, ids)
	d.stop(t)
	t.Logf("%d duplicate deliveries (same webhook-id)", s.checkOnce(t))
}

// ownPostgres is a cluster of a test's own, with the sample schema in its
// database app.
type ownPostgres struct {
	cluster *pgcluster.Cluster
	db      *testenv.DB
}

// ownCluster starts a cluster for t alone, stopped when t ends.
func ownCluster(t *testing.T) *ownPostgres {
	t.Helper()
	if testenv.Shared(t).Dir() == "" {
		t.Skip("needs a throwaway cluster of its own")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgcluster.Start(ctx, pgcluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	if err := c.CreateDatabase(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	url := c.DatabaseURL("app")
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, testenv.Schema); err != nil {
		t.Fatal(err)
	}
	return &ownPostgres{cluster: c, db: &testenv.DB{Name: "app", URL: url, Pool: pool, Cluster: c}}
}

// ctl returns a pg_ctl command with args on the cluster's data directory,
// run as the cluster's owner.
func (p *ownPostgres) ctl(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	bin, err := pgcluster.FindBinaries()
	if err != nil {
		t.Fatal(err)
	}
	args = append(args, "-D", filepath.Join(p.cluster.Dir(), "data"))
	cmd := exec.Command(filepath.Join(bin, "pg_ctl"), args...)
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(bin, "pg_ctl")}, args...)...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd
}

// log returns the server's log.
func (p *ownPostgres) log(t *testing.T) string {
	t.Helper()
	b, _ := os.ReadFile(filepath.Join(p.cluster.Dir(), "postgres.log"))
	return string(b)
}

// TestSIGKILLDuringABacklogDrain kills walhook 5 s into draining a
// 1,000-row backlog (10 rows per transaction) to an endpoint taking 100 ms
// with at most 4 requests at a time (about 40 rows a second), and restarts
// it: every row arrives, under one webhook-id. It logs how many deliveries
// were repeated: what was settled but not yet confirmed to the slot at the
// kill, which cdc.ReaderConfig.ConfirmInterval (1 s) bounds.
func TestSIGKILLDuringABacklogDrain(t *testing.T) {
	db, s, url := processTest(t, 100*time.Millisecond)
	slot := testenv.Name(t, "slot")
	cfg := writeConfig(t, db, slot, url, s.secret, "")
	editConfig(t, cfg, `  events = ["*"]`, "  events = [\"*\"]\n  concurrency = 4")
	d := startDaemon(t, cfg)
	waitSlot(t, db, slot)
	ids := insertBacklog(t, db, 1000, 10)
	testkit.AwaitCond(t, testkit.Timeout, "a first delivery", s.arrived, func() bool { return len(s.missing(ids)) < len(ids) })
	time.Sleep(5 * time.Second) // the moment of the crash being tested, not a wait
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = d.cmd.Wait()
	before := len(ids) - len(s.missing(ids))
	d = startDaemon(t, cfg)
	waitSlot(t, db, slot)
	waitDelivered(t, s, ids)
	d.stop(t)
	t.Logf("killed with %d of %d rows delivered; %d deliveries repeated after the restart (same webhook-id)", before, len(ids), s.checkOnce(t))
}

// TestFastRestartsUnderLoad: six fast restarts of the source database
// while a writer commits rows and walhook delivers them to a healthy
// endpoint. Every shutdown finishes (the time each took is logged), and
// every row whose commit the writer saw arrives, under one webhook-id.
func TestFastRestartsUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	t.Parallel()
	pg := ownCluster(t)
	secret := signing.GenerateSecret()
	s := newSink(secret, 0)
	srv := httptest.NewServer(s)
	defer srv.Close()
	slot := testenv.Name(t, "slot")
	d := startDaemon(t, writeConfig(t, pg.db, slot, srv.URL, secret, ""))
	waitSlot(t, pg.db, slot)

	stopWriting := writeThroughRestarts(pg.db)
	var took []string
	for range 6 {
		time.Sleep(time.Second) // load between restarts: the fault being tested, not a wait
		began := time.Now()
		if out, err := pg.ctl(t, "stop", "-w", "-t", "60", "-m", "fast").CombinedOutput(); err != nil {
			stopWriting()
			t.Fatalf("pg_ctl stop -m fast: %v\n%s\npostgres log:\n%s", err, out, pg.log(t))
		}
		took = append(took, time.Since(began).Round(10*time.Millisecond).String())
		if out, err := pg.ctl(t, "start", "-w", "-t", "60", "-l", filepath.Join(pg.cluster.Dir(), "postgres.log")).CombinedOutput(); err != nil {
			stopWriting()
			t.Fatalf("pg_ctl start: %v\n%s", err, out)
		}
	}
	want := stopWriting()
	t.Logf("six fast shutdowns took %v", took)
	waitProgress(t, s, d, want)
	d.stop(t)
	t.Logf("%d rows committed across the restarts, all delivered; %d duplicate deliveries (same webhook-id)", len(want), s.checkOnce(t))
}

// writeThroughRestarts commits five rows at a time into db's contacts
// until the returned stop is called, going on after failed inserts (the
// database is restarting); stop returns the ids whose commit it saw.
func writeThroughRestarts(db *testenv.DB) (stop func() []int64) {
	var committed []int64
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case <-time.After(5 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			rows, err := db.Pool.Query(ctx, `INSERT INTO contacts (organization_id, first_name) SELECT 1, 'c' FROM generate_series(1, 5) RETURNING id`)
			if err == nil {
				var ids []int64
				ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
				if err == nil {
					committed = append(committed, ids...)
				}
			}
			cancel()
		}
	}()
	return func() []int64 {
		close(quit)
		<-done
		return committed
	}
}
