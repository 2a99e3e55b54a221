package main

import (
	"bytes"
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

	"github.com/walhook/walhook/internal/signing"
	"github.com/walhook/walhook/testenv"
)

// sink records, per contact id, the webhook ids it was delivered with.
type sink struct {
	secret string
	mu     sync.Mutex
	ids    map[int64]map[string]int
	bad    int
	slow   time.Duration
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
	var ev struct {
		Data struct {
			ID int64 `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if s.slow > 0 {
		time.Sleep(s.slow)
	}
	s.mu.Lock()
	if s.ids[ev.Data.ID] == nil {
		s.ids[ev.Data.ID] = map[string]int{}
	}
	s.ids[ev.Data.ID][r.Header.Get("webhook-id")]++
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
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
	log *bytes.Buffer
}

func startDaemon(t *testing.T, cfgPath string) *daemon {
	t.Helper()
	cmd := exec.Command(binary(t), "run", "-c", cfgPath, "--log-level", "warn")
	var buf bytes.Buffer
	cmd.Stderr = &buf
	cmd.Stdout = &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return &daemon{cmd: cmd, log: &buf}
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
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND active AND confirmed_flush_lsn IS NOT NULL`, slot).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot %s was not created within 30s", slot)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKilledAtRandomMomentsLosesNothing kills the built binary with SIGKILL
// five times under a steady write load, restarting it each time: every
// committed row is delivered at least once, and a row delivered twice
// carries the same webhook-id both times.
func TestKilledAtRandomMomentsLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	t.Parallel()
	db := testenv.NewDB(t)
	secret := signing.GenerateSecret()
	s := &sink{secret: secret, ids: map[int64]map[string]int{}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	slot := testenv.Name(t, "slot")
	cfg := writeConfig(t, db, slot, srv.URL, secret, "")

	d := startDaemon(t, cfg)
	waitSlot(t, db, slot)

	var mu sync.Mutex
	var committed []int64
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			rows, err := db.Pool.Query(context.Background(),
				`INSERT INTO contacts (organization_id, first_name) SELECT 1, 'c' FROM generate_series(1, 5) RETURNING id`)
			if err != nil {
				t.Errorf("insert: %v", err)
				return
			}
			var ids []int64
			for rows.Next() {
				var id int64
				_ = rows.Scan(&id)
				ids = append(ids, id)
			}
			rows.Close()
			if rows.Err() == nil {
				mu.Lock()
				committed = append(committed, ids...)
				mu.Unlock()
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()

	d = killRepeatedly(t, d, cfg, 5)
	close(stop)
	<-writerDone
	mu.Lock()
	want := append([]int64(nil), committed...)
	mu.Unlock()

	waitDelivered(t, s, d, want)
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Wait(); err != nil {
		t.Errorf("walhook exited with %v after SIGTERM\n%s", err, d.log)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dups := 0
	for id, wids := range s.ids {
		if len(wids) != 1 {
			t.Errorf("row %d was delivered under %d different webhook-ids: %v", id, len(wids), wids)
		}
		for _, n := range wids {
			dups += n - 1
		}
	}
	if s.bad > 0 {
		t.Errorf("%d deliveries failed signature verification", s.bad)
	}
	t.Logf("%d rows committed across 5 SIGKILLs, all delivered; %d duplicate deliveries (same webhook-id)", len(want), dups)
}

// TestSIGTERMDrainsAndExitsZero: on SIGTERM walhook stops reading, lets the
// deliveries in memory finish, confirms the slot and exits 0.
func TestSIGTERMDrainsAndExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	t.Parallel()
	db := testenv.NewDB(t)
	secret := signing.GenerateSecret()
	s := &sink{secret: secret, ids: map[int64]map[string]int{}, slow: 100 * time.Millisecond}
	srv := httptest.NewServer(s)
	defer srv.Close()
	slot := testenv.Name(t, "slot")
	d := startDaemon(t, writeConfig(t, db, slot, srv.URL, secret, ""))
	waitSlot(t, db, slot)

	var ids []int64
	rows, err := db.Pool.Query(context.Background(), `INSERT INTO contacts (organization_id, first_name) SELECT 1, 'c' FROM generate_series(1, 50) RETURNING id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		_ = rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	var end string
	if err := db.Pool.QueryRow(context.Background(), `SELECT pg_current_wal_lsn()::text`).Scan(&end); err != nil {
		t.Fatal(err)
	}
	// Wait until deliveries are under way, then ask it to stop.
	deadline := time.Now().Add(30 * time.Second)
	for len(s.missing(ids)) == len(ids) {
		if time.Now().After(deadline) {
			t.Fatalf("no delivery started\n%s", d.log)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, d.log)
	}
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

func first(ids []int64, n int) []int64 {
	if len(ids) > n {
		return ids[:n]
	}
	return ids
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

// waitDelivered waits until the sink has every row of want, failing with
// the daemon's log after 90 s.
func waitDelivered(t *testing.T, s *sink, d *daemon, want []int64) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for len(s.missing(want)) > 0 {
		if time.Now().After(deadline) {
			_ = d.cmd.Process.Kill()
			_ = d.cmd.Wait()
			t.Fatalf("%d of %d committed rows never delivered, e.g. %v\nlog:\n%s", len(s.missing(want)), len(want), first(s.missing(want), 5), d.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
